//! Standby kernels: a `tandem kernel --standby` process starts an engine ahead of time and
//! waits. The next `tandem kernel` that Jupyter launches hands it the connection file and
//! stays on as its stand-in, so a new notebook's first cell does not wait for evcxr, or
//! waits only for the rest of an engine start already under way.
//!
//! One standby waits per prebuilt template, in [`engine::standby_dir`]: its lock file says
//! it is alive, its Unix socket takes kernels (from its first moment), and its `ready`
//! file says its engine is up. A launcher sends one JSON line ([`Request`]), reads one
//! back ([`Answer`]) and, when adopted, confirms with [`GO`]; only then does the standby
//! bind Jupyter's sockets. It says [`DONE_STARTING`] once its engine's start is over (the
//! launcher then starts the next standby), serves until shutdown, then says [`STOPPED`].
//! The launcher exits when the connection closes, as the standby process ends; when the
//! launcher is killed, the standby's kernel sees the connection close and stops at once,
//! freeing the ports for a restart.

use crate::engine::{self, Engine, Interrupter, Starting};
use crate::{handlers, private_dirs, server, wire};
use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
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
/// Present (holding the standby's process id) while a standby's engine is up and untaken.
const READY: &str = "standby.ready";
/// The launcher's confirmation that it takes the adopted kernel.
const GO: &str = "go";
/// The standby's word to its launcher once its engine's start is over, whether the engine
/// came up or not (at once, if it was up when adopted; after the move to the notebook's
/// folder).
const DONE_STARTING: &str = "done starting";
/// The standby's last word to its launcher when its kernel stopped as asked.
const STOPPED: &str = "stopped";
/// A standby nobody adopts stops after this long (`TANDEM_STANDBY_IDLE`, in seconds).
const IDLE_LIMIT: Duration = Duration::from_secs(30 * 60);
/// A standby starts its engine at this niceness: the kernels in use come first.
const STARTING_NICENESS: libc::c_int = 10;
/// How long a standby told to stop lets its engine's start go on, so that it ends cleanly.
const STOP_WAITS_FOR_START: Duration = Duration::from_secs(120);
/// How long either side waits for the other's line.
const ANSWER_WITHIN: Duration = Duration::from_secs(5);
/// The longest line either side reads (a request carries the environment).
const LONGEST_LINE: usize = 256 * 1024;
/// The log is started afresh when a new standby finds it longer than this.
const LONGEST_LOG: u64 = 1024 * 1024;
/// Variables that may differ between a standby and the kernel it takes over: Jupyter's
/// per-kernel ones, the shell's, and those a kernel sets for its own engine.
const IGNORED_PREFIXES: [&str; 3] = ["JPY_", "JUPYTER_", "PYDEVD_"];
const IGNORED_NAMES: [&str; 8] = [
    "EVCXR_TMPDIR",
    CLIENT_VARIABLE,
    engine::MARKER_KEY_VARIABLE,
    "LD_LIBRARY_PATH",
    "PWD",
    "OLDPWD",
    "SHLVL",
    "_",
];

/// The process a standby serves and stops with (see [`client_of_this_kernel`]), passed
/// to it by the process that starts it.
const CLIENT_VARIABLE: &str = "TANDEM_STANDBY_CLIENT";

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
    /// [`Identity::environment`] of the launcher: names, and digests of their values.
    environment: BTreeMap<String, String>,
    connection_file: PathBuf,
    /// The launcher's working directory (the notebook's folder).
    directory: PathBuf,
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
    /// The variables that must match, each as a digest of its value: what the handover
    /// needs to compare, and no secret a variable may hold.
    pub fn of_this_process() -> Identity {
        use sha2::Digest;
        let environment = std::env::vars_os()
            .filter_map(|(name, value)| {
                let name = name.into_string().ok()?;
                let ignored = IGNORED_PREFIXES.iter().any(|p| name.starts_with(p))
                    || IGNORED_NAMES.contains(&name.as_str());
                let digest = sha2::Sha256::digest(value.as_encoded_bytes());
                (!ignored).then(|| (name, hex::encode(&digest[..16])))
            })
            .collect();
        Identity {
            build: build_id(),
            environment,
        }
    }
}

/// The template's build key and this binary's path and modification time.
fn build_id() -> String {
    let binary = std::env::current_exe()
        .map(|exe| {
            let modified = exe.metadata().and_then(|meta| meta.modified()).ok();
            format!("{} ({modified:?})", exe.display())
        })
        .unwrap_or_default();
    format!("{} / {binary}", engine::build_key())
}

/// Hands this kernel to a waiting standby. Returns the connection to it when it took over,
/// or `None` (no standby alive, or it does not fit): then this process runs the kernel.
pub fn hand_over(identity: &Identity, connection_file: &Path) -> Option<UnixStream> {
    let socket = match engine::standby_dir() {
        Ok(dir) => dir.join(SOCKET),
        Err(error) => {
            log::warn!("standby kernel not used: {error:#}");
            return None;
        }
    };
    let Ok(stream) = UnixStream::connect(&socket) else {
        log::debug!("no standby kernel waits at {}", socket.display());
        return None;
    };
    match peer(&stream) {
        Some(peer) if peer.uid == private_dirs::my_uid() => {}
        other => {
            log::warn!(
                "standby kernel not used: the process listening at {} is not this user's \
                 ({other:?})",
                socket.display()
            );
            return None;
        }
    }
    match ask(&stream, identity, connection_file) {
        Ok(answer) if answer.adopted => {
            log::info!(
                "tandem {}: kernel handed to the standby process {}",
                env!("CARGO_PKG_VERSION"),
                answer.pid
            );
            Some(stream)
        }
        Ok(answer) => {
            log::info!("standby kernel not used: {}", answer.reason);
            None
        }
        Err(error) => {
            log::warn!("standby kernel not used: {error:#}");
            None
        }
    }
}

/// The launcher's side of the handshake; confirms an adoption with [`GO`].
fn ask(mut stream: &UnixStream, identity: &Identity, connection_file: &Path) -> Result<Answer> {
    let request = Request {
        build: identity.build.clone(),
        environment: identity.environment.clone(),
        connection_file: std::path::absolute(connection_file)?,
        directory: std::env::current_dir()?,
    };
    stream.set_write_timeout(Some(ANSWER_WITHIN))?;
    writeln!(stream, "{}", serde_json::to_string(&request)?)?;
    let line = read_line(stream, Instant::now() + ANSWER_WITHIN).context("reading its answer")?;
    let answer: Answer = serde_json::from_str(&line).context("reading its answer")?;
    if answer.adopted {
        writeln!(stream, "{GO}").context("confirming")?;
    }
    Ok(answer)
}

/// One line of at most [`LONGEST_LINE`] bytes by `deadline`. Each side says one line and
/// then waits for the other's, so nothing after the line is taken from the stream.
fn read_line(mut stream: &UnixStream, deadline: Instant) -> std::io::Result<String> {
    let mut line = Vec::new();
    let mut chunk = [0u8; 4096];
    while !line.ends_with(b"\n") {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() || line.len() > LONGEST_LINE {
            return Err(std::io::Error::new(
                ErrorKind::TimedOut,
                "no complete line in time",
            ));
        }
        stream.set_read_timeout(Some(left))?;
        match stream.read(&mut chunk) {
            Ok(0) => return Err(ErrorKind::UnexpectedEof.into()),
            Ok(read) => line.extend_from_slice(&chunk[..read]),
            Err(error) if error.kind() == ErrorKind::Interrupted => {}
            Err(error) => return Err(error),
        }
    }
    line.pop();
    String::from_utf8(line).map_err(|error| std::io::Error::new(ErrorKind::InvalidData, error))
}

/// The launcher's part once a standby took over: stay until its kernel stops and the
/// standby process ends (Jupyter watches this process), and stop if Jupyter goes (the
/// standby then follows). `done_starting` runs when the standby's engine start is over.
pub fn stand_in(stream: UnixStream, done_starting: impl FnOnce()) -> Result<()> {
    server::watch_parent(server::Parent::Spawner, || std::process::exit(0))?;
    stream.set_read_timeout(None)?;
    let mut done_starting = Some(done_starting);
    let mut stopped = false;
    let mut said = std::io::BufReader::new(&stream);
    let mut line = String::new();
    loop {
        line.clear();
        match std::io::BufRead::read_line(&mut said, &mut line) {
            Ok(0) => break,
            Ok(_) if line.trim() == DONE_STARTING => {
                if let Some(done_starting) = done_starting.take() {
                    done_starting();
                }
            }
            Ok(_) if line.trim() == STOPPED => stopped = true,
            Ok(_) => log::debug!("the standby said {line:?}"),
            Err(error) if error.kind() == ErrorKind::Interrupted => {}
            Err(_) => break,
        }
    }
    if stopped {
        return Ok(());
    }
    bail!("the standby process running this kernel ended unexpectedly")
}

/// Starts a standby in the background, unless one is alive already. `directory` is where
/// it starts (where notebooks will most likely be), `env` what it needs beyond this
/// process's environment. Its log is `standby.log` beside its socket.
pub fn spawn(directory: Option<&Path>, env: &[(&str, &OsStr)]) -> Result<()> {
    let dir = engine::standby_dir()?;
    if Claim::take(&dir)?.is_none() {
        return Ok(());
    }
    let log =
        private_dirs::open_no_follow(&dir.join(LOG), File::options().create(true).append(true))?;
    if log.metadata()?.len() > LONGEST_LOG {
        log.set_len(0)?;
    }
    let client = env
        .iter()
        .find(|(name, _)| *name == "JPY_PARENT_PID")
        .and_then(|(_, pid)| pid.to_str()?.trim().parse().ok())
        .unwrap_or_else(client_of_this_kernel);
    let mut command = Command::new(std::env::current_exe()?);
    command
        .args(["kernel", "--standby"])
        .env(CLIENT_VARIABLE, client.to_string())
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

/// The program this kernel works for: the Jupyter server named in `JPY_PARENT_PID`, or,
/// for a client that names none (a test harness, an editor), the process that started
/// this kernel. A standby started for it stops when it ends: no engine is left holding
/// memory for half an hour after an nbclient run or a script is over.
fn client_of_this_kernel() -> libc::pid_t {
    // SAFETY: getppid has no preconditions and cannot fail.
    server::jupyter_server().unwrap_or_else(|| unsafe { libc::getppid() })
}

/// The process this standby was started for, if it is alive now (see
/// [`client_of_this_kernel`]); a standby started by hand follows `JPY_PARENT_PID`.
fn client_of_this_standby() -> Option<libc::pid_t> {
    std::env::var(CLIENT_VARIABLE)
        .ok()
        .and_then(|pid| pid.trim().parse().ok())
        .filter(|&pid: &libc::pid_t| pid > 1 && !server::process_ended(pid))
        .or_else(server::jupyter_server)
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
        let file = private_dirs::open_no_follow(
            &dir.join(LOCK),
            File::options().create(true).truncate(false).write(true),
        )?;
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
    extern "C" fn on_terminate(_: libc::c_int) {
        TERMINATED.store(true, Ordering::SeqCst);
    }
    // SAFETY: the handler only performs an atomic store. Until adopted, SIGTERM makes the
    // standby stop at its next look (once a start under way has ended, then it removes
    // its scratch directory).
    unsafe {
        let handler: extern "C" fn(libc::c_int) = on_terminate;
        libc::signal(libc::SIGTERM, handler as *const () as libc::sighandler_t)
    };
    let dir = engine::standby_dir()?;
    // SAFETY: setpriority on this process only.
    unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, STARTING_NICENESS) };
    // Taken now: Jupyter may stop while the engine starts.
    let jupyter = client_of_this_standby();
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

/// The process at the other end of a Unix socket and its user, as the kernel reports them
/// (for a listener: the process that made it listen).
fn peer(stream: &UnixStream) -> Option<libc::ucred> {
    let mut credentials = libc::ucred {
        pid: 0,
        uid: 0,
        gid: 0,
    };
    let mut size = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
    // SAFETY: getsockopt writes at most `size` bytes into `credentials`.
    let read = unsafe {
        libc::getsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            (&mut credentials as *mut libc::ucred).cast(),
            &mut size,
        )
    };
    (read == 0 && credentials.pid > 0).then_some(credentials)
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

/// What a standby does with a launcher's request.
enum Verdict {
    Adopt(wire::ConnectionInfo),
    /// Not this launcher; the standby waits for the next.
    Refuse(String),
    /// Not this launcher, and the standby stops (it is out of date, or of no use).
    RefuseAndStop(String),
}

fn judge(request: &Request, identity: &Identity) -> Verdict {
    if request.build != identity.build {
        let reason = format!("it runs another build ({})", request.build);
        // The newer binary's kernels start their own standbys once this one is gone.
        return if build_id() != identity.build {
            Verdict::RefuseAndStop(format!("{reason}; this standby's binary has changed"))
        } else {
            Verdict::Refuse(reason)
        };
    }
    if request.environment != identity.environment {
        let differing: BTreeSet<&String> = request
            .environment
            .keys()
            .chain(identity.environment.keys())
            .filter(|name| request.environment.get(*name) != identity.environment.get(*name))
            .collect();
        // Stopping lets a kernel of the new environment start a standby that fits it.
        return Verdict::RefuseAndStop(format!("its environment differs in {differing:?}"));
    }
    if !request.directory.is_dir() || request.directory.to_str().is_none() {
        return Verdict::Refuse(format!(
            "its folder {} is missing or not UTF-8",
            request.directory.display()
        ));
    }
    match wire::ConnectionInfo::from_file(&request.connection_file)
        .and_then(|connection| connection.refuse_empty_key().map(|()| connection))
    {
        Ok(connection) => Verdict::Adopt(connection),
        Err(error) => Verdict::Refuse(format!("its connection file: {error:#}")),
    }
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
                if TERMINATED.load(Ordering::SeqCst) {
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

/// Niceness is per thread on Linux: this thread goes back to 0, and the kernel's threads
/// started from here (the shell's, which spawns cargo and rustc for every cell) inherit it.
/// The engine's threads and process keep the standby's niceness on purpose: with the whole
/// process group set to 0, a takeover's first cell replied 0.25 s later (0.69-0.90 s
/// against 0.37-0.60 s, five kernels each; measured, not explained). Lowering niceness
/// needs a privilege most users lack: the kernel then keeps the standby's, which only
/// matters when the machine is busy.
fn back_to_normal_priority() {
    // SAFETY: setpriority on the calling thread only.
    if unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, 0) } != 0 {
        log::debug!(
            "kept niceness {STARTING_NICENESS}: {}",
            std::io::Error::last_os_error()
        );
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
    // SAFETY: restores the default action: from now on SIGTERM stops the kernel at once,
    // as it does any kernel.
    unsafe { libc::signal(libc::SIGTERM, libc::SIG_DFL) };
    back_to_normal_priority();
    // The kernel's log goes where the launcher's would have gone (Jupyter's terminal).
    for fd in [1, 2] {
        let target = format!("/proc/{launcher}/fd/{fd}");
        if let Ok(file) = File::options().append(true).open(&target) {
            // SAFETY: both descriptors are open; dup2 replaces ours with the launcher's.
            unsafe { libc::dup2(file.as_raw_fd(), fd) };
        }
    }
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
    let sockets = server::Sockets::bind(&connection)?;
    log::info!(
        "tandem {} serving on {} ({}), a standby kernel taken over from process {launcher}",
        env!("CARGO_PKG_VERSION"),
        connection.ip,
        connection.transport,
    );
    stream.set_read_timeout(None)?;
    let launcher_gone = stream.try_clone()?;
    let mut tell_launcher = stream.try_clone()?;
    let done_starting = format!("{DONE_STARTING}\n");
    let served = server::serve(
        sockets,
        wire::Signer::new(&connection.key),
        server::Parent::Launcher(launcher),
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
            // The launcher starts the next standby once this engine no longer needs the CPU.
            let engine = engine.handed_over(moved, move || {
                // One write, so that no other line can come between its parts.
                let _ = tell_launcher.write_all(done_starting.as_bytes());
            });
            handlers::for_engine(iopub, shutdown, engine, interrupter)
        },
    );
    let _ = (&stream).write_all(format!("{STOPPED}\n").as_bytes());
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
        };
        let line = serde_json::to_string(&request).unwrap();
        assert!(!line.contains('\n'));
        let back: Request = serde_json::from_str(&line).unwrap();
        assert_eq!(back.directory, PathBuf::from("/tmp"));
        let refused: Answer = serde_json::from_str(r#"{"adopted":false,"pid":3}"#).unwrap();
        assert!(!refused.adopted && refused.reason.is_empty());
    }

    #[test]
    fn only_one_claim_at_a_time() {
        let dir = private_dirs::test_dir("claim");
        let first = Claim::take(&dir).unwrap();
        assert!(first.is_some());
        assert!(Claim::take(&dir).unwrap().is_none());
        drop(first);
        assert!(Claim::take(&dir).unwrap().is_some());
        let _ = std::fs::remove_dir_all(dir);
    }
}
