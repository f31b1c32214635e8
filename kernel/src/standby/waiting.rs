//! The standby's own side: it starts an engine ahead of time, answers launchers until one
//! fits, and serves that launcher's connection file as its kernel.

use super::process::{self, Claim};
use super::protocol::{judge, peer, read_line, Answer, Identity, Request, Verdict};
use super::protocol::{ANSWER_WITHIN, DONE_STARTING, GO, STOPPED};
use super::{READY, SOCKET};
use crate::engine::{self, Engine, Interrupter, Starting};
use crate::{handlers, private_dirs, server, wire};
use anyhow::{bail, Context, Result};
use std::fs::File;
use std::io::{ErrorKind, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A standby nobody adopts stops after this long (`TANDEM_STANDBY_IDLE`, in seconds).
const IDLE_LIMIT: Duration = Duration::from_secs(30 * 60);
/// How long a standby told to stop lets its engine's start go on, so that it ends cleanly.
const STOP_WAITS_FOR_START: Duration = Duration::from_secs(120);
/// A launcher whose request the standby can carry out.
struct Adopter {
    stream: UnixStream,
    request: Request,
    pid: libc::pid_t,
    connection: wire::ConnectionInfo,
}

/// A standby's engine: starting on a thread of its own, then up.
enum StandbyEngine {
    Starting(Starting),
    Up { engine: Box<Engine>, since: Instant },
}

impl StandbyEngine {
    /// Moves on to `Up` once the engine has started (`true` then, once). An error when it
    /// could not start, or its process has ended since.
    fn came_up(&mut self) -> Result<bool> {
        match self {
            StandbyEngine::Starting(starting) => match starting.try_finish() {
                None => Ok(false),
                Some(started) => {
                    *self = StandbyEngine::Up {
                        engine: Box::new(started?),
                        since: Instant::now(),
                    };
                    Ok(true)
                }
            },
            StandbyEngine::Up { engine, .. } if !engine.is_alive() => {
                bail!("its engine process has ended")
            }
            StandbyEngine::Up { .. } => Ok(false),
        }
    }

    /// Lets a start under way end, for at most [`STOP_WAITS_FOR_START`], then stops the
    /// engine (its process ends with it): nothing is left building in the scratch
    /// directory the standby removes next.
    fn stop(self) {
        let StandbyEngine::Starting(starting) = self else {
            return;
        };
        let deadline = Instant::now() + STOP_WAITS_FOR_START;
        while starting.try_finish().is_none() {
            if Instant::now() > deadline {
                log::warn!("stopping while the engine still starts");
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The engine for the kernel that takes it over, up or still starting.
    fn into_starting(self) -> Starting {
        match self {
            StandbyEngine::Starting(starting) => starting,
            StandbyEngine::Up { engine, since } => {
                log::debug!("the standby's engine was up for {:?}", since.elapsed());
                Starting::running(*engine)
            }
        }
    }
}

/// The standby process, holding the `claim`: starts an engine, waits to be adopted, then
/// serves the adopter's connection file.
pub fn run(identity: Identity, claim: Claim) -> Result<()> {
    // Until adopted, SIGTERM makes the standby stop at its next look (once a start under
    // way has ended, then it removes its scratch directory).
    process::stop_at_sigterm();
    let dir = engine::standby_dir()?;
    process::start_at_low_priority();
    // Taken now: Jupyter may stop while the engine starts.
    let jupyter = process::client_of_this_standby();
    let interrupter = Arc::new(Interrupter::default());
    let mut engine = StandbyEngine::Starting(Starting::spawn(interrupter.clone())?);
    // Listening from the start: a kernel launched meanwhile takes over this engine's start
    // instead of starting a second engine beside it.
    let socket = dir.join(SOCKET);
    let ready = dir.join(READY);
    let _ = std::fs::remove_file(&ready);
    let _ = std::fs::remove_file(&socket);
    let listener = UnixListener::bind(&socket)
        .with_context(|| format!("listening on {}", socket.display()))?;
    listener.set_nonblocking(true)?;
    let adopter = wait_for_launcher(&listener, &identity, &mut engine, jupyter, &ready)?;
    // Taken or stopping: a new standby may start now. A launcher still queued on the
    // socket is turned away at once, and runs its own kernel.
    let _ = std::fs::remove_file(&ready);
    let _ = std::fs::remove_file(&socket);
    drop(listener);
    drop(claim);
    let Some(mut adopter) = adopter else {
        engine.stop();
        return Ok(());
    };
    let answer = Answer {
        adopted: true,
        reason: String::new(),
        pid: std::process::id(),
    };
    let confirmed = writeln!(adopter.stream, "{}", serde_json::to_string(&answer)?)
        .and_then(|()| read_line(&adopter.stream, Instant::now() + ANSWER_WITHIN));
    match confirmed {
        Ok(line) if line == GO => adopt(adopter, engine.into_starting(), interrupter),
        other => {
            log::warn!("the launcher did not confirm ({other:?}); the standby stops");
            engine.stop();
            Ok(())
        }
    }
}

fn idle_limit() -> Duration {
    std::env::var("TANDEM_STANDBY_IDLE")
        .ok()
        .and_then(|seconds| seconds.trim().parse().ok())
        .and_then(|seconds| Duration::try_from_secs_f64(seconds).ok())
        .unwrap_or(IDLE_LIMIT)
}

/// Returns when a launcher connects to `listener` (at once), or after `at_most`.
fn wait_for_connection(listener: &UnixListener, at_most: Duration) {
    let mut ready = libc::pollfd {
        fd: listener.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    let timeout = libc::c_int::try_from(at_most.as_millis()).unwrap_or(libc::c_int::MAX);
    // SAFETY: poll reads and writes the one pollfd given. A signal (SIGTERM) cuts it short.
    unsafe { libc::poll(&mut ready, 1, timeout) };
}

/// Answers launchers until one fits, refusing the others; `None` when the standby should
/// stop instead (asked to, idle too long, its client `jupyter` gone, or of no use).
/// Writes the `ready` file once the engine is up.
fn wait_for_launcher(
    listener: &UnixListener,
    identity: &Identity,
    engine: &mut StandbyEngine,
    jupyter: Option<libc::pid_t>,
    ready: &Path,
) -> Result<Option<Adopter>> {
    let started = Instant::now();
    let give_up = started + idle_limit();
    loop {
        match engine.came_up() {
            Ok(false) => {}
            Ok(true) => {
                log::info!(
                    "standby kernel {} ready in {:.1} s",
                    std::process::id(),
                    started.elapsed().as_secs_f64()
                );
                let written = private_dirs::open_no_follow(
                    ready,
                    File::options().create(true).truncate(true).write(true),
                )
                .and_then(|mut file| Ok(write!(file, "{}", std::process::id())?));
                if let Err(error) = written {
                    log::warn!("could not write {}: {error:#}", ready.display());
                }
            }
            Err(error) => {
                log::warn!("the standby kernel stops: {error:#}");
                return Ok(None);
            }
        }
        let stream = match listener.accept() {
            Ok((stream, _)) => stream,
            Err(error) if error.kind() == ErrorKind::WouldBlock => {
                if process::terminated() {
                    log::info!("standby kernel asked to stop");
                    return Ok(None);
                }
                if Instant::now() > give_up {
                    log::info!("standby kernel not needed for {:?}; stopping", idle_limit());
                    return Ok(None);
                }
                if let Some(gone) = jupyter.filter(|&pid| server::process_ended(pid)) {
                    log::info!(
                        "Jupyter has stopped (process {gone}, the client this standby was \
                         started for); the standby kernel stops too"
                    );
                    return Ok(None);
                }
                wait_for_connection(listener, Duration::from_millis(200));
                continue;
            }
            Err(error) => return Err(error).context("waiting for a launcher"),
        };
        stream.set_nonblocking(false)?;
        let pid = match peer(&stream) {
            Some(peer) if peer.uid == private_dirs::my_uid() => peer.pid,
            Some(peer) => {
                log::warn!(
                    "refused a connection from process {} of another user (uid {})",
                    peer.pid,
                    peer.uid
                );
                continue;
            }
            None => {
                log::warn!("ignored a connection whose process is unknown");
                continue;
            }
        };
        let request: Request = match read_line(&stream, Instant::now() + ANSWER_WITHIN)
            .map_err(anyhow::Error::from)
            .and_then(|line| serde_json::from_str(&line).map_err(anyhow::Error::from))
        {
            Ok(request) => request,
            Err(error) => {
                log::warn!("ignored a malformed request from process {pid}: {error:#}");
                continue;
            }
        };
        let (reason, stop) = match judge(&request, identity) {
            Verdict::Adopt(connection) => {
                return Ok(Some(Adopter {
                    stream,
                    request,
                    pid,
                    connection,
                }))
            }
            Verdict::Refuse(reason) => (reason, false),
            Verdict::RefuseAndStop(reason) => (reason, true),
        };
        log::info!("refused the kernel of process {pid}: {reason}");
        let answer = Answer {
            adopted: false,
            reason,
            pid: std::process::id(),
        };
        let _ = writeln!(&stream, "{}", serde_json::to_string(&answer)?);
        if stop {
            return Ok(None);
        }
    }
}

/// Serves the launcher's connection file with the standby's engine (up, or still starting),
/// as the launcher's kernel.
fn adopt(adopter: Adopter, engine: Starting, interrupter: Arc<Interrupter>) -> Result<()> {
    let Adopter {
        stream,
        request,
        pid: launcher,
        connection,
    } = adopter;
    process::become_a_kernel(launcher);
    let moved = match std::env::current_dir() {
        Ok(here) if here == request.directory => None,
        _ => match std::env::set_current_dir(&request.directory) {
            Ok(()) => Some(request.directory.clone()),
            Err(error) => {
                log::warn!("staying in this folder: {error}");
                None
            }
        },
    };
    stream.set_read_timeout(None)?;
    let launcher_gone = stream.try_clone()?;
    let mut tell_launcher = stream.try_clone()?;
    let done_starting = format!("{DONE_STARTING}\n");
    let origin = format!(", a standby kernel taken over from process {launcher}");
    let served = handlers::serve(
        &connection,
        server::Parent::Launcher(launcher),
        &origin,
        interrupter,
        |shutdown| {
            // The launcher never writes again: the read ends when it is gone.
            let stop = shutdown.clone();
            let _ = std::thread::Builder::new()
                .name("launcher-watch".into())
                .spawn(move || loop {
                    match (&launcher_gone).read(&mut [0u8]) {
                        Err(error) if error.kind() == ErrorKind::Interrupted => continue,
                        _ => {
                            log::warn!("the launcher process is gone; stopping");
                            stop.request(false);
                            break;
                        }
                    }
                });
            // The launcher starts the next standby once this engine no longer needs the CPU.
            engine.handed_over(moved, move || {
                // One write, so that no other line can come between its parts.
                let _ = tell_launcher.write_all(done_starting.as_bytes());
            })
        },
    );
    // A kernel that could not serve (a port taken) says nothing: the launcher then exits
    // with an error, as a kernel that failed to start.
    if served.is_ok() {
        let _ = (&stream).write_all(format!("{STOPPED}\n").as_bytes());
    }
    served
}
