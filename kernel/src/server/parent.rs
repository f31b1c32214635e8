//! Stops the kernel when the process that started it is gone (Jupyter killed, or its
//! shutdown cut short), as ipykernel's parent poller does: no kernel outlives its server.

use std::time::Duration;

const CHECK_EVERY: Duration = Duration::from_secs(1);

/// Whether process `pid` has ended: it no longer exists, or it is a zombie (exited, not
/// yet reaped).
pub fn ended(pid: libc::pid_t) -> bool {
    // SAFETY: kill with signal 0 sends nothing; it only asks whether the process exists.
    let refused = unsafe { libc::kill(pid, 0) } != 0;
    if refused && std::io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH) {
        return true;
    }
    // `/proc/PID/stat` is `pid (name) state ...`; the name may hold spaces and parentheses.
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| {
            let (_, after_name) = stat.rsplit_once(')')?;
            after_name
                .split_whitespace()
                .next()
                .map(|state| state == "Z")
        })
        .unwrap_or(false)
}

/// Whose end stops the kernel.
#[derive(Debug, Clone, Copy)]
pub enum Parent {
    /// This process's parent, and Jupyter's server named in `JPY_PARENT_PID`.
    Spawner,
    /// The `tandem kernel` process Jupyter started, which handed its kernel to this one.
    Launcher(libc::pid_t),
}

/// The Jupyter server named in `JPY_PARENT_PID`, if it is alive now.
pub fn jupyter_server() -> Option<libc::pid_t> {
    std::env::var("JPY_PARENT_PID")
        .ok()
        .and_then(|pid| pid.trim().parse().ok())
        .filter(|&pid| pid > 1 && !ended(pid))
}

/// Watches the parent process in a thread of its own; `gone` runs once when it has died.
///
/// Two signs, either of which is enough: the parent process id changes (an orphan is
/// adopted by init or a subreaper), or the process Jupyter names in `JPY_PARENT_PID` ends
/// (a wrapper script between Jupyter and the kernel does not count as the parent dying).
/// `JPY_PARENT_PID` is followed only if that process is alive when the watch begins: from
/// another PID namespace the number means nothing here.
///
/// A standby kernel adopted by a launcher (`Parent::Launcher`) watches that process only.
pub fn watch(parent: Parent, gone: impl FnOnce() + Send + 'static) -> std::io::Result<()> {
    let (parent, watched) = match parent {
        // SAFETY: getppid has no preconditions and cannot fail.
        Parent::Spawner => (unsafe { libc::getppid() }, jupyter_server()),
        Parent::Launcher(pid) => (0, Some(pid)),
    };
    if parent <= 1 && watched.is_none() {
        // Started by init: there is no parent to outlive.
        return Ok(());
    }
    std::thread::Builder::new()
        .name("parent-watch".into())
        .spawn(move || {
            loop {
                // SAFETY: as above.
                let adopted = parent > 1 && unsafe { libc::getppid() } != parent;
                if adopted || watched.is_some_and(ended) {
                    break;
                }
                std::thread::sleep(CHECK_EVERY);
            }
            log::warn!("the process that started this kernel is gone; stopping");
            gone();
        })
        .map(drop)
}
