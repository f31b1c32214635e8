//! Stopping a cell when the learner presses interrupt. Blocking helpers wait in short
//! slices and look at the kernel's interrupt request between them; async helpers are woken
//! by a watcher thread when it comes. Either way a waiting task stops within 10 ms and the
//! session keeps its variables. Long loops of your own can call `stop_if_interrupted`.

use crate::kernel_link::{in_tandem, interrupt_requested};
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
    let Some(notice) = interrupt_notice() else {
        return future.await;
    };
    tokio::pin!(future);
    loop {
        tokio::select! {
            biased;
            output = &mut future => return output,
            () = notice.notified() => stop_if_interrupted(),
        }
    }
}

/// Told of an interrupt by a thread that looks at the request every 10 ms, and goes on
/// telling until the next cell clears it (so a wait that starts just after a notice is
/// told at the next one). The kernel sets the request from a signal handler, which may do
/// nothing but that one store: the thread turns it into a wake-up. `None` outside tandem.
fn interrupt_notice() -> Option<&'static tokio::sync::Notify> {
    static NOTICE: OnceLock<Option<tokio::sync::Notify>> = OnceLock::new();
    let notice = NOTICE.get_or_init(|| {
        if !in_tandem() {
            return None;
        }
        let watch = std::thread::Builder::new()
            .name("tandem interrupt watch".into())
            .spawn(|| loop {
                std::thread::sleep(CHECK_EVERY);
                if interrupt_requested() {
                    if let Some(Some(notice)) = NOTICE.get() {
                        notice.notify_waiters();
                    }
                }
            });
        watch.is_ok().then(tokio::sync::Notify::new)
    });
    notice.as_ref()
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
