//! The cell clock: seconds since an origin that the kernel restarts before each cell, and
//! a `timed` wrapper that returns a value with how long it took.

use std::sync::Mutex;
use std::time::{Duration, Instant};

static ORIGIN: Mutex<Option<Instant>> = Mutex::new(None);

/// Starts the clock again at zero and forgets the spans recorded so far.
pub fn restart() {
    if let Ok(mut origin) = ORIGIN.lock() {
        *origin = Some(Instant::now());
    }
    crate::spans::clear();
}

/// The clock's origin (set on first use if nothing restarted it).
pub fn origin() -> Instant {
    let mut origin = ORIGIN
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    *origin.get_or_insert_with(Instant::now)
}

/// Time since the origin.
pub fn now() -> Duration {
    origin().elapsed()
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
