//! The poll recorder: what tokio's runtime does while a cell runs, from its own task hooks
//! (tokio built with `--cfg tokio_unstable`): each task's spawn and the place in the code
//! that spawned it, the start and end of every poll and the thread it ran on, and each
//! task's end. The cell's top-level future is no tokio task; `Runtime::block_on` records
//! its polls as task 0. Futures inside one task (each branch of `join!`) are wrapped in a
//! [`Branch`] that records its own polls. When the cell's future is done, the events go
//! to the kernel over a channel of their own (never the cell's stdout), which draws them.

use std::cell::Cell;
use std::hash::{Hash, Hasher};
use std::io::Write;
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Mutex;
use tandem_helpers::kernel_link::events::{self, TaskEvent};
use tandem_helpers::kernel_link::{self, monotonic_ns};

/// The name the events give the thread that runs cells (the process's main thread).
const CELL_THREAD: &str = "cell thread";

/// Events kept per cell; past this they are counted, not kept.
const MOST_EVENTS: u64 = 200_000;

/// The events of the running cell, encoded, and how many there are.
struct Recorded {
    bytes: Vec<u8>,
    events: u64,
    dropped: u64,
}

static RECORDED: Mutex<Recorded> = Mutex::new(Recorded {
    bytes: Vec::new(),
    events: 0,
    dropped: 0,
});

fn with_recorded(record: impl FnOnce(&mut Vec<u8>)) {
    let mut recorded = RECORDED.lock().unwrap_or_else(|p| p.into_inner());
    if recorded.events >= MOST_EVENTS {
        recorded.dropped += 1;
        return;
    }
    recorded.events += 1;
    record(&mut recorded.bytes);
}

/// Records a poll's start or end, or a task's end, on this thread.
pub(crate) fn task_event(what: TaskEvent, task: u64) {
    if !kernel_link::in_tandem() {
        return;
    }
    let at = monotonic_ns();
    let thread = this_thread();
    with_recorded(|bytes| events::encode_task_event(bytes, what, task, at, thread));
}

/// Records a task's spawn from `place`.
#[cfg_attr(not(tokio_unstable), allow(dead_code))]
pub(crate) fn spawned(task: u64, place: &std::panic::Location<'_>) {
    if !kernel_link::in_tandem() {
        return;
    }
    let at = monotonic_ns();
    let place = format!("{}:{}:{}", place.file(), place.line(), place.column());
    with_recorded(|bytes| events::encode_spawned(bytes, task, at, &place));
}

/// This thread's number for the events, named in them the first time it is used.
fn this_thread() -> u32 {
    thread_local! {
        static NUMBER: Cell<Option<u32>> = const { Cell::new(None) };
    }
    static NEXT: AtomicU32 = AtomicU32::new(1);
    NUMBER.with(|number| {
        if let Some(known) = number.get() {
            return known;
        }
        let new = NEXT.fetch_add(1, Ordering::Relaxed);
        number.set(Some(new));
        let thread = std::thread::current();
        let name = match thread.name() {
            _ if crate::runtime::runs_cells() => CELL_THREAD.to_owned(),
            Some(name) => name.to_owned(),
            None => format!("{:?}", thread.id()),
        };
        with_recorded(|bytes| events::encode_thread_named(bytes, new, &name));
        NAMES
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push((new, name));
        new
    })
}

/// Every thread named so far: named again in each cell's events, so that no cell lacks a
/// name (the events of a cell can be cut short at the limit, or a connection lost).
static NAMES: Mutex<Vec<(u32, String)>> = Mutex::new(Vec::new());

/// Called as a cell's future starts: what was recorded between cells (a task left running
/// from an earlier cell) is not this cell's, and is forgotten.
pub(crate) fn cell_started() {
    let names = NAMES.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let mut recorded = RECORDED.lock().unwrap_or_else(|p| p.into_inner());
    recorded.bytes.clear();
    recorded.events = 0;
    recorded.dropped = 0;
    for (number, name) in &names {
        events::encode_thread_named(&mut recorded.bytes, *number, name);
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

/// Sends what the cell recorded to the kernel, then the cell's end. Called as the cell's
/// top-level future finishes.
pub(crate) fn cell_ended() {
    let Some(name) = kernel_link::events_channel_name() else {
        return;
    };
    let (mut bytes, dropped) = {
        let mut recorded = RECORDED.lock().unwrap_or_else(|p| p.into_inner());
        recorded.events = 0;
        (
            std::mem::take(&mut recorded.bytes),
            std::mem::take(&mut recorded.dropped),
        )
    };
    events::encode_cell_ended(&mut bytes, monotonic_ns(), dropped);
    let mut channel = CHANNEL.lock().unwrap_or_else(|p| p.into_inner());
    if channel.is_none() {
        *channel = connect(&name);
    }
    let sent = channel.as_mut().map(|stream| stream.write_all(&bytes));
    if let Some(Err(_)) = sent {
        *channel = None; // the kernel went away or restarted its reader: try again next time
    }
}

static CHANNEL: Mutex<Option<UnixStream>> = Mutex::new(None);
/// The longest a cell's end waits to hand its events to the kernel.
const SEND_WITHIN: std::time::Duration = std::time::Duration::from_secs(2);

/// Connects to the kernel's events channel, if the process listening there is this user's.
fn connect(name: &str) -> Option<UnixStream> {
    use std::os::linux::net::SocketAddrExt;
    let address = std::os::unix::net::SocketAddr::from_abstract_name(name).ok()?;
    let stream = UnixStream::connect_addr(&address).ok()?;
    // A kernel that stopped reading must not hold the cell up for long.
    stream.set_write_timeout(Some(SEND_WITHIN)).ok()?;
    kernel_link::peer_is_this_user(&stream).then_some(stream)
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
    /// The waker last given to `future`, which records its wake-ups, and the one it wraps.
    waker: Option<(std::task::Waker, std::task::Waker)>,
    future: F,
}

/// Wraps `future` (the `join!` macros of the preloaded `tokio` call this for each branch).
pub fn branch<F: std::future::IntoFuture>(name: &'static str, future: F) -> Branch<F::IntoFuture> {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    let id = NEXT.fetch_add(1, Ordering::Relaxed);
    if kernel_link::in_tandem() {
        let (at, name) = (monotonic_ns(), branch_name(name));
        with_recorded(|bytes| events::encode_branch_made(bytes, id, at, &name));
    }
    Branch {
        id,
        waker: None,
        future: future.into_future(),
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
        let (branch, at) = (self.branch, monotonic_ns());
        with_recorded(|bytes| events::encode_branch_woken(bytes, branch, at));
        self.inner.wake_by_ref();
    }
}

impl<F: std::future::Future> std::future::Future for Branch<F> {
    type Output = F::Output;

    fn poll(
        self: std::pin::Pin<&mut Self>,
        context: &mut std::task::Context<'_>,
    ) -> std::task::Poll<F::Output> {
        // SAFETY: `future` is structurally pinned: it is never moved out of the `Branch`,
        // and the other fields are never pinned.
        let this = unsafe { self.get_unchecked_mut() };
        // SAFETY: as above.
        let future = unsafe { std::pin::Pin::new_unchecked(&mut this.future) };
        if !kernel_link::in_tandem() {
            return future.poll(context);
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
        let Some((recording, _)) = &this.waker else {
            return future.poll(context);
        };
        let mut recorded_context = std::task::Context::from_waker(recording);
        let start = monotonic_ns();
        let polled = future.poll(&mut recorded_context);
        let end = monotonic_ns();
        let task = ::tokio::task::try_id().map_or(0, task_number);
        let (id, thread) = (this.id, this_thread());
        with_recorded(|bytes| events::encode_branch_polled(bytes, id, task, (start, end), thread));
        polled
    }
}
