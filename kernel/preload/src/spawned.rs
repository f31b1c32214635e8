//! Spawned tasks, recorded beyond what tokio's hooks tell: `tokio::spawn` wraps the future
//! so that the task's cancellation (dropped before it finished: aborted, or its runtime
//! shut down) is seen. (Not its wake-ups: a waker of its own for every task cost 15 % of
//! the wall time of 10,000 trivial tasks.)

use crate::poll_recorder::{recording, task_number};
use crate::recorded::{self, At};
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use tandem_helpers::kernel_link::events;

/// Spawns `future` as a new task, as tokio's `spawn` does (the same `JoinHandle`); the
/// event-loop picture sees whether it was cancelled.
#[track_caller]
pub fn spawn<F>(future: F) -> ::tokio::task::JoinHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    ::tokio::task::spawn(Spawned::new(future))
}

/// A spawned future and what the recorder needs to see of it.
pub(crate) struct Spawned<F> {
    /// Whether `future` finished (a task dropped before that was cancelled).
    finished: bool,
    /// Set while `future` is polled: still set when it is dropped, its poll panicked.
    polling: bool,
    future: F,
}

impl<F> Spawned<F> {
    pub(crate) fn new(future: F) -> Spawned<F> {
        Spawned {
            finished: false,
            polling: false,
            future,
        }
    }
}

impl<F: Future> Future for Spawned<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<F::Output> {
        // SAFETY: `future` is structurally pinned: it is never moved out of `Spawned`
        // (`drop` only reads the flags), and the flags are never pinned.
        let this = unsafe { self.get_unchecked_mut() };
        // SAFETY: as above.
        let future = unsafe { Pin::new_unchecked(&mut this.future) };
        this.polling = true;
        let polled = future.poll(context);
        this.polling = false;
        this.finished = polled.is_ready();
        polled
    }
}

impl<F> Drop for Spawned<F> {
    /// Dropped before it finished: the task was aborted, or its runtime shut down (tokio
    /// drops a task's future with the task's id set, so `try_id` names it). Not a task
    /// whose poll panicked: tokio drops it as the panic unwinds (`polling` is still set).
    fn drop(&mut self) {
        if self.finished || self.polling || std::thread::panicking() || !recording() {
            return;
        }
        if let Some(id) = ::tokio::task::try_id() {
            let task = task_number(id);
            recorded::record(At::Now, |bytes, _, at| {
                events::encode_task_cancelled(bytes, task, at)
            });
        }
    }
}
