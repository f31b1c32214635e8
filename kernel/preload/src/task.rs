//! `tokio::task` as cells see it: tokio's module, except that `spawn_blocking` records the
//! closure's run for the event-loop picture (tokio's task hooks do not see blocking tasks),
//! `spawn` is the recorded one (see `spawned.rs`), and a `Builder` names tasks (tokio's
//! own needs its `tracing` feature, which the preloaded tokio does not have).

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

/// Spawns tasks with a name, as tokio's `task::Builder`: the event-loop picture calls the
/// task by it (`task "orders" (cell:4)`).
#[derive(Debug, Default, Clone, Copy)]
pub struct Builder<'a> {
    name: Option<&'a str>,
}

impl<'a> Builder<'a> {
    /// A builder for a task without a name yet.
    pub fn new() -> Builder<'a> {
        Builder::default()
    }

    /// The task's name.
    pub fn name(&self, name: &'a str) -> Builder<'a> {
        Builder { name: Some(name) }
    }

    /// Spawns `future` as a task on the current runtime, as `tokio::spawn`.
    #[track_caller]
    pub fn spawn<Fut>(self, future: Fut) -> std::io::Result<JoinHandle<Fut::Output>>
    where
        Fut: std::future::Future + Send + 'static,
        Fut::Output: Send + 'static,
    {
        let handle = crate::spawned::spawn(future);
        self.named(crate::poll_recorder::task_number(handle.id()));
        Ok(handle)
    }

    /// Spawns `future` on the runtime of `handle`.
    #[track_caller]
    pub fn spawn_on<Fut>(
        self,
        future: Fut,
        handle: &crate::runtime::Handle,
    ) -> std::io::Result<JoinHandle<Fut::Output>>
    where
        Fut: std::future::Future + Send + 'static,
        Fut::Output: Send + 'static,
    {
        let handle = handle.spawn(crate::spawned::Spawned::new(future));
        self.named(crate::poll_recorder::task_number(handle.id()));
        Ok(handle)
    }

    /// Spawns a `!Send` future on the current `LocalSet`, as `tokio::task::spawn_local`.
    #[track_caller]
    pub fn spawn_local<Fut>(self, future: Fut) -> std::io::Result<JoinHandle<Fut::Output>>
    where
        Fut: std::future::Future + 'static,
        Fut::Output: 'static,
    {
        let handle = ::tokio::task::spawn_local(future);
        self.named(crate::poll_recorder::task_number(handle.id()));
        Ok(handle)
    }

    /// Runs `f` on tokio's blocking pool, as [`spawn_blocking`].
    #[track_caller]
    pub fn spawn_blocking<F, R>(self, f: F) -> std::io::Result<JoinHandle<R>>
    where
        F: FnOnce() -> R + Send + 'static,
        R: Send + 'static,
    {
        let place = std::panic::Location::caller();
        let recorded = crate::poll_recorder::BlockingTask::spawned(place);
        self.named(recorded.id());
        Ok(::tokio::task::spawn_blocking(move || recorded.run(f)))
    }

    fn named(self, task: u64) {
        if let Some(name) = self.name {
            crate::poll_recorder::task_named(task, name);
        }
    }
}
