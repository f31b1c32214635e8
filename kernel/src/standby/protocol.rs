//! What a launcher and a standby say to each other over the standby's socket (one JSON
//! line each way, then a few words), and what must match for a standby to take a kernel.

use crate::engine;
use crate::wire;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::io::{ErrorKind, Read};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// The launcher's confirmation that it takes the adopted kernel.
pub(super) const GO: &str = "go";
/// The standby's word to its launcher once its engine's start is over, whether the engine
/// came up or not (at once, if it was up when adopted; after the move to the notebook's
/// folder).
pub(super) const DONE_STARTING: &str = "done starting";
/// The standby's last word to its launcher when its kernel stopped as asked.
pub(super) const STOPPED: &str = "stopped";
/// How long either side waits for the other's line.
pub(super) const ANSWER_WITHIN: Duration = Duration::from_secs(5);
/// The longest line either side reads (a request carries the environment).
pub(super) const LONGEST_LINE: usize = 256 * 1024;
/// Variables that may differ between a standby and the kernel it takes over: Jupyter's
/// per-kernel ones, the shell's, and those a kernel sets for its own engine.
const IGNORED_PREFIXES: [&str; 3] = ["JPY_", "JUPYTER_", "PYDEVD_"];
const IGNORED_NAMES: [&str; 9] = [
    "EVCXR_TMPDIR",
    CLIENT_VARIABLE,
    engine::MARKER_KEY_VARIABLE,
    tandem_helpers::kernel_link::EVENTS_CHANNEL_VARIABLE,
    "LD_LIBRARY_PATH",
    "PWD",
    "OLDPWD",
    "SHLVL",
    "_",
];

/// The process a standby serves and stops with (see `launcher::client_of_this_kernel`),
/// passed to it by the process that starts it.
pub(super) const CLIENT_VARIABLE: &str = "TANDEM_STANDBY_CLIENT";

/// What a launcher asks of a standby.
#[derive(Debug, Serialize, Deserialize)]
pub(super) struct Request {
    /// [`Identity::build`] of the launcher: only the same binary may take over.
    pub(super) build: String,
    /// [`Identity::environment`] of the launcher: names, and digests of their values.
    pub(super) environment: BTreeMap<String, String>,
    pub(super) connection_file: PathBuf,
    /// The launcher's working directory (the notebook's folder).
    pub(super) directory: PathBuf,
}

/// A standby's answer.
#[derive(Debug, Serialize, Deserialize)]
pub(super) struct Answer {
    pub(super) adopted: bool,
    /// Why not, when not adopted.
    #[serde(default)]
    pub(super) reason: String,
    pub(super) pid: u32,
}

/// What must match between a launcher and a standby, taken when the process starts (before
/// the kernel sets `EVCXR_TMPDIR` for itself).
#[derive(Debug, Clone)]
pub struct Identity {
    pub(super) build: String,
    pub(super) environment: BTreeMap<String, String>,
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
pub(super) fn build_id() -> String {
    let binary = std::env::current_exe()
        .map(|exe| {
            let modified = exe.metadata().and_then(|meta| meta.modified()).ok();
            format!("{} ({modified:?})", exe.display())
        })
        .unwrap_or_default();
    format!("{} / {binary}", engine::build_key())
}

/// One line of at most [`LONGEST_LINE`] bytes by `deadline`. Each side says one line and
/// then waits for the other's, so nothing after the line is taken from the stream.
pub(super) fn read_line(mut stream: &UnixStream, deadline: Instant) -> std::io::Result<String> {
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

/// The process at the other end of a Unix socket and its user, as the kernel reports them
/// (for a listener: the process that made it listen).
pub(super) fn peer(stream: &UnixStream) -> Option<libc::ucred> {
    tandem_helpers::kernel_link::peer_credentials(stream)
}

/// What a standby does with a launcher's request.
pub(super) enum Verdict {
    Adopt(wire::ConnectionInfo),
    /// Not this launcher; the standby waits for the next.
    Refuse(String),
    /// Not this launcher, and the standby stops (it is out of date, or of no use).
    RefuseAndStop(String),
}

pub(super) fn judge(request: &Request, identity: &Identity) -> Verdict {
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
}
