//! The launcher: the `tandem kernel` Jupyter starts hands its connection file to a
//! waiting standby, then stands in for it until it stops; it also starts standbys.

use super::process::Claim;
use super::protocol::{
    peer, read_line, Answer, Identity, Request, ANSWER_WITHIN, CLIENT_VARIABLE, DONE_STARTING, GO,
    STOPPED,
};
use super::{LOG, LONGEST_LOG, SOCKET};
use crate::{engine, private_dirs, server};
use anyhow::{bail, Context, Result};
use std::ffi::OsStr;
use std::fs::File;
use std::io::{ErrorKind, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

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

/// Starts a standby in the background, unless one is alive already or memory is short
/// (see `memory`). `directory` is where it starts (where notebooks will most likely be),
/// `env` what it needs beyond this process's environment. Its log is `standby.log` beside
/// its socket.
pub fn spawn(directory: Option<&Path>, env: &[(&str, &OsStr)]) -> Result<()> {
    if let Some(why) = super::memory::too_little_memory() {
        log::info!("{why}");
        return Ok(());
    }
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
