//! The interpreter: compiles and runs Rust cells through evcxr's `CommandContext`, streams
//! what they print while they run, and reports values, errors and timings. Knows nothing
//! of ZeroMQ or Jupyter messages.

mod artifacts;
mod build_progress;
mod cell_run;
mod child;
mod diagnostics;
mod event_channel;
mod interrupt;
pub mod limits;
mod live_trace;
mod markers;
mod output;
mod prelude;
mod process_tree;
mod sites;
mod starting;
mod startup;
pub mod syntax;
mod trace;

pub use artifacts::{
    build_dir_in, build_key, drop_stray_preload_from_library_path, prebuild_in_subprocess,
    standby_dir, template_location, TemplateBuild,
};
pub use cell_run::{CellError, CellRun};
pub use diagnostics::{CellSpan, Diagnostic, Found, Label};
pub use interrupt::Interrupter;
pub use markers::{choose_key as choose_marker_key, KEY_VARIABLE as MARKER_KEY_VARIABLE};
pub use output::{Discard, OutputSink, StreamName};
pub use starting::{StartStatus, Starting};
pub use trace::{BranchTrace, Poll, RuntimeTrace, Site, TaskTrace, Timer};

use crate::timing::CellTimings;
use anyhow::{anyhow, Result};
use evcxr::{CommandContext, EvalCallbacks};
use event_channel::{CellEvents, EventChannel};
use output::Forwarder;
use serde_json::{Map, Value};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// In the evcxr child process this runs the cells and never returns.
///
/// # Safety
/// In the child it changes the environment: call it first thing in `main`, while the
/// process has one thread.
pub unsafe fn runtime_hook() {
    if std::env::var_os("EVCXR_IS_RUNTIME").is_some() {
        // SAFETY: the caller guarantees a single thread.
        unsafe { child::set_up() };
    }
    evcxr::runtime_hook();
}

/// Where an engine's build directory comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Startup {
    /// A kernel: copy the prebuilt template first (building it once if missing).
    FromTemplate,
    /// `tandem prebuild`: build in place (the directory is the template).
    InPlace,
}

/// The evcxr engine with its output forwarder.
pub struct Engine {
    context: CommandContext,
    forwarder: Forwarder,
    interrupter: Arc<Interrupter>,
    /// evcxr's crate directory, watched for dependency builds.
    build_dir: PathBuf,
    /// Whether rust-analyzer has answered its first, slow query.
    analysis_warm: bool,
    /// Where the poll recorder's events arrive (none if it could not listen).
    events: Option<EventChannel>,
}

/// How long a cell that ran waits for the poll recorder's events, sent as its future ends.
const TRACE_WAIT: Duration = Duration::from_secs(1);

impl Engine {
    /// Moves the process that runs the cells into `dir`, so relative paths in cells start
    /// there (a standby engine was started somewhere else). One cell's compile.
    pub fn change_directory(&mut self, dir: &std::path::Path) -> Result<()> {
        let dir = dir
            .to_str()
            .ok_or_else(|| anyhow!("{} is not UTF-8", dir.display()))?;
        // `{:?}` of a str is a valid Rust string literal.
        let code = format!("std::env::set_current_dir({dir:?}).unwrap();");
        let run = self.execute(&code, Arc::new(output::Discard), &|_, _| String::new());
        run.result
            .map(drop)
            .map_err(|error| anyhow!("moving the engine to {dir}: {error}"))
    }

    /// Compiles and runs one cell. Output goes to `sink` while the cell runs;
    /// `read_input(prompt, is_password)` answers the code's requests for input.
    pub fn execute(
        &mut self,
        code: &str,
        sink: Arc<dyn OutputSink>,
        read_input: &dyn Fn(&str, bool) -> String,
    ) -> CellRun {
        if let Err(too_deep) = syntax::check_nesting(code) {
            return CellRun::without_running(Err(CellError::Other {
                message: too_deep.to_string(),
            }));
        }
        let (code, skipped) = prelude::skip_preloaded_deps(code);
        for name in skipped {
            sink.stream(
                StreamName::Stdout,
                &format!(
                    "tandem: `{name}` is already linked in every session (all features); \
                     the :dep line for it was skipped.\n"
                ),
            );
        }
        let code = code.as_str();
        if code.lines().any(|line| line.trim() == ":restart") {
            // evcxr would end only the engine's process; programs its cells started go too.
            self.interrupter.kill_engine();
        }
        self.forwarder.begin_cell(sink.clone());
        if let Some(events) = &self.events {
            events.forget_queued();
        }
        self.interrupter.cell_started();
        let started = Instant::now();
        let mut callbacks = EvalCallbacks {
            input_reader: &|request| read_input(&request.prompt, request.is_password),
        };
        let building = build_progress::Watch::start(&self.build_dir, sink.clone());
        // While the cell runs, what the runtime did so far goes to the sink as it comes.
        let asked_at = tandem_helpers::kernel_link::monotonic_ns();
        let (context, channel) = (&mut self.context, self.events.as_ref());
        let build_dir = self.build_dir.as_path();
        let (outcome, cell_events) = std::thread::scope(|scope| {
            let (stop, stopped) = crossbeam_channel::bounded::<()>(0);
            let follower = channel.map(|channel| {
                let sink = sink.clone();
                let cell = CellEvents::asked_at(asked_at);
                let sites = sites::Sites::new(code, build_dir);
                scope.spawn(move || {
                    live_trace::follow(channel, sink.as_ref(), &stopped, cell, sites)
                })
            });
            let outcome = context.execute_with_callbacks(code, &mut callbacks);
            drop(stop);
            (outcome, follower.and_then(|follower| follower.join().ok()))
        });
        let elapsed = started.elapsed();
        let dependencies = building.finish().unwrap_or_default();
        let interrupted = self.interrupter.cell_finished();
        if let (Ok(outputs), true) = (&outcome, log::log_enabled!(log::Level::Debug)) {
            let phases: Vec<String> = outputs
                .phases
                .iter()
                .map(|p| format!("{} {:.3}s", p.name, p.duration.as_secs_f64()))
                .collect();
            log::debug!("cell phases: {} (total {elapsed:?})", phases.join(", "));
        }
        let mut timings = match &outcome {
            Ok(outputs) => split_timings(outputs, elapsed),
            Err(_) => CellTimings {
                compile: elapsed,
                ..CellTimings::default()
            },
        };
        timings.dependencies = dependencies.min(timings.compile);
        timings.compile -= timings.dependencies;
        let mut report = self.forwarder.finish_cell(u64::from(timings.ran));
        let spans = std::mem::take(&mut report.spans);
        // A cell that ran no future (items only) sends no runtime events: nothing to wait for.
        let futures = timings.ran && (report.ran_a_future || !report.synced);
        let trace = self.runtime_trace(cell_events, asked_at, futures, code);
        let result = match outcome {
            Ok(_) if report.panicked && interrupted => {
                // The helpers stopped the cell when asked: evcxr caught the panic, and the
                // session's earlier variables are still there.
                Err(CellError::Interrupted {
                    variables_lost: false,
                })
            }
            Ok(outputs) if report.panicked => {
                let mut message = report
                    .panic_messages
                    .last()
                    .cloned()
                    .unwrap_or_else(|| "(no message)".to_owned());
                if let Some(hint) = limits::process_hint(&message) {
                    message = format!("{message}\n{hint}");
                }
                self.print_other_panics(&sink, &report.panic_messages, 1);
                drop(outputs);
                Err(CellError::Panic { message })
            }
            Ok(outputs) => {
                self.print_other_panics(&sink, &report.panic_messages, 0);
                let mut value = mime_bundle(outputs.content_by_mime_type);
                if is_unit(&value) {
                    value.clear();
                }
                // Rich output printed just before the end of a cell without a final
                // expression reaches us like a value; it was a display.
                let is_command = code.trim_start().starts_with(':');
                if let Some(wait) = markers::clear_output_request(&value) {
                    sink.clear_output(wait);
                    value.clear();
                } else if !value.is_empty() && !is_command && !syntax::ends_in_expression(code) {
                    sink.display(std::mem::take(&mut value));
                }
                Ok(value)
            }
            Err(error) => {
                self.print_other_panics(&sink, &report.panic_messages, 0);
                let mut error = self.classify(error, code, interrupted);
                if let (CellError::ProcessEnded { detail }, Some(failed)) =
                    (&mut error, report.allocation_failure.take())
                {
                    *detail = format!("{detail} ({failed})");
                }
                Err(error)
            }
        };
        CellRun {
            result,
            timings,
            spans,
            trace,
        }
    }

    /// What the runtime did while the cell ran: `so_far` from the poll recorder, and the
    /// rest (sent as the cell's future ended, so it is there by now, or about to be).
    fn runtime_trace(
        &self,
        so_far: Option<CellEvents>,
        asked_at: u64,
        future_ran: bool,
        code: &str,
    ) -> Option<RuntimeTrace> {
        let channel = self.events.as_ref()?;
        let mut cell = so_far.unwrap_or_else(|| CellEvents::asked_at(asked_at));
        let wait = if future_ran {
            TRACE_WAIT
        } else {
            Duration::ZERO
        };
        channel.receive_until_ended(&mut cell, Instant::now() + wait);
        // Without its end (the process died, the events came too late) what came is drawn:
        // a picture drawn live is not left as it was.
        if !cell.ended && (!cell.started() || cell.events.is_empty()) {
            return None;
        }
        let mut trace = RuntimeTrace::assemble(&cell.events, &cell.thread_names);
        sites::Sites::new(code, &self.build_dir).locate(&mut trace);
        Some(trace)
    }

    /// `:timeline on|off`: whether cells record what the runtime does, from the next one on.
    pub fn set_recording(&self, on: bool) {
        if let Some(channel) = &self.events {
            channel.set_recording(on);
        }
    }

    /// Panics in threads other than the cell's are printed as the stderr they were.
    fn print_other_panics(
        &self,
        sink: &Arc<dyn OutputSink>,
        messages: &[String],
        skip_last: usize,
    ) {
        let shown = messages.len().saturating_sub(skip_last);
        for message in &messages[..shown] {
            sink.stream(
                StreamName::Stderr,
                &format!("a thread panicked: {message}\n"),
            );
        }
    }

    fn classify(&mut self, error: evcxr::Error, code: &str, interrupted: bool) -> CellError {
        let child_gone = self.child_exited();
        if interrupted {
            // An interrupt during compilation kills the idle child; start a fresh one now
            // so the next cell does not trip over it.
            if child_gone {
                let _ = self.context.execute(":restart");
            }
            return CellError::Interrupted {
                variables_lost: true,
            };
        }
        match error {
            evcxr::Error::CompilationErrors(errors) => {
                let (ename, evalue) = diagnostics::summary(&errors);
                CellError::Compile {
                    ename,
                    evalue,
                    diagnostics: diagnostics::diagnostics(&errors),
                    code: code.to_owned(),
                }
            }
            evcxr::Error::SubprocessTerminated(detail) => CellError::ProcessEnded {
                detail: detail.trim().to_owned(),
            },
            other => CellError::Other {
                message: diagnostics::explain(other.to_string()),
            },
        }
    }

    /// Whether the process that runs the cells is still there.
    pub fn is_alive(&self) -> bool {
        !self.child_exited()
    }

    fn child_exited(&self) -> bool {
        let handle = self.context.process_handle();
        let Ok(mut child) = handle.lock() else {
            return false;
        };
        matches!(child.try_wait(), Ok(Some(_)))
    }

    /// Completion candidates at `byte_pos` from evcxr's rust-analyzer, as
    /// (matches, start byte, end byte).
    pub fn completions(
        &mut self,
        code: &str,
        byte_pos: usize,
    ) -> Result<(Vec<String>, usize, usize)> {
        syntax::check_nesting(code)?;
        let completions = self
            .context
            .completions(code, byte_pos)
            .map_err(|e| anyhow!("{e}"))?;
        // A completion does what the warm-up would.
        self.analysis_warm = true;
        let matches = completions
            .completions
            .into_iter()
            .map(|c| c.code)
            .collect();
        Ok((matches, completions.start_offset, completions.end_offset))
    }

    /// Hover text (plain, html) for the expression ending at `byte_pos`.
    pub fn hover(&mut self, code: &str, byte_pos: usize) -> Result<(String, String)> {
        syntax::check_nesting(code)?;
        self.context
            .hover_at(code, byte_pos)
            .map_err(|e| anyhow!("{e}"))
    }

    /// The session's variables and their types.
    pub fn variables(&self) -> Vec<(String, String)> {
        self.context
            .variables_and_types()
            .map(|(name, ty)| (name.to_owned(), ty.to_owned()))
            .collect()
    }

    /// Names of functions, structs and other items the session defined.
    pub fn items(&self) -> Vec<String> {
        self.context
            .defined_item_names()
            .map(str::to_owned)
            .collect()
    }
}

/// evcxr names its phases; "Execution" is the run, everything before it is compilation,
/// "Variable types" among it (a patch: patches/README.md). Without an "Execution" phase the
/// cell's code did not run (only `:commands`, say).
fn split_timings(outputs: &evcxr::EvalOutputs, total: Duration) -> CellTimings {
    let phase = |name: &str| -> Option<Duration> {
        outputs
            .phases
            .iter()
            .filter(|phase| phase.name == name)
            .map(|phase| phase.duration)
            .reduce(|a, b| a + b)
    };
    let run = phase("Execution");
    CellTimings {
        compile: total.saturating_sub(run.unwrap_or_default()),
        analysis: phase("Variable types").unwrap_or_default(),
        run: run.unwrap_or_default(),
        ran: run.is_some(),
        ..CellTimings::default()
    }
}

/// A unit value `()` (a cell ending in a loop, say) is no value worth showing.
fn is_unit(bundle: &Map<String, Value>) -> bool {
    bundle.len() == 1 && bundle.get("text/plain").and_then(Value::as_str) == Some("()")
}

/// evcxr returns the cell's value as strings per mime type; JSON types become JSON.
fn mime_bundle(content: std::collections::HashMap<String, String>) -> Map<String, Value> {
    content
        .into_iter()
        .map(|(mime, text)| {
            let value = markers::mime_value(&mime, text);
            (mime, value)
        })
        .collect()
}
