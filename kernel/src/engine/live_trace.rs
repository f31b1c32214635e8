//! Beside a running cell: receives the poll recorder's events as they come and hands the
//! runtime's trace so far to the cell's sink (which draws it live), at most 5 times a second,
//! and less often when drawing takes long: the kernel must not take the cell's CPU.

use super::event_channel::{CellEvents, EventChannel, Received};
use super::output::OutputSink;
use super::sites::Sites;
use super::trace::RuntimeTrace;
use crossbeam_channel::Receiver;
use std::time::{Duration, Instant};

/// How long after the first events the trace is first handed on.
const FIRST_AFTER: Duration = Duration::from_millis(100);
/// The least time between two hand-overs (at most 5 a second).
const BETWEEN: Duration = Duration::from_millis(200);
/// Between two hand-overs, at least this many times as long as the last one took (so
/// that drawing 200,000 events takes at most a sixth of a core from the running cell).
const IDLE_PER_BUSY: u32 = 5;
/// How long one wait for events lasts before the follower looks at the clock again.
const LOOK_EVERY: Duration = Duration::from_millis(100);

/// Follows the cell's events (`cell`, so far none) until `stop` fires (or is dropped);
/// returns what came. `sites` reads where the cell's tasks were spawned.
pub fn follow(
    channel: &EventChannel,
    sink: &dyn OutputSink,
    stop: &Receiver<()>,
    mut cell: CellEvents,
    mut sites: Sites,
) -> CellEvents {
    let mut first_came: Option<Instant> = None;
    let mut handed_on: Option<Instant> = None;
    let mut between = BETWEEN;
    let mut unseen = false;
    loop {
        match channel.receive(&mut cell, Instant::now() + LOOK_EVERY, stop) {
            Received::Stopped => return cell,
            Received::More => {
                unseen = true;
                first_came.get_or_insert_with(Instant::now);
            }
            Received::Nothing => {}
        }
        if cell.ended {
            // The cell's future is done; what is left is the final picture's.
            let _ = stop.recv();
            return cell;
        }
        let Some(first) = first_came else { continue };
        let now = Instant::now();
        let due = match handed_on {
            None => now >= first + FIRST_AFTER,
            Some(last) => now >= last + between,
        };
        if unseen && due {
            let mut trace = RuntimeTrace::assemble(&cell.events, &cell.thread_names);
            sites.locate(&mut trace);
            if trace.has_tasks() {
                sink.runtime_so_far(&trace);
                handed_on = Some(now);
            }
            between = BETWEEN.max(now.elapsed() * IDLE_PER_BUSY);
            unseen = false;
        }
    }
}
