//! The standby's process plumbing: it detaches from whoever started it, holds a lock,
//! stops at SIGTERM while it waits, starts its engine at low priority, and, once adopted,
//! becomes an ordinary kernel that logs where its launcher would.

use super::protocol::CLIENT_VARIABLE;
use super::LOCK;
use crate::{private_dirs, server};
use anyhow::{Context, Result};
use std::fs::File;
use std::io::Write;
use std::os::fd::AsRawFd;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

/// A standby starts its engine at this niceness: the kernels in use come first.
pub(super) const STARTING_NICENESS: libc::c_int = 10;
/// Set by SIGTERM while the standby waits.
static TERMINATED: AtomicBool = AtomicBool::new(false);

/// From now on SIGTERM only asks the waiting standby to stop (see [`terminated`]).
pub(super) fn stop_at_sigterm() {
    extern "C" fn on_terminate(_: libc::c_int) {
        TERMINATED.store(true, Ordering::SeqCst);
    }
    // SAFETY: the handler only performs an atomic store.
    unsafe {
        let handler: extern "C" fn(libc::c_int) = on_terminate;
        libc::signal(libc::SIGTERM, handler as *const () as libc::sighandler_t)
    };
}

/// Whether SIGTERM came since [`stop_at_sigterm`].
pub(super) fn terminated() -> bool {
    TERMINATED.load(Ordering::SeqCst)
}

/// The standby starts its engine at [`STARTING_NICENESS`]: the kernels in use come first.
pub(super) fn start_at_low_priority() {
    // SAFETY: setpriority with these arguments changes only the calling thread's niceness
    // (Linux keeps it per thread); the threads this one starts later inherit it (the
    // short-lived tidy thread, started before, keeps the normal one).
    unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, STARTING_NICENESS) };
}

/// Once adopted: SIGTERM stops the kernel at once, as it does any kernel; this thread's
/// priority goes back to normal; and the log goes where the launcher's would have gone
/// (Jupyter's terminal).
pub(super) fn become_a_kernel(launcher: libc::pid_t) {
    // SAFETY: restores the default action for SIGTERM.
    unsafe { libc::signal(libc::SIGTERM, libc::SIG_DFL) };
    back_to_normal_priority();
    for fd in [1, 2] {
        let target = format!("/proc/{launcher}/fd/{fd}");
        if let Ok(file) = File::options().append(true).open(&target) {
            // SAFETY: both descriptors are open; dup2 replaces ours with the launcher's.
            unsafe { libc::dup2(file.as_raw_fd(), fd) };
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

/// The process this standby was started for, if it is alive now (see
/// `launcher::client_of_this_kernel`); a standby started by hand follows `JPY_PARENT_PID`.
pub(super) fn client_of_this_standby() -> Option<libc::pid_t> {
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

#[cfg(test)]
mod tests {
    use super::*;

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
