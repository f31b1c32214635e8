//! Plumbing: the records the poll recorder (in the preloaded crate, inside the engine's
//! process) sends the kernel over its events channel, in a compact binary form, since a
//! cell can cause hundreds of thousands of them. Both sides use this file.

/// One thing the runtime did. Times are CLOCK_MONOTONIC nanoseconds; `task` is tokio's
/// task id (0 is the cell's own top-level future, which is no tokio task); `thread` is a
/// number the recorder gave the thread, named once by `ThreadNamed`.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    Spawned {
        task: u64,
        at_ns: u64,
        /// Where the task was spawned: `file:line:column`.
        place: String,
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
    ThreadNamed {
        thread: u32,
        name: String,
    },
    /// A future inside a task (a branch of `join!`) was made, ready to be polled; `name`
    /// is its source text.
    BranchMade {
        branch: u64,
        at_ns: u64,
        name: String,
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
            | Event::CellStarted { at_ns }
            | Event::CellEnded { at_ns, .. }
            | Event::BranchMade { at_ns, .. }
            | Event::BranchWoken { at_ns, .. }
            | Event::BranchCancelled { at_ns, .. } => Some(*at_ns),
            Event::BranchPolled { start_ns, .. } => Some(*start_ns),
            Event::ThreadNamed { .. } => None,
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

/// The kinds of events that name a task and a thread (see [`encode_task_event`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskEvent {
    PollStarted,
    PollEnded,
    Ended,
}

/// Appends a poll's start or end, or a task's end.
pub fn encode_task_event(out: &mut Vec<u8>, what: TaskEvent, task: u64, at_ns: u64, thread: u32) {
    out.extend_from_slice(&task_event(what, task, at_ns, thread));
}

/// A poll's start or end, or a task's end, encoded: always this many bytes (the poll
/// recorder writes them straight where they are kept).
pub fn task_event(what: TaskEvent, task: u64, at_ns: u64, thread: u32) -> [u8; 21] {
    let mut bytes = [0; 21];
    bytes[0] = match what {
        TaskEvent::PollStarted => POLL_STARTED,
        TaskEvent::PollEnded => POLL_ENDED,
        TaskEvent::Ended => ENDED,
    };
    bytes[1..9].copy_from_slice(&task.to_le_bytes());
    bytes[9..17].copy_from_slice(&at_ns.to_le_bytes());
    bytes[17..].copy_from_slice(&thread.to_le_bytes());
    bytes
}

/// Appends a task's spawn, with the place it was spawned from.
pub fn encode_spawned(out: &mut Vec<u8>, task: u64, at_ns: u64, place: &str) {
    out.push(SPAWNED);
    out.extend_from_slice(&task.to_le_bytes());
    out.extend_from_slice(&at_ns.to_le_bytes());
    push_text(out, place);
}

/// Appends a thread's name.
pub fn encode_thread_named(out: &mut Vec<u8>, thread: u32, name: &str) {
    out.push(THREAD_NAMED);
    out.extend_from_slice(&thread.to_le_bytes());
    push_text(out, name);
}

/// Appends a branch's making, with its name (its source text).
pub fn encode_branch_made(out: &mut Vec<u8>, branch: u64, at_ns: u64, name: &str) {
    out.push(BRANCH_MADE);
    out.extend_from_slice(&branch.to_le_bytes());
    out.extend_from_slice(&at_ns.to_le_bytes());
    push_text(out, name);
}

/// Appends a branch's wake-up.
pub fn encode_branch_woken(out: &mut Vec<u8>, branch: u64, at_ns: u64) {
    out.push(BRANCH_WOKEN);
    out.extend_from_slice(&branch.to_le_bytes());
    out.extend_from_slice(&at_ns.to_le_bytes());
}

/// Appends one poll of a branch.
pub fn encode_branch_polled(
    out: &mut Vec<u8>,
    branch: u64,
    task: u64,
    (start_ns, end_ns): (u64, u64),
    thread: u32,
) {
    out.push(BRANCH_POLLED);
    for number in [branch, task, start_ns, end_ns] {
        out.extend_from_slice(&number.to_le_bytes());
    }
    out.extend_from_slice(&thread.to_le_bytes());
}

/// Appends a branch's cancellation.
pub fn encode_branch_cancelled(out: &mut Vec<u8>, branch: u64, at_ns: u64) {
    out.push(BRANCH_CANCELLED);
    out.extend_from_slice(&branch.to_le_bytes());
    out.extend_from_slice(&at_ns.to_le_bytes());
}

/// Appends the start of a cell's top-level future.
pub fn encode_cell_started(out: &mut Vec<u8>, at_ns: u64) {
    out.push(CELL_STARTED);
    out.extend_from_slice(&at_ns.to_le_bytes());
}

/// Appends the end of the cell's top-level future.
pub fn encode_cell_ended(out: &mut Vec<u8>, at_ns: u64, dropped: u64) {
    out.push(CELL_ENDED);
    out.extend_from_slice(&at_ns.to_le_bytes());
    out.extend_from_slice(&dropped.to_le_bytes());
}

/// Text of at most 64 KiB (longer is cut at a character boundary).
fn push_text(out: &mut Vec<u8>, text: &str) {
    let mut end = text.len().min(u16::MAX as usize);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    out.extend_from_slice(&(end as u16).to_le_bytes());
    out.extend_from_slice(&text.as_bytes()[..end]);
}

/// Reads the next event from `bytes`: the event and how many bytes it took; `None` when
/// `bytes` holds no whole event yet. An unknown kind is an error: the stream is broken.
pub fn decode(bytes: &[u8]) -> Result<Option<(Event, usize)>, String> {
    let mut reader = Reader { bytes, at: 0 };
    let Some(kind) = reader.u8() else {
        return Ok(None);
    };
    let event = match kind {
        SPAWNED => (|| {
            Some(Event::Spawned {
                task: reader.u64()?,
                at_ns: reader.u64()?,
                place: reader.text()?,
            })
        })(),
        POLL_STARTED | POLL_ENDED | ENDED => (|| {
            let (task, at_ns, thread) = (reader.u64()?, reader.u64()?, reader.u32()?);
            Some(match kind {
                POLL_STARTED => Event::PollStarted {
                    task,
                    at_ns,
                    thread,
                },
                POLL_ENDED => Event::PollEnded {
                    task,
                    at_ns,
                    thread,
                },
                _ => Event::Ended {
                    task,
                    at_ns,
                    thread,
                },
            })
        })(),
        THREAD_NAMED => (|| {
            Some(Event::ThreadNamed {
                thread: reader.u32()?,
                name: reader.text()?,
            })
        })(),
        CELL_STARTED => reader.u64().map(|at_ns| Event::CellStarted { at_ns }),
        BRANCH_CANCELLED => (|| {
            Some(Event::BranchCancelled {
                branch: reader.u64()?,
                at_ns: reader.u64()?,
            })
        })(),
        CELL_ENDED => (|| {
            Some(Event::CellEnded {
                at_ns: reader.u64()?,
                dropped: reader.u64()?,
            })
        })(),
        BRANCH_MADE => (|| {
            Some(Event::BranchMade {
                branch: reader.u64()?,
                at_ns: reader.u64()?,
                name: reader.text()?,
            })
        })(),
        BRANCH_WOKEN => (|| {
            Some(Event::BranchWoken {
                branch: reader.u64()?,
                at_ns: reader.u64()?,
            })
        })(),
        BRANCH_POLLED => (|| {
            Some(Event::BranchPolled {
                branch: reader.u64()?,
                task: reader.u64()?,
                start_ns: reader.u64()?,
                end_ns: reader.u64()?,
                thread: reader.u32()?,
            })
        })(),
        other => return Err(format!("unknown event kind {other}")),
    };
    Ok(event.map(|event| (event, reader.at)))
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn take<const N: usize>(&mut self) -> Option<[u8; N]> {
        let bytes = self.bytes.get(self.at..self.at + N)?;
        self.at += N;
        bytes.try_into().ok()
    }

    fn u8(&mut self) -> Option<u8> {
        self.take::<1>().map(|[byte]| byte)
    }

    fn u32(&mut self) -> Option<u32> {
        self.take().map(u32::from_le_bytes)
    }

    fn u64(&mut self) -> Option<u64> {
        self.take().map(u64::from_le_bytes)
    }

    fn text(&mut self) -> Option<String> {
        let len = usize::from(u16::from_le_bytes(self.take()?));
        let bytes = self.bytes.get(self.at..self.at + len)?;
        self.at += len;
        Some(String::from_utf8_lossy(bytes).into_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_round_trip_and_a_part_is_not_an_event() {
        let mut bytes = Vec::new();
        encode_cell_started(&mut bytes, 90);
        encode_spawned(&mut bytes, 7, 100, "cell:3:5");
        encode_task_event(&mut bytes, TaskEvent::PollStarted, 7, 110, 2);
        encode_thread_named(&mut bytes, 2, "tokio-runtime-worker");
        encode_branch_made(&mut bytes, 9, 115, "fetch(\"A\", 2)");
        encode_branch_polled(&mut bytes, 9, 0, (120, 130), 1);
        encode_branch_woken(&mut bytes, 9, 150);
        encode_branch_cancelled(&mut bytes, 9, 160);
        encode_cell_ended(&mut bytes, 200, 3);
        let mut events = Vec::new();
        let mut at = 0;
        while let Some((event, used)) = decode(&bytes[at..]).unwrap() {
            events.push(event);
            at += used;
        }
        assert_eq!(at, bytes.len());
        assert_eq!(
            events,
            [
                Event::CellStarted { at_ns: 90 },
                Event::Spawned {
                    task: 7,
                    at_ns: 100,
                    place: "cell:3:5".into()
                },
                Event::PollStarted {
                    task: 7,
                    at_ns: 110,
                    thread: 2
                },
                Event::ThreadNamed {
                    thread: 2,
                    name: "tokio-runtime-worker".into()
                },
                Event::BranchMade {
                    branch: 9,
                    at_ns: 115,
                    name: "fetch(\"A\", 2)".into()
                },
                Event::BranchPolled {
                    branch: 9,
                    task: 0,
                    start_ns: 120,
                    end_ns: 130,
                    thread: 1
                },
                Event::BranchWoken {
                    branch: 9,
                    at_ns: 150
                },
                Event::BranchCancelled {
                    branch: 9,
                    at_ns: 160
                },
                Event::CellEnded {
                    at_ns: 200,
                    dropped: 3
                },
            ]
        );
        assert_eq!(
            decode(&bytes[..5]).unwrap(),
            None,
            "half an event waits for the rest"
        );
        assert!(decode(&[99]).is_err());
    }
}
