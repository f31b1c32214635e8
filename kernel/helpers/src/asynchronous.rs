//! Asynchronous tasks on tokio: a task that waits with `tokio::time::sleep` gives its
//! thread back to the runtime, so tasks waiting together take as long as the longest.

use crate::spans::Kind;
use crate::task_run::TaskRun;
use std::future::Future;
use std::time::Duration;

/// The async twin of [`crate::blocking_task`]: waits `seconds` with `tokio::time::sleep`,
/// printing when it starts and completes. Needs a tokio runtime (every tandem cell has one;
/// elsewhere see [`run_on_one_thread`]). The future owns its name.
///
/// ```
/// use tandem_helpers::prelude::*;
/// clock::restart();
/// let reports = run_on_one_thread(gather(vec![
///     async_task("A", 0.2),
///     async_task("B", 0.1),
/// ]));
/// assert_eq!(reports, vec!["A waited 0.20 s", "B waited 0.10 s"]);
/// // Both waited at the same time on one thread: the spans overlap.
/// let spans = spans::recorded();
/// assert!(spans.iter().all(|s| s.kind == Kind::Async));
/// assert!(spans[0].start < spans[1].end && spans[1].start < spans[0].end);
/// ```
pub async fn async_task(name: impl Into<String>, seconds: f64) -> String {
    let name = name.into();
    let run = TaskRun::start(&name, Kind::Async, true);
    crate::interrupt::sleep_async(Duration::from_secs_f64(seconds.max(0.0))).await;
    run.finish();
    format!("{name} waited {seconds:.2} s")
}

/// Runs futures concurrently and returns their results in the order given: Rust's
/// `asyncio.gather`.
///
/// ```
/// use tandem_helpers::prelude::*;
/// let doubled = run_on_one_thread(gather((1..=3).map(|n| async move { n * 2 })));
/// assert_eq!(doubled, vec![2, 4, 6]);
/// ```
pub async fn gather<F: Future>(futures: impl IntoIterator<Item = F>) -> Vec<F::Output> {
    futures::future::join_all(futures).await
}

/// Runs a future to completion on a runtime with exactly one thread (this one), like
/// Python's event loop: tasks take turns on that thread.
///
/// ```
/// let here = std::thread::current().id();
/// let there = tandem_helpers::run_on_one_thread(async { std::thread::current().id() });
/// assert_eq!(here, there);
/// // Inside a runtime (as in every tandem cell) it still works, on a thread of its own.
/// let nested = tandem_helpers::run_on_one_thread(async {
///     tandem_helpers::run_on_one_thread(async { 40 + 2 })
/// });
/// assert_eq!(nested, 42);
/// ```
pub fn run_on_one_thread<F>(future: F) -> F::Output
where
    F: Future + Send,
    F::Output: Send,
{
    outside_any_runtime("event-loop", move || {
        let mut builder = tokio::runtime::Builder::new_current_thread();
        crate::kernel_link::attach_runtime_hooks(&mut builder);
        builder
            .enable_all()
            .build()
            .expect("building a tokio runtime")
            .block_on(future)
    })
}

/// Runs a future on a multi-thread runtime with `threads` worker threads (tasks spawned
/// with [`spawn`] may then run in parallel).
///
/// ```
/// use tandem_helpers::prelude::*;
/// let total = run_on_threads(2, async {
///     let a = spawn(async { 1 });
///     let b = spawn(async { 2 });
///     a.await.unwrap() + b.await.unwrap()
/// });
/// assert_eq!(total, 3);
/// ```
pub fn run_on_threads<F>(threads: usize, future: F) -> F::Output
where
    F: Future + Send,
    F::Output: Send,
{
    outside_any_runtime("runtime-main", move || {
        let mut builder = tokio::runtime::Builder::new_multi_thread();
        crate::kernel_link::attach_runtime_hooks(&mut builder);
        builder
            .worker_threads(threads.max(1))
            // tokio's own name, which the spans and the picture show as `tokio worker #N`
            // (or `tokio blocking pool #N`), as for the cells' runtime.
            .thread_name("tokio-runtime-worker")
            .enable_all()
            .build()
            .expect("building a tokio runtime")
            .block_on(future)
    })
}

/// tokio refuses to start a runtime on a thread that is already running one, and a tandem
/// cell runs inside one (that is what makes top-level `.await` work). So from inside a
/// runtime, the new runtime gets a thread of its own and the caller waits for it.
fn outside_any_runtime<T: Send>(thread_name: &str, work: impl FnOnce() -> T + Send) -> T {
    if tokio::runtime::Handle::try_current().is_err() {
        return work();
    }
    std::thread::scope(|scope| {
        std::thread::Builder::new()
            .name(thread_name.to_owned())
            .spawn_scoped(scope, work)
            .expect("starting a thread for the runtime")
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    })
}

/// Starts a task on the current runtime (`tokio::spawn`).
#[track_caller]
pub fn spawn<F>(future: F) -> tokio::task::JoinHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    tokio::spawn(future)
}

/// Runs blocking code on the runtime's pool of blocking threads, so waiting tasks keep
/// running (`tokio::task::spawn_blocking`).
///
/// ```
/// use tandem_helpers::prelude::*;
/// let report = run_on_one_thread(async {
///     spawn_blocking(|| blocking_task("file read", 0.05)).await.unwrap()
/// });
/// assert_eq!(report, "file read waited 0.05 s");
/// ```
#[track_caller]
pub fn spawn_blocking<F, R>(work: F) -> tokio::task::JoinHandle<R>
where
    F: FnOnce() -> R + Send + 'static,
    R: Send + 'static,
{
    tokio::task::spawn_blocking(work)
}
