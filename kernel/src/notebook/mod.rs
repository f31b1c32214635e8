//! `tandem run`: a notebook's code cells run in the terminal by the kernel's engine, shown
//! as they happen, and written out executed; the first failing cell stops it.

mod ctrl_c;
mod terminal;

pub use ctrl_c::CtrlC;

use crate::engine::{CellError, Engine, Interrupter, RuntimeTrace, Starting};
use crate::presentation::{self, Shown};
use crate::timing;
use anyhow::{anyhow, bail, Context, Result};
use serde::Serialize;
use serde_json::{Map, Value};
use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use terminal::{print_bundle, print_header, print_markdown, Progress, TerminalSink};

/// One output of a code cell, as nbformat 4 stores it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "output_type", rename_all = "snake_case")]
pub(super) enum Output {
    Stream {
        name: &'static str,
        text: String,
    },
    DisplayData {
        data: Map<String, Value>,
        metadata: Map<String, Value>,
    },
    ExecuteResult {
        execution_count: u64,
        data: Map<String, Value>,
        metadata: Map<String, Value>,
    },
    Error {
        ename: String,
        evalue: String,
        traceback: Vec<String>,
    },
}

/// How a run ended.
pub struct Outcome {
    pub cells_run: usize,
    /// The number (1-based, among code cells) of the cell that failed, if one did.
    pub failed_cell: Option<usize>,
    /// Cells tagged `raises-exception` that showed their error, as they were meant to.
    pub expected_errors: usize,
    /// Whether Ctrl-C stopped the run.
    pub interrupted: bool,
    /// What tokio's runtime did in each cell that drew an event-loop picture, by name
    /// (`cell [3]`), for `--trace`.
    pub traces: Vec<(String, RuntimeTrace)>,
}

impl Outcome {
    /// Says on stderr how the run of `path` ended, and returns the exit status: 130 after
    /// Ctrl-C, 1 after a failed cell, else 0.
    pub fn conclude(&self, path: &Path) -> i32 {
        if self.interrupted {
            eprintln!(
                "tandem: interrupted after {} code cells of {}; the cells after did not run",
                self.cells_run,
                path.display()
            );
            return 130;
        }
        if let Some(cell) = self.failed_cell {
            eprintln!(
                "tandem: code cell {cell} of {} failed; the cells after it did not run",
                path.display()
            );
            return 1;
        }
        match self.expected_errors {
            0 => eprintln!("tandem: {} code cells ran without error", self.cells_run),
            shown => eprintln!(
                "tandem: {} code cells ran; the {shown} tagged raises-exception showed their \
                 errors, the others none",
                self.cells_run
            ),
        }
        0
    }
}

/// Runs every code cell of the notebook at `path` in order and returns the notebook with
/// its outputs filled in (cells after a failure keep none).
pub fn run(path: &Path, show_timing: bool, ctrl_c: &CtrlC) -> Result<(Value, Outcome)> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let mut notebook: Value = serde_json::from_str(&text)
        .with_context(|| format!("{} is not a JSON notebook", path.display()))?;
    if notebook["nbformat"].as_u64() != Some(4) {
        bail!(
            "{}: only nbformat 4 notebooks are supported",
            path.display()
        );
    }
    let cells = notebook["cells"]
        .as_array_mut()
        .ok_or_else(|| anyhow!("{}: the notebook has no list of cells", path.display()))?;
    for cell in cells.iter_mut() {
        if cell["cell_type"] == "code" {
            cell["outputs"] = Value::Array(Vec::new());
            cell["execution_count"] = Value::Null;
        }
    }

    let mut engine = start_engine(ctrl_c.interrupter.clone())?;
    let mut outcome = Outcome {
        cells_run: 0,
        failed_cell: None,
        expected_errors: 0,
        interrupted: false,
        traces: Vec::new(),
    };
    for cell in cells.iter_mut() {
        let source = source_text(&cell["source"]);
        if cell["cell_type"] != "code" {
            print_markdown(&source);
            continue;
        }
        if ctrl_c.pressed() {
            outcome.interrupted = true;
            break;
        }
        outcome.cells_run += 1;
        let number = outcome.cells_run as u64;
        print_header(number, &source);
        let (outputs, failed, trace) = run_cell(&mut engine, &source, number, show_timing);
        if let Some(trace) = trace.filter(RuntimeTrace::has_tasks) {
            outcome.traces.push((format!("cell [{number}]"), trace));
        }
        cell["execution_count"] = number.into();
        cell["outputs"] = serde_json::to_value(outputs)?;
        let stops = failed && !expects_an_error(cell);
        outcome.expected_errors += usize::from(failed && !stops);
        if stops || ctrl_c.pressed() {
            outcome.failed_cell = stops.then_some(outcome.cells_run);
            outcome.interrupted = ctrl_c.pressed();
            break;
        }
    }
    Ok((notebook, outcome))
}

/// Writes the executed notebook (one-space indent, as Jupyter writes them).
pub fn write(notebook: &Value, path: &Path) -> Result<()> {
    let mut out = Vec::new();
    let formatter = serde_json::ser::PrettyFormatter::with_indent(b" ");
    let mut serializer = serde_json::Serializer::with_formatter(&mut out, formatter);
    notebook.serialize(&mut serializer)?;
    out.push(b'\n');
    write_atomically(path, &out).with_context(|| format!("writing {}", path.display()))
}

/// Writes `bytes` to a new file beside `path`, then renames it over `path`: a Ctrl-C,
/// SIGTERM or full disk midway leaves the old file (or none), never a truncated one. The
/// new file keeps the old one's permissions (a new one gets the umask's), and a symbolic
/// link stays a link: the file it points to is replaced.
fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let target = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_owned());
    let old_mode = std::fs::metadata(&target)
        .ok()
        .map(|meta| meta.permissions().mode() & 0o777);
    let name = target.file_name().unwrap_or_default().to_string_lossy();
    let temporary =
        target.with_file_name(format!(".{name}.{}.partial", uuid::Uuid::new_v4().simple()));
    let mut made = false;
    let written = (|| {
        let mut file = std::fs::File::options()
            .write(true)
            .create_new(true)
            .mode(if old_mode.is_some() { 0o600 } else { 0o666 })
            .open(&temporary)?;
        made = true;
        if let Some(mode) = old_mode {
            file.set_permissions(std::fs::Permissions::from_mode(mode))?;
        }
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&temporary, &target)
    })();
    if written.is_err() && made {
        let _ = std::fs::remove_file(&temporary);
    }
    written
}

/// A cell tagged `raises-exception` shows an error on purpose (a lesson's compile error):
/// the run goes on after it, as nbclient and JupyterLab's Run All do.
fn expects_an_error(cell: &Value) -> bool {
    cell["metadata"]["tags"]
        .as_array()
        .is_some_and(|tags| tags.iter().any(|tag| tag == "raises-exception"))
}

/// nbformat stores source as a string or a list of lines.
fn source_text(source: &Value) -> String {
    match source {
        Value::String(text) => text.clone(),
        Value::Array(lines) => lines.iter().filter_map(Value::as_str).collect(),
        _ => String::new(),
    }
}

/// Starts the engine, showing what it is doing on a terminal while it starts.
fn start_engine(interrupter: Arc<Interrupter>) -> Result<Engine> {
    let progress = Progress::default();
    let engine = Starting::spawn(interrupter)?.wait(|line| progress.show(line));
    progress.end();
    engine
}

/// Runs one cell: prints its output live, returns its nbformat outputs and whether it
/// failed.
fn run_cell(
    engine: &mut Engine,
    source: &str,
    number: u64,
    show_timing: bool,
) -> (Vec<Output>, bool, Option<RuntimeTrace>) {
    let sink = Arc::new(TerminalSink::default());
    let read_input = |prompt: &str, _password: bool| -> String {
        print!("{prompt}");
        let _ = std::io::stdout().flush();
        let mut line = String::new();
        let _ = std::io::stdin().read_line(&mut line);
        line.trim_end_matches(['\r', '\n']).to_owned()
    };
    let run = engine.execute(source, sink.clone(), &read_input);
    sink.progress.end();
    let mut outputs = std::mem::take(&mut *sink.outputs.lock().unwrap_or_else(|p| p.into_inner()));
    let mut failed = false;
    for shown in presentation::cell_result(&run, show_timing) {
        match shown {
            Shown::Value(data) => {
                print_bundle(&data);
                outputs.push(Output::ExecuteResult {
                    execution_count: number,
                    data,
                    metadata: Map::new(),
                });
            }
            Shown::EventLoop(bundle) | Shown::UnderCell(bundle) => {
                add_display(&mut outputs, bundle)
            }
            Shown::Error(error) => {
                for line in &error.traceback {
                    eprintln!("{line}");
                }
                if matches!(run.result, Err(CellError::Interrupted { .. })) {
                    eprintln!("(interrupted)");
                }
                outputs.push(Output::Error {
                    ename: error.ename,
                    evalue: error.evalue,
                    traceback: error.traceback,
                });
                failed = true;
            }
        }
    }
    (outputs, failed, run.trace)
}

/// Prints and keeps what tandem adds under a cell (the timeline, the footer).
fn add_display(outputs: &mut Vec<Output>, (data, metadata): timing::Bundle) {
    print_bundle(&data);
    outputs.push(Output::DisplayData { data, metadata });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notebooks_are_written_whole_or_not_at_all() {
        let dir = crate::private_dirs::test_dir("write");
        let path = dir.join("out.ipynb");
        std::fs::write(&path, "old").unwrap();
        write(&serde_json::json!({"cells": []}), &path).unwrap();
        assert!(std::fs::read_to_string(&path)
            .unwrap()
            .contains("\"cells\""));
        let names: Vec<_> = std::fs::read_dir(&dir).unwrap().flatten().collect();
        assert_eq!(names.len(), 1, "no partial file is left beside it");
        // When the new file cannot be made (here: a name so long that the temporary
        // name beside it is over the limit), the old one stays as it was.
        let long = dir.join(format!("{}.ipynb", "n".repeat(230)));
        std::fs::write(&long, "old").unwrap();
        assert!(write(&serde_json::json!({"cells": [1]}), &long).is_err());
        assert_eq!(std::fs::read_to_string(&long).unwrap(), "old");
        std::fs::remove_file(&long).unwrap();
        // The old file's permissions stay, and a link stays a link.
        std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o600))
            .unwrap();
        let link = dir.join("link.ipynb");
        std::os::unix::fs::symlink(&path, &link).unwrap();
        write(&serde_json::json!({"cells": [2]}), &link).unwrap();
        assert!(std::fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink());
        let meta = std::fs::metadata(&path).unwrap();
        assert_eq!(
            std::os::unix::fs::PermissionsExt::mode(&meta.permissions()) & 0o777,
            0o600
        );
        assert!(std::fs::read_to_string(&path).unwrap().contains('2'));
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn source_is_a_string_or_a_list_of_lines() {
        assert_eq!(source_text(&serde_json::json!("a\nb")), "a\nb");
        assert_eq!(source_text(&serde_json::json!(["a\n", "b"])), "a\nb");
        assert_eq!(source_text(&Value::Null), "");
    }
}
