//! `tokio::task` as cells see it: tokio's module, except that `spawn_blocking` records the
//! closure's run for the event-loop picture (tokio's task hooks do not see blocking tasks),
//! and `spawn` is the recorded one (see `spawned.rs`).

pub use ::tokio::task::*;

pub use crate::spawned::spawn;

/// Runs `f` on tokio's pool of blocking threads, as tokio's `spawn_blocking` does; the
/// event-loop picture draws its run as a task of its own, on the thread that ran it.
#[track_caller]
pub fn spawn_blocking<F, R>(f: F) -> JoinHandle<R>
where
    F: FnOnce() -> R + Send + 'static,
    R: Send + 'static,
{
    let recorded = crate::poll_recorder::BlockingTask::spawned(std::panic::Location::caller());
    ::tokio::task::spawn_blocking(move || recorded.run(f))
}
