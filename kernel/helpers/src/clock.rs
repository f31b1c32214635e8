//! The cell clock: seconds since the running cell started (inside tandem the kernel marks
//! that moment), and a `timed` wrapper that returns a value with how long it took.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// An origin set by [`restart`], with the cell it was set in.
static RESTARTED: Mutex<Option<(u64, Instant)>> = Mutex::new(None);

/// Starts the clock again at zero and forgets the spans recorded so far in this cell.
pub fn restart() {
    if let Ok(mut origin) = RESTARTED.lock() {
        *origin = Some((crate::kernel_link::cell_number(), Instant::now()));
    }
    crate::spans::clear();
}

/// Time since the clock's origin: the last [`restart`] in this cell, else the start of the
/// cell (inside tandem), else the first time the clock was read.
pub fn now() -> Duration {
    let mut restarted = RESTARTED
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let cell = crate::kernel_link::current_cell();
    match (*restarted, cell) {
        (Some((set_in, origin)), _) if set_in == cell.map_or(0, |(number, _)| number) => {
            origin.elapsed()
        }
        (_, Some((_, started_ns))) => {
            Duration::from_nanos(crate::kernel_link::monotonic_ns().saturating_sub(started_ns))
        }
        _ => {
            let origin = Instant::now();
            *restarted = Some((0, origin));
            Duration::ZERO
        }
    }
}

/// Runs `work` and returns its value and how long it took.
///
/// ```
/// let (sum, took) = tandem_helpers::timed(|| (1..=100).sum::<u32>());
/// assert_eq!(sum, 5050);
/// assert!(took.as_secs_f64() < 1.0);
/// ```
pub fn timed<T>(work: impl FnOnce() -> T) -> (T, Duration) {
    let started = Instant::now();
    let value = work();
    (value, started.elapsed())
}

/// Awaits `future` and returns its value and how long it took.
///
/// ```
/// # tandem_helpers::run_on_one_thread(async {
/// let (value, took) = tandem_helpers::clock::timed_async(async { 7 }).await;
/// assert_eq!(value, 7);
/// assert!(took.as_secs_f64() < 1.0);
/// # });
/// ```
pub async fn timed_async<T>(future: impl std::future::Future<Output = T>) -> (T, Duration) {
    let started = Instant::now();
    let value = future.await;
    (value, started.elapsed())
}

/// `0.00s`-style stamp used in the tasks' printed lines.
pub fn stamp(at: Duration) -> String {
    format!("{:>5.2}s", at.as_secs_f64())
}
