//! The task recorder: a helper task announces its start and end (`[ 0.00s] A started`)
//! and records its span for the timeline. Every kind of helper task uses it.

use crate::spans::{record, thread_label, Kind, Span};
use std::time::Duration;

/// A task being timed, from its start until [`TaskRun::finish`].
pub(crate) struct TaskRun {
    name: String,
    kind: Kind,
    start: Duration,
    announce: bool,
    cell: u64,
}

impl TaskRun {
    pub(crate) fn start(name: &str, kind: Kind, announce: bool) -> TaskRun {
        let start = crate::clock::now();
        if announce {
            println!("[{}] {name} started", crate::clock::stamp(start));
        }
        TaskRun {
            name: name.to_owned(),
            kind,
            start,
            announce,
            cell: crate::kernel_link::cell_number(),
        }
    }

    pub(crate) fn finish(self) {
        if crate::kernel_link::cell_number() != self.cell {
            // Started in an earlier cell (a task left running): not part of this cell's
            // timeline, whose clock started after it.
            return;
        }
        let end = crate::clock::now();
        if self.announce {
            println!("[{}] {} completed", crate::clock::stamp(end), self.name);
        }
        if crate::kernel_link::cell_code_returned() {
            // A task nobody awaited, still going after its cell's code returned: it is no
            // cell's task (an exercise's check must not count it).
            return;
        }
        record(Span {
            name: self.name,
            kind: self.kind,
            thread: thread_label(),
            start: self.start,
            end,
            task: crate::spans::current_task(),
        });
    }
}
