//! Stops the kernel when the process that started it is gone (Jupyter killed, or its
//! shutdown cut short), as ipykernel's parent poller does: no kernel outlives its server.

use std::time::Duration;

const CHECK_EVERY: Duration = Duration::from_secs(1);

/// Watches the parent process in a thread of its own; `gone` runs once when it has died.
pub fn watch(gone: impl FnOnce() + Send + 'static) -> std::io::Result<()> {
    // SAFETY: getppid has no preconditions and cannot fail.
    let parent = unsafe { libc::getppid() };
    if parent <= 1 {
        // Started by init or already orphaned: there is no parent to outlive.
        return Ok(());
    }
    std::thread::Builder::new()
        .name("parent-watch".into())
        .spawn(move || {
            // An orphan is adopted by init or a subreaper: its parent id changes.
            // SAFETY: as above.
            while unsafe { libc::getppid() } == parent {
                std::thread::sleep(CHECK_EVERY);
            }
            log::warn!("the process that started this kernel ({parent}) is gone; stopping");
            gone();
        })
        .map(drop)
}
