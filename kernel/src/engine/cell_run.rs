//! What running one cell gives back: its value or why it failed, where the time went, and
//! the helper tasks it ran. `presentation` shows it; nothing here knows of Jupyter.

use super::diagnostics::Diagnostic;
use super::trace::RuntimeTrace;
use crate::timing::CellTimings;
use serde_json::{Map, Value};
use tandem_helpers::spans::Span;

/// Why a cell did not complete normally.
#[derive(Debug, Clone, PartialEq)]
pub enum CellError {
    /// rustc refused the code.
    Compile {
        ename: String,
        evalue: String,
        diagnostics: Vec<Diagnostic>,
        /// The cell's source, which the diagnostics' places refer to.
        code: String,
    },
    /// The code panicked; evcxr caught it and the session goes on.
    Panic { message: String },
    /// An interrupt stopped the cell.
    Interrupted { variables_lost: bool },
    /// The engine's child process ended (crash, `process::exit`, ...).
    ProcessEnded { detail: String },
    /// Anything else evcxr reported (bad `:command`, type inference trouble, ...).
    Other { message: String },
}

impl std::fmt::Display for CellError {
    /// A plain one-line account, for logs and errors of the engine's own (what a learner
    /// sees is `presentation::error_content`).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CellError::Compile { evalue, .. } => write!(f, "did not compile: {evalue}"),
            CellError::Panic { message } => write!(f, "panicked: {message}"),
            CellError::Interrupted { .. } => write!(f, "interrupted"),
            CellError::ProcessEnded { detail } => write!(f, "the process ended: {detail}"),
            CellError::Other { message } => write!(f, "{message}"),
        }
    }
}

/// The outcome of one cell.
#[derive(Debug)]
pub struct CellRun {
    /// The cell's value as a mime bundle (empty when the cell has no value), or its error.
    pub result: Result<Map<String, Value>, CellError>,
    pub timings: CellTimings,
    /// The helper tasks that ran, in the order they finished (times from the cell's start).
    pub spans: Vec<Span>,
    /// What tokio's runtime did while the cell ran, when the poll recorder reported it.
    pub trace: Option<RuntimeTrace>,
}

impl CellRun {
    /// The outcome of a cell that did not run code (tandem's own commands, an engine that
    /// could not start, a cell refused before it ran).
    pub fn without_running(result: Result<Map<String, Value>, CellError>) -> CellRun {
        CellRun {
            result,
            timings: CellTimings::default(),
            spans: Vec::new(),
            trace: None,
        }
    }
}
