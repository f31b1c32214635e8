//! Plumbing: writing the poll recorder's events in their binary form (the recorder, inside
//! the engine's process, calls these; [`super::decode`] reads them back in the kernel).

use super::*;

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
        TaskEvent::LastPollEnded => LAST_POLL_ENDED,
    };
    bytes[1..9].copy_from_slice(&task.to_le_bytes());
    bytes[9..17].copy_from_slice(&at_ns.to_le_bytes());
    bytes[17..].copy_from_slice(&thread.to_le_bytes());
    bytes
}

/// A task's spawn from the place numbered `place`, encoded: always this many bytes (the
/// poll recorder writes them straight where they are kept).
pub fn spawned(task: u64, at_ns: u64, place: u32) -> [u8; 21] {
    let mut bytes = [0; 21];
    bytes[0] = SPAWNED;
    bytes[1..9].copy_from_slice(&task.to_le_bytes());
    bytes[9..17].copy_from_slice(&at_ns.to_le_bytes());
    bytes[17..].copy_from_slice(&place.to_le_bytes());
    bytes
}

/// Appends a task's spawn from the place numbered `place`.
pub fn encode_spawned(out: &mut Vec<u8>, task: u64, at_ns: u64, place: u32) {
    out.extend_from_slice(&spawned(task, at_ns, place));
}

/// Appends a task's name.
pub fn encode_task_named(out: &mut Vec<u8>, task: u64, name: &str) {
    out.push(TASK_NAMED);
    out.extend_from_slice(&task.to_le_bytes());
    push_text(out, name);
}

/// Appends a place's number and text (`file:line:column`).
pub fn encode_place_named(out: &mut Vec<u8>, place: u32, text: &str) {
    out.push(PLACE_NAMED);
    out.extend_from_slice(&place.to_le_bytes());
    push_text(out, text);
}

/// Appends a thread's name.
pub fn encode_thread_named(out: &mut Vec<u8>, thread: u32, name: &str) {
    out.push(THREAD_NAMED);
    out.extend_from_slice(&thread.to_le_bytes());
    push_text(out, name);
}

/// Appends a branch's making, with its name (its source text) and place.
pub fn encode_branch_made(out: &mut Vec<u8>, branch: u64, at_ns: u64, name: &str, place: &str) {
    out.push(BRANCH_MADE);
    out.extend_from_slice(&branch.to_le_bytes());
    out.extend_from_slice(&at_ns.to_le_bytes());
    push_text(out, name);
    push_text(out, place);
}

/// Appends a task's cancellation.
pub fn encode_task_cancelled(out: &mut Vec<u8>, task: u64, at_ns: u64) {
    out.push(TASK_CANCELLED);
    out.extend_from_slice(&task.to_le_bytes());
    out.extend_from_slice(&at_ns.to_le_bytes());
}

/// Appends a timer set by a poll of `task` (in `branch`, or 0), due at `deadline_ns`.
pub fn encode_timer_set(
    out: &mut Vec<u8>,
    (task, branch): (u64, u64),
    (at_ns, deadline_ns): (u64, u64),
    kind: TimerKind,
) {
    out.push(TIMER_SET);
    for number in [task, branch, at_ns, deadline_ns] {
        out.extend_from_slice(&number.to_le_bytes());
    }
    out.push(match kind {
        TimerKind::Sleep => 0,
        TimerKind::Timeout => 1,
    });
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
