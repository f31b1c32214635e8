//! Stopping a cell when the learner presses interrupt: helpers' waits stop within 10 ms
//! and the session keeps its variables; long loops of your own can call `stop_if_interrupted`.

use crate::kernel_link::{in_tandem, interrupt_requested};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The panic message of a helper stopped by an interrupt.
pub const INTERRUPTED: &str = "interrupted while waiting";

/// How often interruptible waits look at the interrupt request.
const CHECK_EVERY: Duration = Duration::from_millis(10);

/// Stops the cell (by panicking, which keeps the session's earlier variables) if the
/// kernel asked it to. Long loops of your own can call this to be interruptible too.
pub fn stop_if_interrupted() {
    if interrupt_requested() {
        panic!("{INTERRUPTED}");
    }
}

/// `std::thread::sleep`, in short slices, so an interrupt stops it within 10 ms.
pub(crate) fn sleep(duration: Duration) {
    if !in_tandem() {
        return std::thread::sleep(duration);
    }
    let deadline = Instant::now() + duration;
    loop {
        stop_if_interrupted();
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return;
        }
        std::thread::sleep(left.min(CHECK_EVERY));
    }
}

/// `tokio::time::sleep` that an interrupt stops within 10 ms.
pub(crate) async fn sleep_async(duration: Duration) {
    interruptible(tokio::time::sleep(duration)).await
}

/// Awaits `future`, stopping the cell within 10 ms if the kernel asks (inside tandem).
/// The wait adds no polls of its own: the task is woken by the future, or by the interrupt.
pub(crate) async fn interruptible<F: std::future::Future>(future: F) -> F::Output {
    if !in_tandem() {
        return future.await;
    }
    tokio::pin!(future);
    let Some(watch) = Watch::begin() else {
        // No watcher thread: look at the request every 10 ms instead.
        let mut checks = tokio::time::interval(CHECK_EVERY);
        loop {
            tokio::select! {
                output = &mut future => return output,
                _ = checks.tick() => stop_if_interrupted(),
            }
        }
    };
    loop {
        tokio::select! {
            biased;
            output = &mut future => return output,
            () = watch.notified() => stop_if_interrupted(),
        }
    }
}

/// One interruptible wait, told of an interrupt by the watcher thread, which looks at the
/// request every 10 ms while any wait is on (and sleeps when none is). The kernel sets the
/// request from a signal handler, which does no more than that store: the thread turns it
/// into a wake-up, and goes on telling until the next cell clears it, so that a wait that
/// begins just after one notice gets the next.
struct Watch {
    watcher: &'static Watcher,
}

/// The watcher thread, and the waits it serves.
struct Watcher {
    thread: std::thread::Thread,
    notice: tokio::sync::Notify,
    waits: AtomicUsize,
}

/// Started with the first wait; `None` if the thread could not be started.
static WATCHER: OnceLock<Option<Watcher>> = OnceLock::new();

fn watch_for_interrupts() -> ! {
    loop {
        match WATCHER.get() {
            Some(Some(watcher)) if watcher.waits.load(Ordering::SeqCst) > 0 => {
                std::thread::sleep(CHECK_EVERY);
                if interrupt_requested() {
                    watcher.notice.notify_waiters();
                }
            }
            // No wait is on (or the watcher is still being put in place): sleep until
            // a wait begins and wakes this thread.
            _ => std::thread::park(),
        }
    }
}

impl Watch {
    fn begin() -> Option<Watch> {
        let watcher = WATCHER
            .get_or_init(|| {
                let started = std::thread::Builder::new()
                    .name("tandem interrupt watch".into())
                    .spawn(|| watch_for_interrupts());
                started.ok().map(|handle| Watcher {
                    thread: handle.thread().clone(),
                    notice: tokio::sync::Notify::new(),
                    waits: AtomicUsize::new(0),
                })
            })
            .as_ref()?;
        if watcher.waits.fetch_add(1, Ordering::SeqCst) == 0 {
            watcher.thread.unpark();
        }
        Some(Watch { watcher })
    }

    fn notified(&self) -> tokio::sync::futures::Notified<'static> {
        self.watcher.notice.notified()
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        self.watcher.waits.fetch_sub(1, Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outside_tandem_nothing_stops() {
        stop_if_interrupted();
        let started = Instant::now();
        sleep(Duration::from_millis(20));
        assert!(started.elapsed() >= Duration::from_millis(20));
    }
}
