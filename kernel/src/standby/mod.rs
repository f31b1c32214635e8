//! Standby kernels: a `tandem kernel --standby` process starts an engine ahead of time and
//! waits. The next `tandem kernel` that Jupyter launches hands it the connection file and
//! stays on as its stand-in, so a new notebook's first cell does not wait for evcxr, or
//! waits only for the rest of an engine start already under way.
//!
//! One standby waits per prebuilt template, in `engine::standby_dir`: its lock file says it
//! is alive, its Unix socket takes kernels (from its first moment), and its `ready` file
//! says its engine is up. A launcher sends one JSON line (a `protocol::Request`), reads one
//! back (an `Answer`) and, when adopted, confirms with `GO`; only then does the standby
//! bind Jupyter's sockets. It says `DONE_STARTING` once its engine's start is over (the
//! launcher then starts the next standby), serves until shutdown, then says `STOPPED`.
//! The launcher exits when the connection closes, as the standby process ends; when the
//! launcher is killed, the standby's kernel sees the connection close and stops at once,
//! freeing the ports for a restart.
//!
//! The parts: `protocol` (what the two sides say, and what must match), `launcher` (the
//! kernel Jupyter starts, which hands itself over), `waiting` (the standby's side: an
//! engine started ahead, launchers judged, one adopted), `process` (fork, lock, signals,
//! niceness: the plumbing of a process that outlives the one that started it), `memory`
//! (no standby under memory pressure).

mod launcher;
mod memory;
mod process;
mod protocol;
mod waiting;

pub use launcher::{hand_over, spawn, stand_in};
pub use process::{detach, Claim};
pub use protocol::Identity;
pub use waiting::run;

const SOCKET: &str = "standby.sock";
const LOCK: &str = "standby.lock";
const LOG: &str = "standby.log";
/// Present (holding the standby's process id) while a standby's engine is up and untaken.
const READY: &str = "standby.ready";
/// The log is started afresh when a new standby finds it longer than this.
const LONGEST_LOG: u64 = 1024 * 1024;

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
