//! Futures inside one task, recorded: each branch of `join!`, `try_join!`, `select!` and
//! `join_all` is wrapped in a [`Branch`] that records its polls (with the task and thread
//! they ran in), its wake-ups (through the waker it hands the future) and its cancellation.

use crate::poll_recorder::{place_text, recording, task_number};
use crate::recorded::{self, At};
use std::cell::Cell;
use std::panic::Location;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use tandem_helpers::kernel_link::events;
use tandem_helpers::kernel_link::monotonic_ns;

thread_local! {
    /// The branch being polled on this thread (0: none), for timers set inside it.
    static POLLING: Cell<u64> = const { Cell::new(0) };
}

/// The branch this thread is polling, if any (0: none).
pub(crate) fn polling() -> u64 {
    POLLING.try_with(Cell::get).unwrap_or(0)
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
    waker: Option<(Waker, Waker)>,
    future: F,
}

/// Wraps `future` (the `join!` macros of the preloaded `tokio` call this for each branch);
/// the branch's place is the macro's, in the cell.
#[track_caller]
pub fn branch<F: std::future::IntoFuture>(name: &str, future: F) -> Branch<F::IntoFuture> {
    branch_at(|| branch_name(name), Location::caller(), future)
}

/// Wraps `future`, made at `place`, named by `name()` (asked only when recording).
pub(crate) fn branch_at<F: std::future::IntoFuture>(
    name: impl FnOnce() -> String,
    place: &'static Location<'static>,
    future: F,
) -> Branch<F::IntoFuture> {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    let id = NEXT.fetch_add(1, Ordering::Relaxed);
    if recording() {
        let name = name();
        place_text(place, |place| {
            recorded::record(At::Now, |bytes, _, at| {
                events::encode_branch_made(bytes, id, at, &name, place)
            });
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

    #[track_caller]
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
    inner: Waker,
}

impl Wake for RecordingWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        let branch = self.branch;
        if recording() {
            recorded::record(At::Now, |bytes, _, at| {
                events::encode_branch_woken(bytes, branch, at)
            });
        }
        self.inner.wake_by_ref();
    }
}

/// Puts `branch` back as the one this thread polls when dropped (branches nest).
struct PollingBranch(u64);

impl PollingBranch {
    fn enter(branch: u64) -> PollingBranch {
        PollingBranch(
            POLLING
                .try_with(|polling| polling.replace(branch))
                .unwrap_or(0),
        )
    }
}

impl Drop for PollingBranch {
    fn drop(&mut self) {
        let _ = POLLING.try_with(|polling| polling.set(self.0));
    }
}

impl<F: std::future::Future> std::future::Future for Branch<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<F::Output> {
        // SAFETY: `future` is structurally pinned: it is never moved out of the `Branch`
        // (`drop` only reads `finished`), and the other fields are never pinned.
        let this = unsafe { self.get_unchecked_mut() };
        // SAFETY: as above.
        let future = unsafe { Pin::new_unchecked(&mut this.future) };
        if !recording() {
            let polled = future.poll(context);
            this.finished = polled.is_ready();
            return polled;
        }
        let given = context.waker();
        let reuse = matches!(&this.waker, Some((_, inner)) if inner.will_wake(given));
        if !reuse {
            let recording = Arc::new(RecordingWaker {
                branch: this.id,
                inner: given.clone(),
            });
            this.waker = Some((Waker::from(recording), given.clone()));
        }
        let recording = match &this.waker {
            Some((recording, _)) => recording,
            None => given,
        };
        let mut recorded_context = Context::from_waker(recording);
        let start = monotonic_ns();
        let polled = {
            let _polling = PollingBranch::enter(this.id);
            future.poll(&mut recorded_context)
        };
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
