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
    /// The tokio task it ran in (tokio's id for it), or `None` when it ran in the cell's
    /// own future, which is not a task, or on a thread of its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task: Option<u64>,
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

/// The id of the tokio task running now, if any: the cell's own future is not a task.
pub fn current_task() -> Option<u64> {
    // tokio's task::Id shows as its number, and gives it no other way.
    tokio::task::try_id().and_then(|id| id.to_string().parse().ok())
}

/// What the spans call a worker thread of a tokio runtime, and a thread of tokio's
/// blocking pool (`spawn_blocking`): tokio gives both one name (`tokio-rt-worker` or
/// `tokio-runtime-worker`, by version), and they play different parts.
pub const WORKER: &str = "tokio worker";
pub const BLOCKING_POOL: &str = "tokio blocking pool";

/// The current thread's name and number (`tokio worker #7`): a runtime's workers share one
/// name, and each is a thread of its own.
pub fn thread_label() -> String {
    let thread = std::thread::current();
    // `ThreadId(7)`: the number is the thread's for the life of the process.
    let id = format!("{:?}", thread.id());
    let number: String = id.chars().filter(char::is_ascii_digit).collect();
    let name = match thread.name() {
        Some(name) if name.starts_with("tokio-") => match runtime_part() {
            Some(true) => WORKER,
            Some(false) => BLOCKING_POOL,
            None => name,
        },
        Some(name) => name,
        None => "thread",
    };
    format!("{name} #{number}")
}

/// Whether this thread is one of its runtime's workers (`Some(true)`) or of its blocking
/// pool (`Some(false)`); `None` outside a runtime, or where tokio cannot tell (it tells
/// its workers' threads with `--cfg tokio_unstable`, which tandem sets).
fn runtime_part() -> Option<bool> {
    #[cfg(tokio_unstable)]
    {
        let runtime = tokio::runtime::Handle::try_current().ok()?;
        let metrics = runtime.metrics();
        let here = std::thread::current().id();
        Some(
            (0..metrics.num_workers()).any(|worker| metrics.worker_thread_id(worker) == Some(here)),
        )
    }
    #[cfg(not(tokio_unstable))]
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn threads_of_one_name_are_told_apart() {
        let label = || {
            let named = std::thread::Builder::new().name("tokio-rt-worker".into());
            named.spawn(thread_label).unwrap().join().unwrap()
        };
        let (first, second) = (label(), label());
        assert!(first.starts_with("tokio-rt-worker #"), "{first}");
        assert_ne!(first, second);
    }

    #[test]
    fn spans_round_trip_through_json() {
        let span = Span {
            name: "fetch \"a\"".into(),
            kind: Kind::Async,
            thread: "main".into(),
            start: Duration::from_millis(10),
            end: Duration::from_millis(1010),
            task: Some(3),
        };
        let json = serde_json::to_string(&span).unwrap();
        assert_eq!(serde_json::from_str::<Span>(&json).unwrap(), span);
        assert_eq!(span.duration(), Duration::from_secs(1));
    }
}
