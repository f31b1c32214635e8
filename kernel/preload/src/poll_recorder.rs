//! The poll recorder: what tokio's runtime does while a cell runs, from its own task hooks
//! (tokio built with `--cfg tokio_unstable`): each task's spawn and the place in the code
//! that spawned it, the start and end of every poll and the thread it ran on, and each
//! task's end. The cell's top-level future is no tokio task; `Runtime::block_on` records
//! its polls as task 0. Futures inside one task (each branch of `join!`) are wrapped in a
//! [`Branch`] that records its own polls. The events go to the kernel over a channel of
//! their own (never the cell's stdout), every 100 ms and as the cell's future ends.

use crate::events_sender;
use crate::recorded::{self, At};
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use tandem_helpers::kernel_link::events::{self, TaskEvent};
use tandem_helpers::kernel_link::{self, monotonic_ns};

/// Whether to record: inside tandem, unless the kernel said `:timeline off`.
fn recording() -> bool {
    kernel_link::in_tandem() && events_sender::recording()
}

/// Records a poll's start or end, or a task's end, on this thread.
pub(crate) fn task_event(what: TaskEvent, task: u64) {
    if !recording() {
        return;
    }
    // A task's end comes right after its last poll: its time is that poll's end.
    let at = match what {
        TaskEvent::Ended => At::Last,
        TaskEvent::PollStarted | TaskEvent::PollEnded => At::Now,
    };
    recorded::record_task_event(at, what, task);
}

/// Records a task's spawn from `place`.
pub(crate) fn spawned(task: u64, place: &'static std::panic::Location<'static>) {
    if !recording() {
        return;
    }
    thread_local! {
        /// The last place this thread spawned from, written out (10,000 tasks are spawned
        /// from one line).
        static LAST_PLACE: std::cell::RefCell<(usize, String)> =
            const { std::cell::RefCell::new((0, String::new())) };
    }
    let _ = LAST_PLACE.try_with(|last| {
        let mut last = last.borrow_mut();
        let address = std::ptr::from_ref(place) as usize;
        if last.0 != address {
            *last = (
                address,
                format!("{}:{}:{}", place.file(), place.line(), place.column()),
            );
        }
        // Spawned inside the poll that spawns it: the time of that poll's start will do.
        recorded::record(At::Last, |bytes, _, at| {
            events::encode_spawned(bytes, task, at, &last.1)
        });
    });
}

/// Called as a cell's future starts: what was recorded between cells (a task left running
/// from an earlier cell) is not this cell's, and is forgotten.
pub(crate) fn cell_started() {
    // The helpers' own runtimes (run_on_one_thread, run_on_threads) get the hooks too.
    kernel_link::set_runtime_hooks(attach);
    events_sender::learn_switch();
    // Before the sending thread may send again: what it sends next is this cell's.
    recorded::forget();
    events_sender::start_sending(recorded::take);
}

/// A `spawn_blocking` closure, recorded as a task of its own (tokio's hooks do not see
/// it): spawned from its caller's place, polled once for its whole run, on the thread
/// that ran it.
pub(crate) struct BlockingTask {
    id: u64,
}

impl BlockingTask {
    pub(crate) fn spawned(place: &'static std::panic::Location<'static>) -> BlockingTask {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        let id = events::BLOCKING_TASK_BIT | NEXT.fetch_add(1, Ordering::Relaxed);
        spawned(id, place);
        BlockingTask { id }
    }

    /// Runs `work`, recorded (its end too when it panics).
    pub(crate) fn run<R>(self, work: impl FnOnce() -> R) -> R {
        struct Ends(u64);
        impl Drop for Ends {
            fn drop(&mut self) {
                task_event(TaskEvent::PollEnded, self.0);
                task_event(TaskEvent::Ended, self.0);
            }
        }
        task_event(TaskEvent::PollStarted, self.id);
        let _ends = Ends(self.id);
        work()
    }
}

/// tokio's task id as a number (its `Hash` writes the number it holds).
pub(crate) fn task_number(id: impl Hash) -> u64 {
    struct Number(u64);
    impl Hasher for Number {
        fn write(&mut self, bytes: &[u8]) {
            for byte in bytes {
                self.0 = self.0 << 8 | u64::from(*byte);
            }
        }
        fn write_u64(&mut self, number: u64) {
            self.0 = number;
        }
        fn finish(&self) -> u64 {
            self.0
        }
    }
    let mut number = Number(0);
    id.hash(&mut number);
    number.0
}

/// Sends the rest of what the cell recorded to the kernel, then the cell's end. Called as
/// the cell's top-level future finishes.
pub(crate) fn cell_ended() {
    events_sender::cell_ended(|| {
        // Counted first: a thread that ended is let go as its last events are taken.
        let dropped = recorded::take_dropped();
        let mut bytes = recorded::take();
        events::encode_cell_ended(&mut bytes, monotonic_ns(), dropped);
        bytes
    });
}

/// Puts the recorder's hooks on a runtime about to be built.
pub(crate) fn attach(builder: &mut ::tokio::runtime::Builder) {
    #[cfg(tokio_unstable)]
    builder
        .on_task_spawn(|meta| spawned(task_number(meta.id()), meta.spawned_at()))
        .on_before_task_poll(|meta| task_event(TaskEvent::PollStarted, task_number(meta.id())))
        .on_after_task_poll(|meta| task_event(TaskEvent::PollEnded, task_number(meta.id())))
        .on_task_terminate(|meta| task_event(TaskEvent::Ended, task_number(meta.id())));
    #[cfg(not(tokio_unstable))]
    let _ = builder;
}

/// The cell's top-level future, with its polls recorded as task 0.
pub(crate) struct Recording<'a> {
    future: std::pin::Pin<&'a mut dyn std::future::Future<Output = ()>>,
}

impl<'a> Recording<'a> {
    pub(crate) fn cell(
        future: std::pin::Pin<&'a mut dyn std::future::Future<Output = ()>>,
    ) -> Self {
        Recording { future }
    }
}

impl std::future::Future for Recording<'_> {
    type Output = ();

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        context: &mut std::task::Context<'_>,
    ) -> std::task::Poll<()> {
        task_event(TaskEvent::PollStarted, 0);
        let polled = self.future.as_mut().poll(context);
        task_event(TaskEvent::PollEnded, 0);
        polled
    }
}

/// A future inside a task (a branch of `join!`, `try_join!`), named by its source text,
/// whose polls and wake-ups are recorded as that task's branch.
pub struct Branch<F> {
    id: u64,
    /// Whether `future` finished (a branch dropped before that was cancelled).
    finished: bool,
    /// Whether `future` is a `&mut` borrow of one that outlives the branch.
    borrowed: bool,
    /// The waker last given to `future`, which records its wake-ups, and the one it wraps.
    waker: Option<(std::task::Waker, std::task::Waker)>,
    future: F,
}

/// Wraps `future` (the `join!` macros of the preloaded `tokio` call this for each branch).
pub fn branch<F: std::future::IntoFuture>(name: &str, future: F) -> Branch<F::IntoFuture> {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    let id = NEXT.fetch_add(1, Ordering::Relaxed);
    if recording() {
        let name = branch_name(name);
        recorded::record(At::Now, |bytes, _, at| {
            events::encode_branch_made(bytes, id, at, &name)
        });
    }
    Branch {
        id,
        finished: false,
        borrowed: false,
        waker: None,
        future: future.into_future(),
    }
}

/// A `select!` branch's future and its name; tokio's `select!` makes it a [`Branch`] (it
/// calls `into_future`). A struct expression, not a call, so that temporaries in the
/// future's expression (`&mut Box::pin(..)`, `pin!(..)`) live as long as in tokio's own.
pub struct Named<F> {
    pub name: &'static str,
    pub future: F,
    /// The branch is `&mut fut`: `fut` lives on when the branch is dropped (not cancelled).
    pub borrowed: bool,
}

impl<F: std::future::IntoFuture> std::future::IntoFuture for Named<F> {
    type Output = F::Output;
    type IntoFuture = Branch<F::IntoFuture>;

    fn into_future(self) -> Self::IntoFuture {
        let mut branch = branch(self.name, self.future);
        branch.borrowed = self.borrowed;
        branch
    }
}

/// A branch's name: its source text on one line, cut to about 60 characters.
fn branch_name(source: &str) -> String {
    let one_line = source.split_whitespace().collect::<Vec<_>>().join(" ");
    match one_line.char_indices().nth(60) {
        Some((cut, _)) => format!("{}…", &one_line[..cut]),
        None => one_line,
    }
}

/// Wakes a branch's task, and records that the branch is ready again.
struct RecordingWaker {
    branch: u64,
    inner: std::task::Waker,
}

impl std::task::Wake for RecordingWaker {
    fn wake(self: std::sync::Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &std::sync::Arc<Self>) {
        let branch = self.branch;
        if recording() {
            recorded::record(At::Now, |bytes, _, at| {
                events::encode_branch_woken(bytes, branch, at)
            });
        }
        self.inner.wake_by_ref();
    }
}

impl<F: std::future::Future> std::future::Future for Branch<F> {
    type Output = F::Output;

    fn poll(
        self: std::pin::Pin<&mut Self>,
        context: &mut std::task::Context<'_>,
    ) -> std::task::Poll<F::Output> {
        // SAFETY: `future` is structurally pinned: it is never moved out of the `Branch`
        // (`drop` only reads `finished`), and the other fields are never pinned.
        let this = unsafe { self.get_unchecked_mut() };
        // SAFETY: as above.
        let future = unsafe { std::pin::Pin::new_unchecked(&mut this.future) };
        if !recording() {
            let polled = future.poll(context);
            this.finished = polled.is_ready();
            return polled;
        }
        let given = context.waker();
        let reuse = matches!(&this.waker, Some((_, inner)) if inner.will_wake(given));
        if !reuse {
            let recording = std::sync::Arc::new(RecordingWaker {
                branch: this.id,
                inner: given.clone(),
            });
            this.waker = Some((std::task::Waker::from(recording), given.clone()));
        }
        let recording = match &this.waker {
            Some((recording, _)) => recording,
            None => given,
        };
        let mut recorded_context = std::task::Context::from_waker(recording);
        let start = monotonic_ns();
        let polled = future.poll(&mut recorded_context);
        let end = monotonic_ns();
        let task = ::tokio::task::try_id().map_or(0, task_number);
        let id = this.id;
        recorded::record(At::Given(end), |bytes, thread, _| {
            events::encode_branch_polled(bytes, id, task, (start, end), thread)
        });
        this.finished = polled.is_ready();
        polled
    }
}

impl<F> Drop for Branch<F> {
    /// A branch dropped before it finished was cancelled: the loser of a `select!`. (Not a
    /// future borrowed for one turn of a loop, `&mut sleep`, which lives on; nor one
    /// dropped as a panic unwinds.)
    fn drop(&mut self) {
        if !self.finished && !self.borrowed && !std::thread::panicking() && recording() {
            let branch = self.id;
            recorded::record(At::Now, |bytes, _, at| {
                events::encode_branch_cancelled(bytes, branch, at)
            });
        }
    }
}
