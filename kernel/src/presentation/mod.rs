//! How a cell's result is shown, the same in Jupyter and in `tandem run`: its value, what
//! tandem draws under it (timeline, footer), and its error in Jupyter's error fields.

mod blocking;
mod chrome_trace;
mod compile_errors;
mod event_loop;
mod runtime_names;

pub use chrome_trace::chrome_trace;
pub use event_loop::EVENT_LOOP_ROLE;

use crate::engine::{limits, CellError, CellRun, RuntimeTrace};
use crate::timing;
use crate::wire::content::ErrorContent;
use serde_json::{Map, Value};

/// Shown under tokio's panic when code blocks on a runtime where tokio cannot lend it the
/// thread (the preloaded `Runtime::block_on` lends the cells' own thread, so there it works).
const NESTED_RUNTIME_HINT: &str = "\x1b[1mtandem:\x1b[0m this code already runs inside a \
    tokio runtime (every cell does), and this block_on could not borrow the thread: \
    tokio's own Handle::block_on, TokioRuntime::block_on and blocking clients (such as \
    reqwest::blocking) never can, nor can anything inside a runtime with one thread \
    (run_on_one_thread, a current_thread runtime). Await the future directly, or use \
    tokio::runtime::Runtime::new() at the top of the cell, whose block_on can.";

/// Said when an interrupt or a crash cost the session its variables.
const VARIABLES_LOST: &str = "The engine's process had to be restarted, so every variable \
    defined before this cell is gone: run the cells that define them again.";

/// One piece of what a finished cell shows after its live output, in order.
#[derive(Debug)]
pub enum Shown {
    /// The cell's value (a mime bundle).
    Value(Map<String, Value>),
    /// What tokio's runtime did: it takes the place of the picture drawn while the cell
    /// ran, if there was one.
    EventLoop(timing::Bundle),
    /// A picture tandem draws under the cell (timeline, footer): data and metadata.
    UnderCell(timing::Bundle),
    /// Why the cell failed.
    Error(ErrorContent),
}

/// What a finished cell shows: its value, then the timeline and the footer; or, for a
/// cell that failed, the timeline and the footer, then its error.
pub fn cell_result(run: &CellRun, footer_on: bool) -> Vec<Shown> {
    let completed = run.result.is_ok();
    let event_loop = run
        .trace
        .as_ref()
        .and_then(|trace| event_loop::picture(trace, true))
        .map(Shown::EventLoop);
    let under = event_loop.into_iter().chain(
        timing::under_cell(&run.spans, &run.timings, completed, footer_on)
            .into_iter()
            .map(Shown::UnderCell),
    );
    match &run.result {
        Ok(value) => {
            let value = (!value.is_empty()).then(|| Shown::Value(value.clone()));
            value.into_iter().chain(under).collect()
        }
        Err(error) => under
            .chain(std::iter::once(Shown::Error(error_content(error))))
            .collect(),
    }
}

/// The picture of what tokio's runtime did so far, while the cell runs (its metadata says
/// `"final": false`); `None` while no task ran.
pub fn event_loop_so_far(trace: &RuntimeTrace) -> Option<timing::Bundle> {
    event_loop::picture(trace, false)
}

/// A cell's error as Jupyter shows it: a name, a one-line value and a traceback (the
/// lines a frontend prints, with ANSI colours).
pub fn error_content(error: &CellError) -> ErrorContent {
    let (ename, evalue, traceback) = match error {
        CellError::Compile {
            ename,
            evalue,
            diagnostics,
            code,
        } => (
            ename.clone(),
            evalue.clone(),
            compile_errors::traceback(diagnostics, code),
        ),
        CellError::Panic { message } => {
            let mut traceback =
                vec!["\x1b[1;31mpanicked\x1b[0m: the cell's code panicked".to_owned()];
            traceback.extend(message.lines().map(str::to_owned));
            if message.contains("Cannot start a runtime from within a runtime") {
                traceback.push(NESTED_RUNTIME_HINT.to_owned());
            }
            ("panic".to_owned(), message.clone(), traceback)
        }
        CellError::Interrupted { variables_lost } => {
            let evalue = if *variables_lost {
                format!("Interrupted. {VARIABLES_LOST}")
            } else {
                "Interrupted. The session's variables are kept.".to_owned()
            };
            ("Interrupted".to_owned(), evalue.clone(), vec![evalue])
        }
        CellError::ProcessEnded { detail } => {
            let mut evalue = format!("The engine's process ended: {detail}. {VARIABLES_LOST}");
            if let Some(hint) = limits::memory_hint(detail) {
                evalue = format!("{evalue}\n{hint}");
            }
            let traceback = evalue.lines().map(str::to_owned).collect();
            ("ProcessEnded".to_owned(), evalue, traceback)
        }
        CellError::Other { message } => (
            "Error".to_owned(),
            message.clone(),
            message.lines().map(str::to_owned).collect(),
        ),
    };
    ErrorContent {
        ename,
        evalue,
        traceback,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::CellRun;

    fn run(result: Result<Map<String, Value>, CellError>) -> CellRun {
        CellRun::without_running(result)
    }

    #[test]
    fn a_value_comes_first_and_an_error_last() {
        let mut value = Map::new();
        value.insert("text/plain".into(), "42".into());
        let shown = cell_result(&run(Ok(value)), false);
        assert!(matches!(shown.first(), Some(Shown::Value(_))), "{shown:?}");
        assert!(cell_result(&run(Ok(Map::new())), false).is_empty());
        let failed = cell_result(
            &run(Err(CellError::Other {
                message: "no".into(),
            })),
            false,
        );
        assert!(matches!(failed.last(), Some(Shown::Error(e)) if e.evalue == "no"));
    }

    #[test]
    fn a_nested_runtime_panic_says_what_to_do_instead() {
        let error = error_content(&CellError::Panic {
            message: "Cannot start a runtime from within a runtime.".into(),
        });
        assert_eq!(error.ename, "panic");
        assert!(error
            .traceback
            .iter()
            .any(|line| line.contains("run_on_one_thread")));
        let kept = error_content(&CellError::Interrupted {
            variables_lost: false,
        });
        assert!(kept.evalue.contains("kept"));
    }
}
