//! Plumbing: the records the poll recorder (in the preloaded crate, inside the engine's
//! process) sends the kernel over its events channel, in a compact binary form, since a
//! cell can cause hundreds of thousands of them. Both sides use this module.

mod decode;
mod encode;

pub use decode::decode;
pub use encode::*;

/// One thing the runtime did. Times are CLOCK_MONOTONIC nanoseconds; `task` is tokio's
/// task id (0 is the cell's own top-level future, which is no tokio task); `thread` is a
/// number the recorder gave the thread, named once by `ThreadNamed`.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    Spawned {
        task: u64,
        at_ns: u64,
        /// Where the task was spawned: a number named by `PlaceNamed`.
        place: u32,
    },
    /// A place in the code, `file:line:column`, named once per thread and cell (10,000
    /// tasks spawned from one line name it once).
    PlaceNamed {
        place: u32,
        text: String,
    },
    PollStarted {
        task: u64,
        at_ns: u64,
        thread: u32,
    },
    PollEnded {
        task: u64,
        at_ns: u64,
        thread: u32,
    },
    Ended {
        task: u64,
        at_ns: u64,
        thread: u32,
    },
    /// A poll's end that was the task's end too (tokio reports a task's end inside its
    /// last poll): `PollEnded` and `Ended` in one.
    LastPollEnded {
        task: u64,
        at_ns: u64,
        thread: u32,
    },
    ThreadNamed {
        thread: u32,
        name: String,
    },
    /// A future inside a task (a branch of `join!`) was made, ready to be polled; `name`
    /// is its source text, `place` the `file:line:column` of the macro (or call) made it.
    BranchMade {
        branch: u64,
        at_ns: u64,
        name: String,
        place: String,
    },
    /// A task was given a name (`tokio::task::Builder::name`).
    TaskNamed {
        task: u64,
        name: String,
    },
    /// A task was dropped before it finished: cancelled (aborted, or its runtime shut down).
    TaskCancelled {
        task: u64,
        at_ns: u64,
    },
    /// A poll of `task` (inside `branch`, 0 for none) set a timer: a `sleep` or `timeout`
    /// due at `deadline_ns`, which the task then waits for.
    TimerSet {
        task: u64,
        branch: u64,
        at_ns: u64,
        deadline_ns: u64,
        kind: TimerKind,
    },
    /// A branch's waker was called: it is ready to be polled again.
    BranchWoken {
        branch: u64,
        at_ns: u64,
    },
    /// A branch was dropped before it finished: cancelled (a `select!` branch that lost).
    BranchCancelled {
        branch: u64,
        at_ns: u64,
    },
    /// One poll of a branch, inside a poll of `task`.
    BranchPolled {
        branch: u64,
        task: u64,
        start_ns: u64,
        end_ns: u64,
        thread: u32,
    },
    /// A cell's top-level future started: what follows is that cell's (what came before
    /// belongs to an earlier cell, or to the time between cells).
    CellStarted {
        at_ns: u64,
    },
    /// The cell's top-level future is done: what follows belongs to the next cell.
    /// `dropped` events were not kept (the recorder keeps a bounded number per cell).
    CellEnded {
        at_ns: u64,
        dropped: u64,
    },
}

impl Event {
    /// When it happened (a thread's name has no time; a branch's poll, when it started).
    pub fn at_ns(&self) -> Option<u64> {
        match self {
            Event::Spawned { at_ns, .. }
            | Event::PollStarted { at_ns, .. }
            | Event::PollEnded { at_ns, .. }
            | Event::Ended { at_ns, .. }
            | Event::LastPollEnded { at_ns, .. }
            | Event::CellStarted { at_ns }
            | Event::CellEnded { at_ns, .. }
            | Event::BranchMade { at_ns, .. }
            | Event::BranchWoken { at_ns, .. }
            | Event::BranchCancelled { at_ns, .. }
            | Event::TaskCancelled { at_ns, .. }
            | Event::TimerSet { at_ns, .. } => Some(*at_ns),
            Event::BranchPolled { start_ns, .. } => Some(*start_ns),
            Event::ThreadNamed { .. } | Event::PlaceNamed { .. } | Event::TaskNamed { .. } => None,
        }
    }
}

/// The bit set in the task ids the recorder gives `spawn_blocking` closures, which are no
/// tokio tasks with ids of their own (tokio's ids count up from 1 and never get here).
pub const BLOCKING_TASK_BIT: u64 = 1 << 62;

/// The kernel's word on the events channel (its only words there): record the cells'
/// events (sent first on each connection, and again at `:timeline on`).
pub const RECORD_ON: u8 = b'1';
/// The kernel's word: record nothing (`:timeline off`).
pub const RECORD_OFF: u8 = b'0';

const SPAWNED: u8 = 1;
const POLL_STARTED: u8 = 2;
const POLL_ENDED: u8 = 3;
const ENDED: u8 = 4;
const THREAD_NAMED: u8 = 5;
const CELL_ENDED: u8 = 6;
const BRANCH_MADE: u8 = 7;
const BRANCH_POLLED: u8 = 8;
const BRANCH_WOKEN: u8 = 9;
const CELL_STARTED: u8 = 10;
const BRANCH_CANCELLED: u8 = 11;
const TASK_CANCELLED: u8 = 12;
const TIMER_SET: u8 = 13;
const PLACE_NAMED: u8 = 14;
const LAST_POLL_ENDED: u8 = 15;
const TASK_NAMED: u8 = 16;

/// What made a timer: `tokio::time::sleep` (or `sleep_until`), or `timeout`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimerKind {
    Sleep,
    Timeout,
}

impl TimerKind {
    /// The function's name, as the picture shows it.
    pub fn name(self) -> &'static str {
        match self {
            TimerKind::Sleep => "sleep",
            TimerKind::Timeout => "timeout",
        }
    }
}

/// The kinds of events that name a task and a thread (see [`encode_task_event`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskEvent {
    PollStarted,
    PollEnded,
    Ended,
    LastPollEnded,
}
