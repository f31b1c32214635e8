//! Standby kernels: a `tandem kernel --standby` process starts an engine ahead of time and
//! waits. The next `tandem kernel` that Jupyter launches hands it the connection file and
//! stays on as its stand-in, so a new notebook's first cell does not wait for evcxr.
//!
//! One standby waits per prebuilt template, in [`engine::standby_dir`]: a lock file says
//! one is alive, a Unix socket says it is ready. A launcher sends one JSON line
//! ([`Request`]) and reads one back ([`Answer`]); once adopted, the standby's kernel serves
//! Jupyter's sockets until shutdown, then writes [`STOPPED`] and closes the connection. The
//! launcher exits when the connection closes; when the launcher is killed, the standby's
//! kernel sees the connection close and stops at once, freeing the ports for a restart.

use crate::engine::{self, Engine, Interrupter, StartStatus, Startup};
use crate::{handlers, server, wire};
use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::fs::File;
use std::io::{ErrorKind, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const SOCKET: &str = "standby.sock";
const LOCK: &str = "standby.lock";
const LOG: &str = "standby.log";
/// The standby's last word to its launcher when its kernel stopped as asked.
const STOPPED: &str = "stopped";
/// A standby nobody adopts stops after this long (`TANDEM_STANDBY_IDLE`, in seconds).
const IDLE_LIMIT: Duration = Duration::from_secs(30 * 60);
/// A standby starts its engine at this niceness: the kernels in use come first.
const STARTING_NICENESS: libc::c_int = 10;
/// How long a launcher waits for a standby's answer.
const ANSWER_WITHIN: Duration = Duration::from_secs(5);

/// Set by SIGTERM while the standby waits.
static TERMINATED: AtomicBool = AtomicBool::new(false);

/// Whether standbys are used and started: yes unless `TANDEM_STANDBY` is `0`, `off`,
/// `false` or `no`, or the user chose the engine's directory (`EVCXR_TMPDIR`). Ask before
/// the kernel sets `EVCXR_TMPDIR` for itself.
pub fn enabled() -> bool {
    let turned_off = std::env::var("TANDEM_STANDBY").is_ok_and(|value| {
        matches!(
            value.trim().to_ascii_lowercase().as_str(),
            "0" | "off" | "false" | "no"
        )
    });
    !turned_off && std::env::var_os("EVCXR_TMPDIR").is_none()
}

/// What a launcher asks of a standby.
#[derive(Debug, Serialize, Deserialize)]
struct Request {
    /// [`Identity::build`] of the launcher: only the same binary may take over.
    build: String,
    /// [`Identity::environment`] of the launcher.
    environment: BTreeMap<String, String>,
    connection_file: PathBuf,
    /// The launcher's working directory (the notebook's folder).
    directory: PathBuf,
    launcher: libc::pid_t,
}

/// A standby's answer.
#[derive(Debug, Serialize, Deserialize)]
struct Answer {
    adopted: bool,
    /// Why not, when not adopted.
    #[serde(default)]
    reason: String,
    pid: u32,
}

/// What must match between a launcher and a standby, taken when the process starts (before
/// the kernel sets `EVCXR_TMPDIR` for itself).
#[derive(Debug, Clone)]
pub struct Identity {
    build: String,
    environment: BTreeMap<String, String>,
}

impl Identity {
    pub fn of_this_process() -> Identity {
        let binary = std::env::current_exe()
            .and_then(|exe| exe.metadata())
            .and_then(|meta| meta.modified())
            .map(|time| format!("{time:?}"))
            .unwrap_or_default();
        // What the engine and the cells read: the toolchain, the build settings, tandem's
        // own switches. Jupyter's per-kernel variables (JPY_*) may differ.
        let environment = std::env::vars()
            .filter(|(name, _)| {
                ["TANDEM_", "EVCXR_", "RUST", "CARGO"]
                    .iter()
                    .any(|prefix| name.starts_with(prefix))
                    || matches!(name.as_str(), "PATH" | "HOME")
            })
            .collect();
        Identity {
            build: format!("{} / binary of {binary}", engine::build_key()),
            environment,
        }
    }
}

/// Hands this kernel to a waiting standby. Returns the connection to it when it took over,
/// or `None` (no standby ready, or it does not fit): then this process runs the kernel.
pub fn hand_over(identity: &Identity, connection_file: &Path) -> Option<UnixStream> {
    let mut stream = UnixStream::connect(engine::standby_dir().join(SOCKET)).ok()?;
    let request = Request {
        build: identity.build.clone(),
        environment: identity.environment.clone(),
        connection_file: std::path::absolute(connection_file).ok()?,
        directory: std::env::current_dir().ok()?,
        // SAFETY: getpid has no preconditions.
        launcher: unsafe { libc::getpid() },
    };
    let asked = serde_json::to_string(&request).ok()?;
    stream.set_read_timeout(Some(ANSWER_WITHIN)).ok()?;
    writeln!(stream, "{asked}").ok()?;
    let answer: Answer = match read_line(&stream).map(|line| serde_json::from_str(&line)) {
        Ok(Ok(answer)) => answer,
        Ok(Err(error)) => {
            log::warn!("the standby kernel answered something else: {error}");
            return None;
        }
        Err(error) => {
            log::warn!("no answer from the standby kernel: {error}");
            return None;
        }
    };
    if !answer.adopted {
        log::info!("standby kernel not used: {}", answer.reason);
        return None;
    }
    log::info!(
        "tandem {}: kernel handed to the standby process {}",
        env!("CARGO_PKG_VERSION"),
        answer.pid
    );
    Some(stream)
}

/// One line, read a byte at a time so nothing after it is taken from the stream.
fn read_line(mut stream: &UnixStream) -> std::io::Result<String> {
    let mut line = Vec::new();
    let mut byte = [0u8];
    loop {
        match stream.read(&mut byte)? {
            0 => break,
            _ if byte[0] == b'\n' => break,
            _ => line.push(byte[0]),
        }
    }
    String::from_utf8(line).map_err(|error| std::io::Error::new(ErrorKind::InvalidData, error))
}

/// The launcher's part once a standby took over: stay until its kernel stops (Jupyter
/// watches this process), and stop if Jupyter goes (the standby then follows).
pub fn stand_in(stream: UnixStream) -> Result<()> {
    server::watch_parent(server::Parent::Ours, || std::process::exit(0))?;
    stream.set_read_timeout(None)?;
    let mut said = String::new();
    let _ = (&stream).read_to_string(&mut said);
    if said.trim() == STOPPED {
        return Ok(());
    }
    bail!("the standby process running this kernel ended unexpectedly")
}

/// Starts a standby in the background, unless one is alive already. `directory` is where
/// it starts (where notebooks will most likely be), `env` what it needs beyond this
/// process's environment. Its log is `standby.log` beside its socket.
pub fn spawn(directory: Option<&Path>, env: &[(&str, &OsStr)]) -> Result<()> {
    let dir = engine::standby_dir();
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    if Claim::take(&dir)?.is_none() {
        return Ok(());
    }
    let log = File::create(dir.join(LOG))?;
    let mut command = Command::new(std::env::current_exe()?);
    command
        .args(["kernel", "--standby"])
        // Set by this kernel for its own engine; the standby makes its own.
        .env_remove("EVCXR_TMPDIR")
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log);
    if let Some(directory) = directory {
        command.current_dir(directory);
    }
    // The standby detaches at once (see `detach`): what ends here is the first process.
    let status = command.status().context("starting a standby kernel")?;
    if !status.success() {
        bail!("the standby kernel could not detach ({status})");
    }
    Ok(())
}

/// Called first thing in a standby process, while it has one thread: forks, and the
/// original process exits, so the standby is nobody's child (no zombie is left with a
/// Jupyter server that never reaps it) and has a session of its own (no terminal's Ctrl-C,
/// and no kill of the starting kernel's process group reaches it).
pub fn detach() -> Result<()> {
    // SAFETY: this process has a single thread here, so the child is a full copy.
    match unsafe { libc::fork() } {
        -1 => Err(std::io::Error::last_os_error()).context("forking the standby kernel"),
        0 => {
            // SAFETY: setsid has no preconditions; it fails only for a group leader,
            // which a fresh child is not.
            unsafe { libc::setsid() };
            Ok(())
        }
        _ => std::process::exit(0),
    }
}

/// The lock a live standby holds; released when dropped.
pub struct Claim {
    lock: File,
}

impl Claim {
    /// Takes the lock, or `None` when another standby holds it.
    pub fn take(dir: &Path) -> Result<Option<Claim>> {
        let file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(dir.join(LOCK))
            .with_context(|| format!("opening {}", dir.join(LOCK).display()))?;
        // SAFETY: flock on a descriptor this function owns.
        let taken = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0;
        Ok(taken.then_some(Claim { lock: file }))
    }

    /// Writes this process's id into the lock file: which process the standby is.
    pub fn name_holder(&self) -> Result<()> {
        let mut file = &self.lock;
        file.set_len(0)?;
        write!(file, "{}", std::process::id())?;
        Ok(())
    }
}

/// The standby process, holding the `claim`: starts an engine, waits to be adopted, then
/// serves the adopter's connection file.
pub fn run(identity: Identity, claim: Claim) -> Result<()> {
    extern "C" fn on_terminate(_: libc::c_int) {
        TERMINATED.store(true, Ordering::SeqCst);
    }
    // SAFETY: the handler only performs an atomic store. Until adopted, SIGTERM makes the
    // standby stop at its next look (and remove its scratch directory).
    unsafe {
        let handler: extern "C" fn(libc::c_int) = on_terminate;
        libc::signal(libc::SIGTERM, handler as *const () as libc::sighandler_t)
    };
    let dir = engine::standby_dir();
    // SAFETY: setpriority on this process only.
    unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, STARTING_NICENESS) };
    let started = Instant::now();
    let interrupter = Arc::new(Interrupter::default());
    let engine = Engine::start(
        interrupter.clone(),
        Startup::FromTemplate,
        &StartStatus::default(),
    )?;
    log::info!(
        "standby kernel {} ready in {:.1} s",
        std::process::id(),
        started.elapsed().as_secs_f64()
    );
    let socket = dir.join(SOCKET);
    let _ = std::fs::remove_file(&socket);
    let listener = UnixListener::bind(&socket)
        .with_context(|| format!("listening on {}", socket.display()))?;
    listener.set_nonblocking(true)?;
    let Some((stream, request)) = wait_for_launcher(&listener, &identity)? else {
        let _ = std::fs::remove_file(&socket);
        return Ok(());
    };
    // A new standby may start as soon as this one is taken; a launcher still queued on
    // the socket is turned away at once, and runs its own kernel.
    let _ = std::fs::remove_file(&socket);
    drop(listener);
    drop(claim);
    adopt(stream, request, engine, interrupter)
}

fn idle_limit() -> Duration {
    std::env::var("TANDEM_STANDBY_IDLE")
        .ok()
        .and_then(|seconds| seconds.trim().parse().ok())
        .map(Duration::from_secs_f64)
        .unwrap_or(IDLE_LIMIT)
}

/// Answers launchers until one fits; `None` when the standby should stop instead (idle
/// too long, Jupyter gone, or this binary is out of date).
fn wait_for_launcher(
    listener: &UnixListener,
    identity: &Identity,
) -> Result<Option<(UnixStream, Request)>> {
    let give_up = Instant::now() + idle_limit();
    let jupyter = server::jupyter_server();
    loop {
        let mut stream = match listener.accept() {
            Ok((stream, _)) => stream,
            Err(error) if error.kind() == ErrorKind::WouldBlock => {
                if TERMINATED.load(Ordering::SeqCst) {
                    log::info!("standby kernel asked to stop");
                    return Ok(None);
                }
                if Instant::now() > give_up {
                    log::info!("standby kernel not needed for {:?}; stopping", idle_limit());
                    return Ok(None);
                }
                if jupyter.is_some_and(server::process_ended) {
                    log::info!("Jupyter has stopped; the standby kernel stops too");
                    return Ok(None);
                }
                std::thread::sleep(Duration::from_millis(100));
                continue;
            }
            Err(error) => return Err(error).context("waiting for a launcher"),
        };
        stream.set_nonblocking(false)?;
        stream.set_read_timeout(Some(ANSWER_WITHIN))?;
        let request: Request = match read_line(&stream)
            .map_err(anyhow::Error::from)
            .and_then(|line| serde_json::from_str(&line).map_err(anyhow::Error::from))
        {
            Ok(request) => request,
            Err(error) => {
                log::warn!("ignored a malformed request: {error:#}");
                continue;
            }
        };
        let refusal = if request.build != identity.build {
            Some("it was built from other sources; it stops".to_owned())
        } else if request.environment != identity.environment {
            let differing: Vec<&String> = request
                .environment
                .keys()
                .chain(identity.environment.keys())
                .filter(|name| request.environment.get(*name) != identity.environment.get(*name))
                .collect();
            Some(format!("its environment differs in {differing:?}"))
        } else {
            None
        };
        let answer = Answer {
            adopted: refusal.is_none(),
            reason: refusal.clone().unwrap_or_default(),
            pid: std::process::id(),
        };
        let said = writeln!(stream, "{}", serde_json::to_string(&answer)?);
        match refusal {
            None if said.is_ok() => return Ok(Some((stream, request))),
            None => log::warn!("a launcher left before the answer"),
            Some(reason) if request.build != identity.build => {
                log::info!("standby kernel out of date: {reason}");
                return Ok(None);
            }
            Some(reason) => log::info!("a launcher was refused: {reason}"),
        }
    }
}

/// Serves the launcher's connection file with the waiting engine, as the launcher's kernel.
fn adopt(
    stream: UnixStream,
    request: Request,
    engine: Engine,
    interrupter: Arc<Interrupter>,
) -> Result<()> {
    // SAFETY: restores the default action: from now on SIGTERM stops the kernel at once,
    // as it does any kernel.
    unsafe { libc::signal(libc::SIGTERM, libc::SIG_DFL) };
    // SAFETY: setpriority on this process only. Lowering niceness needs a privilege most
    // users lack: the kernel then keeps the standby's niceness, which only matters when
    // the machine is busy.
    if unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, 0) } != 0 {
        log::debug!(
            "kept niceness {STARTING_NICENESS}: {}",
            std::io::Error::last_os_error()
        );
    }
    // The kernel's log goes where the launcher's would have gone (Jupyter's terminal).
    for fd in [1, 2] {
        let target = format!("/proc/{}/fd/{fd}", request.launcher);
        if let Ok(file) = File::options().append(true).open(&target) {
            // SAFETY: both descriptors are open; dup2 replaces ours with the launcher's.
            unsafe { libc::dup2(file.as_raw_fd(), fd) };
        }
    }
    let moved = if std::env::current_dir().ok().as_ref() != Some(&request.directory) {
        std::env::set_current_dir(&request.directory)
            .with_context(|| format!("moving to {}", request.directory.display()))?;
        Some(request.directory.clone())
    } else {
        None
    };
    let info = wire::ConnectionInfo::from_file(&request.connection_file)?;
    let sockets = server::Sockets::bind(&info)?;
    log::info!(
        "tandem {} serving on {} ({}), a standby kernel taken over from process {}",
        env!("CARGO_PKG_VERSION"),
        info.ip,
        info.transport,
        request.launcher
    );
    stream.set_read_timeout(None)?;
    let launcher_gone = stream.try_clone()?;
    let served = server::serve(
        sockets,
        wire::Signer::new(&info.key),
        server::Parent::Launcher(request.launcher),
        |iopub, shutdown| {
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
            let starting = engine::Starting::adopt(engine, moved);
            let shell = handlers::ShellHandlers::new(
                iopub.clone(),
                shutdown.clone(),
                starting,
                interrupter.clone(),
            );
            let control = handlers::ControlHandlers::new(iopub, interrupter, shutdown);
            (shell, control)
        },
    );
    let _ = writeln!(&stream, "{STOPPED}");
    served
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_and_answers_round_trip_as_one_line_each() {
        let request = Request {
            build: "b".into(),
            environment: BTreeMap::from([("PATH".into(), "/bin".into())]),
            connection_file: "/tmp/k.json".into(),
            directory: "/tmp".into(),
            launcher: 7,
        };
        let line = serde_json::to_string(&request).unwrap();
        assert!(!line.contains('\n'));
        let back: Request = serde_json::from_str(&line).unwrap();
        assert_eq!(back.launcher, 7);
        let refused: Answer = serde_json::from_str(r#"{"adopted":false,"pid":3}"#).unwrap();
        assert!(!refused.adopted && refused.reason.is_empty());
    }

    #[test]
    fn only_one_claim_at_a_time() {
        let dir = std::env::temp_dir().join(format!("tandem-claim-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let first = Claim::take(&dir).unwrap();
        assert!(first.is_some());
        assert!(Claim::take(&dir).unwrap().is_none());
        drop(first);
        assert!(Claim::take(&dir).unwrap().is_some());
        let _ = std::fs::remove_dir_all(dir);
    }
}
