//! `tokio::time` as cells see it: tokio's module, except that `sleep`, `sleep_until`,
//! `timeout` and `timeout_at` note the timer they set (which task or branch set it, and
//! when it is due), so that the event-loop picture shows what a task was waiting for.

pub use ::tokio::time::*;

use crate::branch;
use crate::poll_recorder::{recording, task_number};
use crate::recorded::{self, At};
use std::future::IntoFuture;
use tandem_helpers::kernel_link::events::{self, TimerKind};

/// Waits until `duration` has passed, as tokio's `sleep`.
#[track_caller]
pub fn sleep(duration: Duration) -> Sleep {
    timer_set(TimerKind::Sleep, duration);
    ::tokio::time::sleep(duration)
}

/// Waits until `deadline`, as tokio's `sleep_until`.
#[track_caller]
pub fn sleep_until(deadline: Instant) -> Sleep {
    timer_set(
        TimerKind::Sleep,
        deadline.saturating_duration_since(Instant::now()),
    );
    ::tokio::time::sleep_until(deadline)
}

/// Gives `future` at most `duration`, as tokio's `timeout`.
#[track_caller]
pub fn timeout<F: IntoFuture>(duration: Duration, future: F) -> Timeout<F::IntoFuture> {
    timer_set(TimerKind::Timeout, duration);
    ::tokio::time::timeout(duration, future)
}

/// Gives `future` until `deadline`, as tokio's `timeout_at`.
#[track_caller]
pub fn timeout_at<F: IntoFuture>(deadline: Instant, future: F) -> Timeout<F::IntoFuture> {
    timer_set(
        TimerKind::Timeout,
        deadline.saturating_duration_since(Instant::now()),
    );
    ::tokio::time::timeout_at(deadline, future)
}

/// Records a timer due in `duration`, set by the task (and branch) polled on this thread.
fn timer_set(kind: TimerKind, duration: Duration) {
    if !recording() {
        return;
    }
    let task = ::tokio::task::try_id().map_or(0, task_number);
    let branch = branch::polling();
    let due_in = u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX);
    recorded::record(At::Now, |bytes, _, at| {
        events::encode_timer_set(bytes, (task, branch), (at, at.saturating_add(due_in)), kind)
    });
}
