//! The poll recorder: what tokio's runtime does while a cell runs, from its own task hooks
//! (tokio built with `--cfg tokio_unstable`): each task's spawn and the place in the code
//! that spawned it, the start and end of every poll and the thread it ran on, and each
//! task's end. The cell's top-level future is no tokio task; `Runtime::block_on` records
//! its polls as task 0. Futures inside one task (each branch of `join!`) are wrapped in a
//! `Branch` that records its own polls (`branch.rs`); spawned futures, to see their
//! wake-ups and cancellation (`spawned.rs`); timers are noted as they are set (`time.rs`).
//! The events go to the kernel over a channel of their own (never the cell's stdout),
//! every 100 ms and as the cell's future ends.

use crate::events_sender;
use crate::recorded::{self, At};
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use tandem_helpers::kernel_link::events::{self, TaskEvent};
use tandem_helpers::kernel_link::{self, monotonic_ns};

/// Whether to record: inside tandem, unless the kernel said `:timeline off`.
pub(crate) fn recording() -> bool {
    kernel_link::in_tandem() && events_sender::recording()
}

/// Records a poll's start or end, or a task's end, on this thread.
pub(crate) fn task_event(what: TaskEvent, task: u64) {
    if recording() {
        recorded::record_task_event(what, task);
    }
}

/// Records the name a task was given (`tokio::task::Builder::name`).
pub(crate) fn task_named(task: u64, name: &str) {
    if recording() {
        recorded::record(At::Now, |bytes, _, _| {
            events::encode_task_named(bytes, task, name)
        });
    }
}

/// Records a task's spawn from `place`.
pub(crate) fn spawned(task: u64, place: &'static std::panic::Location<'static>) {
    if recording() {
        recorded::record_spawned(task, place_number(place));
    }
}

/// The number of `place` in this cell's events; the first time this thread uses it in the
/// cell, its text goes into the events first.
fn place_number(place: &'static std::panic::Location<'static>) -> u32 {
    static NEXT: AtomicU32 = AtomicU32::new(1);
    thread_local! {
        /// The cell (its start) the numbers are for, and each place's address and number.
        static NUMBERED: std::cell::RefCell<(u64, Vec<(usize, u32)>)> =
            const { std::cell::RefCell::new((0, Vec::new())) };
    }
    let address = std::ptr::from_ref(place) as usize;
    let cell = recorded::cell_start();
    let known = NUMBERED.try_with(|numbered| {
        let mut numbered = numbered.try_borrow_mut().ok()?;
        if numbered.0 != cell {
            *numbered = (cell, Vec::new());
        }
        if let Some(&(_, number)) = numbered.1.iter().find(|(at, _)| *at == address) {
            return Some((number, false));
        }
        let number = NEXT.fetch_add(1, Ordering::Relaxed);
        // A thread spawning from many places (a generated loop): the oldest are named again.
        if numbered.1.len() == 64 {
            numbered.1.remove(0);
        }
        numbered.1.push((address, number));
        Some((number, true))
    });
    match known {
        Ok(Some((number, false))) => number,
        Ok(Some((number, true))) => {
            place_text(place, |text| {
                recorded::record(At::Last, |bytes, _, _| {
                    events::encode_place_named(bytes, number, text)
                });
            });
            number
        }
        // A thread being torn down: the place goes unnamed.
        _ => 0,
    }
}

/// Hands `use_it` the place written out, `file:line:column` (written once for a run of
/// calls from one place: 10,000 tasks are spawned from one line).
pub(crate) fn place_text(place: &'static std::panic::Location<'static>, use_it: impl FnOnce(&str)) {
    thread_local! {
        static LAST_PLACE: std::cell::RefCell<(usize, String)> =
            const { std::cell::RefCell::new((0, String::new())) };
    }
    let _ = LAST_PLACE.try_with(|last| {
        let Ok(mut last) = last.try_borrow_mut() else {
            return;
        };
        let address = std::ptr::from_ref(place) as usize;
        if last.0 != address {
            *last = (
                address,
                format!("{}:{}:{}", place.file(), place.line(), place.column()),
            );
        }
        use_it(&last.1);
    });
}

/// Called as a cell's future starts: what was recorded between cells (a task left running
/// from an earlier cell) is not this cell's, and is forgotten.
pub(crate) fn cell_started() {
    kernel_link::cell_future_started();
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

    /// The id it is recorded under.
    pub(crate) fn id(&self) -> u64 {
        self.id
    }

    /// Runs `work`, recorded (its end too when it panics).
    pub(crate) fn run<R>(self, work: impl FnOnce() -> R) -> R {
        struct Ends(u64);
        impl Drop for Ends {
            fn drop(&mut self) {
                // Its end inside its one poll, as tokio reports a task's: one event.
                task_event(TaskEvent::Ended, self.0);
                task_event(TaskEvent::PollEnded, self.0);
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
    kernel_link::cell_future_ended();
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
