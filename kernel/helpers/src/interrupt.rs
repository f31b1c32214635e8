//! Stopping a cell when the learner presses interrupt. The helpers wait in short slices and
//! look at the kernel's interrupt request between them, so a waiting task stops within
//! 10 ms and the session keeps its variables. Long loops of your own can do the same.

use crate::kernel_link::{in_tandem, interrupt_requested};
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
pub(crate) async fn interruptible<F: std::future::Future>(future: F) -> F::Output {
    if !in_tandem() {
        return future.await;
    }
    tokio::pin!(future);
    let mut checks = tokio::time::interval(CHECK_EVERY);
    loop {
        tokio::select! {
            output = &mut future => return output,
            _ = checks.tick() => stop_if_interrupted(),
        }
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
