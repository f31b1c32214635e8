//! `tandem run`: runs a notebook's code cells with the same engine and helpers as the
//! kernel, no Jupyter needed. Output shows in the terminal as it happens; the executed
//! notebook (nbformat 4, with outputs) can be written out; the first failing cell stops it.

use crate::engine::{CellError, Engine, Interrupter, OutputSink, Starting, StreamName};
use crate::presentation::{self, Shown};
use crate::timing;
use anyhow::{anyhow, bail, Context, Result};
use serde::Serialize;
use serde_json::{Map, Value};
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// One output of a code cell, as nbformat 4 stores it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "output_type", rename_all = "snake_case")]
enum Output {
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
    /// Whether Ctrl-C stopped the run.
    pub interrupted: bool,
}

/// Ctrl-C during a run: the first stops the running cell as the kernel's interrupt does
/// (a helper's wait at once, other code after 0.2 s) and ends the run after it, so the
/// executed notebook is still written; a second one quits at once.
pub struct CtrlC {
    interrupter: Arc<Interrupter>,
    pressed: Arc<AtomicBool>,
}

impl CtrlC {
    /// Takes SIGINT over. Call before any other thread starts: the threads started later
    /// inherit the blocked signal, and only the `ctrl-c` thread receives it. A second
    /// Ctrl-C ends the engine (and what its cells started) and removes `scratch` before
    /// it quits.
    pub fn install(scratch: Option<PathBuf>) -> Result<CtrlC> {
        // SAFETY: plain signal-set calls on a set owned here.
        let set = unsafe {
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            libc::sigaddset(&mut set, libc::SIGINT);
            libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
            set
        };
        let interrupter = Arc::new(Interrupter::default());
        let pressed = Arc::new(AtomicBool::new(false));
        let (to_interrupt, seen) = (interrupter.clone(), pressed.clone());
        std::thread::Builder::new()
            .name("ctrl-c".into())
            .spawn(move || loop {
                let mut signal = 0;
                // SAFETY: waits for a signal of the set blocked above.
                if unsafe { libc::sigwait(&set, &mut signal) } != 0 {
                    return;
                }
                if seen.swap(true, Ordering::SeqCst) {
                    eprintln!("\ntandem: stopped");
                    to_interrupt.kill_engine();
                    if let Some(scratch) = &scratch {
                        let _ = std::fs::remove_dir_all(scratch);
                    }
                    std::process::exit(130);
                }
                eprintln!("\ntandem: interrupting the cell (Ctrl-C again to quit at once)");
                to_interrupt.interrupt();
            })
            .context("starting the Ctrl-C thread")?;
        Ok(CtrlC {
            interrupter,
            pressed,
        })
    }

    fn pressed(&self) -> bool {
        self.pressed.load(Ordering::SeqCst)
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
        interrupted: false,
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
        let (outputs, failed) = run_cell(&mut engine, &source, number, show_timing);
        cell["execution_count"] = number.into();
        cell["outputs"] = serde_json::to_value(outputs)?;
        if failed || ctrl_c.pressed() {
            outcome.failed_cell = failed.then_some(outcome.cells_run);
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

fn print_markdown(source: &str) {
    if !source.trim().is_empty() {
        println!("\n{}", source.trim_end());
    }
}

/// `In [n]:` and the cell's code, bold and dimmed on a terminal.
fn print_header(number: u64, source: &str) {
    let (bold, dim, plain) = if std::io::stdout().is_terminal() {
        ("\x1b[1m", "\x1b[2m", "\x1b[0m")
    } else {
        ("", "", "")
    };
    println!("\n{bold}In [{number}]:{plain}");
    for line in source.trim_end().lines() {
        println!("  {dim}│{plain} {line}");
    }
    println!();
}

/// Runs one cell: prints its output live, returns its nbformat outputs and whether it
/// failed.
fn run_cell(
    engine: &mut Engine,
    source: &str,
    number: u64,
    show_timing: bool,
) -> (Vec<Output>, bool) {
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
            Shown::UnderCell(bundle) => add_display(&mut outputs, bundle),
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
    (outputs, failed)
}

/// Prints and keeps what tandem adds under a cell (the timeline, the footer).
fn add_display(outputs: &mut Vec<Output>, (data, metadata): timing::Bundle) {
    print_bundle(&data);
    outputs.push(Output::DisplayData { data, metadata });
}

/// Prints what a terminal can show of a mime bundle: its plain text, else the source of
/// its Markdown or HTML.
fn print_bundle(data: &Map<String, Value>) {
    let text = ["text/plain", "text/markdown", "text/html"]
        .iter()
        .find_map(|mime| data.get(*mime).and_then(Value::as_str));
    match text {
        Some(text) => println!("{}", text.trim_end()),
        None => {
            let kinds: Vec<&str> = data.keys().map(String::as_str).collect();
            println!("[{}]", kinds.join(", "));
        }
    }
}

/// A one-line status that rewrites itself on a terminal (and stays silent elsewhere).
#[derive(Default)]
struct Progress {
    shown: Mutex<bool>,
}

impl Progress {
    fn show(&self, text: &str) {
        let mut stderr = std::io::stderr();
        if !stderr.is_terminal() {
            return;
        }
        let _ = write!(stderr, "\r\x1b[K{text}");
        let _ = stderr.flush();
        if let Ok(mut shown) = self.shown.lock() {
            *shown = true;
        }
    }

    fn end(&self) {
        if let Ok(mut shown) = self.shown.lock() {
            if std::mem::take(&mut *shown) {
                eprint!("\r\x1b[K");
            }
        }
    }
}

/// Prints a running cell's output as it arrives and keeps it as nbformat outputs.
#[derive(Default)]
struct TerminalSink {
    outputs: Mutex<Vec<Output>>,
    progress: Progress,
    /// A `clear_output(wait)` takes effect at the next output.
    clear_pending: Mutex<bool>,
}

impl TerminalSink {
    fn keep(&self, output: Output) {
        let mut outputs = self.outputs.lock().unwrap_or_else(|p| p.into_inner());
        if std::mem::take(&mut *self.clear_pending.lock().unwrap_or_else(|p| p.into_inner())) {
            outputs.clear();
        }
        // Consecutive text on the same stream is one output, as Jupyter stores it.
        if let (
            Some(Output::Stream { name, text }),
            Output::Stream {
                name: new,
                text: more,
            },
        ) = (outputs.last_mut(), &output)
        {
            if name == new {
                text.push_str(more);
                return;
            }
        }
        outputs.push(output);
    }
}

impl OutputSink for TerminalSink {
    fn stream(&self, name: StreamName, text: &str) {
        self.progress.end();
        match name {
            StreamName::Stdout => {
                let mut stdout = std::io::stdout();
                let _ = stdout.write_all(text.as_bytes());
                let _ = stdout.flush();
            }
            StreamName::Stderr => {
                let _ = std::io::stderr().write_all(text.as_bytes());
            }
        }
        self.keep(Output::Stream {
            name: name.as_str(),
            text: text.to_owned(),
        });
    }

    fn display(&self, data: Map<String, Value>) {
        self.progress.end();
        print_bundle(&data);
        self.keep(Output::DisplayData {
            data,
            metadata: Map::new(),
        });
    }

    fn clear_output(&self, wait: bool) {
        self.progress.end();
        if wait {
            *self.clear_pending.lock().unwrap_or_else(|p| p.into_inner()) = true;
        } else {
            self.outputs
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clear();
        }
    }

    fn progress(&self, text: &str) {
        self.progress.show(text);
    }
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

    #[test]
    fn stream_text_on_one_stream_is_merged_and_cleared_on_request() {
        let sink = TerminalSink::default();
        sink.keep(Output::Stream {
            name: "stdout",
            text: "a\n".into(),
        });
        sink.keep(Output::Stream {
            name: "stdout",
            text: "b\n".into(),
        });
        sink.keep(Output::Stream {
            name: "stderr",
            text: "c\n".into(),
        });
        let outputs = sink.outputs.lock().unwrap().clone();
        assert_eq!(outputs.len(), 2);
        assert_eq!(
            serde_json::to_value(&outputs[0]).unwrap(),
            serde_json::json!({"output_type": "stream", "name": "stdout", "text": "a\nb\n"})
        );
        sink.clear_output(true);
        sink.keep(Output::Stream {
            name: "stdout",
            text: "d\n".into(),
        });
        assert_eq!(sink.outputs.lock().unwrap().len(), 1);
    }
}
