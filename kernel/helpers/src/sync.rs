//! Synchronous (blocking) tasks: each holds its thread while it waits, so tasks run one
//! after another and the total is the sum of their waits.

use crate::spans::Kind;
use crate::task_run::TaskRun;
use std::time::Duration;

/// A named task that waits `seconds` with `std::thread::sleep`, printing when it starts and
/// completes (times on the cell clock). Returns a short report. An interrupt stops the
/// wait within 10 ms, and the session's variables survive it.
///
/// ```
/// use tandem_helpers::prelude::*;
/// clock::restart();
/// let report = blocking_task("download", 0.1);
/// assert_eq!(report, "download waited 0.10 s");
/// let span = &spans::recorded()[0];
/// assert_eq!((span.name.as_str(), span.kind), ("download", Kind::Blocking));
/// assert!(span.duration().as_secs_f64() >= 0.1);
/// ```
pub fn blocking_task(name: &str, seconds: f64) -> String {
    let run = TaskRun::start(name, Kind::Blocking, true);
    crate::interrupt::sleep(Duration::from_secs_f64(seconds.max(0.0)));
    run.finish();
    format!("{name} waited {seconds:.2} s")
}
