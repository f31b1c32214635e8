//! Spans: what each helper task did and when, kept for the timeline picture. Inside tandem
//! each finished span is also sent to the kernel, which draws the cell's timeline.

use serde::{Deserialize, Serialize};
use std::sync::Mutex;
use std::time::Duration;

/// What kind of work a span was.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// Waiting that holds its thread (`std::thread::sleep`, blocking I/O).
    Blocking,
    /// Waiting that lets the runtime run other tasks (`tokio::time::sleep`, async I/O).
    Async,
    /// Computing: the thread is busy the whole time.
    Cpu,
}

impl Kind {
    pub fn label(self) -> &'static str {
        match self {
            Kind::Blocking => "blocking",
            Kind::Async => "async",
            Kind::Cpu => "cpu",
        }
    }
}

/// One task's run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Span {
    pub name: String,
    pub kind: Kind,
    /// The thread it ran on (its name, or its id).
    pub thread: String,
    pub start: Duration,
    pub end: Duration,
}

impl Span {
    pub fn duration(&self) -> Duration {
        self.end.saturating_sub(self.start)
    }
}

/// The spans of the running cell, and those of the cell that ran before it.
struct CellSpans {
    cell: u64,
    current: Vec<Span>,
    previous: Vec<Span>,
}

static SPANS: Mutex<CellSpans> = Mutex::new(CellSpans {
    cell: 0,
    current: Vec::new(),
    previous: Vec::new(),
});

/// Runs `use_them` on (this cell's spans, the previous cell's spans). A new cell starts a
/// new list; the old one becomes the previous list, empty or not.
fn with_spans<T>(use_them: impl FnOnce(&mut Vec<Span>, &[Span]) -> T) -> T {
    let mut spans = SPANS
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let cell = crate::kernel_link::cell_number();
    if spans.cell != cell {
        // The cell just before this one, if it ran: a gap in the numbers means cells ran
        // that recorded nothing.
        let finished = std::mem::take(&mut spans.current);
        spans.previous = if cell == spans.cell + 1 {
            finished
        } else {
            Vec::new()
        };
        spans.cell = cell;
    }
    let CellSpans {
        current, previous, ..
    } = &mut *spans;
    use_them(current, previous)
}

/// Records a finished span.
pub fn record(span: Span) {
    match serde_json::to_string(&span) {
        Ok(json) => {
            crate::kernel_link::tell_kernel(crate::kernel_link::SPAN_MARKER, &json);
        }
        Err(error) => eprintln!("tandem helpers: cannot report a span: {error}"),
    }
    with_spans(|spans, _| spans.push(span));
}

/// The spans recorded in this cell since the clock last restarted, in the order they
/// finished.
pub fn recorded() -> Vec<Span> {
    with_spans(|spans, _| spans.clone())
}

/// The spans of the cell that ran just before this one: what an exercise's check cell
/// looks at. Empty when that cell ran no helper task (and outside tandem, where there are
/// no cells). A cell that failed to compile never ran, so the check then sees the cell
/// before it: checks also look for the exercise's own task names.
pub fn previous_cell() -> Vec<Span> {
    with_spans(|_, previous| previous.to_vec())
}

pub(crate) fn clear() {
    with_spans(|spans, _| spans.clear());
}

/// The current thread's name, or its id when it has none.
pub fn thread_label() -> String {
    let thread = std::thread::current();
    match thread.name() {
        Some(name) => name.to_owned(),
        None => format!("{:?}", thread.id()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_round_trip_through_json() {
        let span = Span {
            name: "fetch \"a\"".into(),
            kind: Kind::Async,
            thread: "main".into(),
            start: Duration::from_millis(10),
            end: Duration::from_millis(1010),
        };
        let json = serde_json::to_string(&span).unwrap();
        assert_eq!(serde_json::from_str::<Span>(&json).unwrap(), span);
        assert_eq!(span.duration(), Duration::from_secs(1));
    }
}
