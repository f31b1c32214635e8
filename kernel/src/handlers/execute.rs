//! `execute_request`: counts executions, publishes the input, runs the cell through the
//! engine with live output on iopub, then the value or the error, and the reply.

use super::{Handled, Reply, Request, ShellHandlers};
use crate::engine::{syntax, CellError, CellRun, OutputSink, StreamName};
use crate::presentation::{self, Shown};
use crate::server::Iopub;
use crate::timing;
use crate::wire::content::{
    self, ClearOutput, DisplayData, ExecuteInput, ExecuteOutcome, ExecuteReply, ExecuteRequest,
    ExecuteResult, ExpressionValue, InputRequest, PagePayload, Stream,
};
use crate::wire::{now_iso8601, Message};
use serde_json::{json, Map, Value};
use std::cell::RefCell;
use std::sync::Arc;
use std::time::Instant;

/// Sends a running cell's output to iopub, as children of its execute request.
struct IopubSink {
    iopub: Iopub,
    parent: Message,
    /// The display that shows this cell's build progress, once there is one.
    progress_display: std::sync::Mutex<Option<String>>,
}

impl IopubSink {
    /// Output of a request's cell: to iopub, or nowhere for silent requests.
    fn for_request(request: &Request, silent: bool) -> Arc<dyn OutputSink> {
        if silent {
            Arc::new(Discard)
        } else {
            Arc::new(IopubSink {
                iopub: request.iopub.clone(),
                parent: request.message.clone(),
                progress_display: std::sync::Mutex::new(None),
            })
        }
    }

    fn publish(&self, msg_type: &str, content: Value) {
        self.iopub.publish(self.parent.child(msg_type, content));
    }

    /// What the cell itself printed or displayed: waits while a slow client has much of it.
    fn publish_output(&self, msg_type: &str, content: Value) {
        self.iopub
            .publish_output(self.parent.child(msg_type, content));
    }
}

impl OutputSink for IopubSink {
    fn stream(&self, name: StreamName, text: &str) {
        let stream = Stream {
            name: name.as_str(),
            text: text.to_owned(),
        };
        self.publish_output("stream", content::to_value(&stream));
    }

    fn display(&self, data: Map<String, Value>) {
        let display = DisplayData {
            data,
            metadata: Map::new(),
            transient: Map::new(),
        };
        self.publish_output("display_data", content::to_value(&display));
    }

    fn clear_output(&self, wait: bool) {
        self.publish("clear_output", content::to_value(&ClearOutput { wait }));
        // A progress display cleared away is gone: the next report starts a new one.
        if let Ok(mut display) = self.progress_display.lock() {
            *display = None;
        }
    }

    /// The first report is a display with an id; later ones update it in place.
    fn progress(&self, text: &str) {
        let Ok(mut display) = self.progress_display.lock() else {
            return;
        };
        let (msg_type, id) = match display.as_ref() {
            Some(id) => ("update_display_data", id.clone()),
            None => (
                "display_data",
                display
                    .insert(format!("tandem-progress-{}", uuid::Uuid::new_v4()))
                    .clone(),
            ),
        };
        let mut data = Map::new();
        data.insert("text/plain".into(), json!(text));
        let mut transient = Map::new();
        transient.insert("display_id".into(), json!(id));
        let mut metadata = Map::new();
        metadata.insert("tandem".into(), json!({ "role": "progress" }));
        let update = DisplayData {
            data,
            metadata,
            transient,
        };
        self.publish(msg_type, content::to_value(&update));
    }
}

/// Output of silent executions and user expressions goes nowhere.
struct Discard;

impl OutputSink for Discard {
    fn stream(&self, _: StreamName, _: &str) {}
    fn display(&self, _: Map<String, Value>) {}
    fn clear_output(&self, _: bool) {}
}

pub fn handle(shell: &mut ShellHandlers, request: &mut Request) -> Handled {
    let started = now_iso8601();
    // An interrupt of the cell before released the hold on output; this cell's waits again.
    request.iopub.hold_output();
    let wanted: ExecuteRequest = request.content()?;
    let counts = wanted.store_history && !wanted.silent;
    if counts {
        shell.execution_count += 1;
    }
    let execution_count = shell.execution_count;
    if !wanted.silent {
        request.publish(
            "execute_input",
            content::to_value(&ExecuteInput {
                code: wanted.code.clone(),
                execution_count,
            }),
        );
    }

    // `:help` and `:timing [on|off]` are tandem's own; everything else goes to evcxr.
    let mut payload = Vec::new();
    let (code, toggles) = take_timing_commands(&wanted.code);
    let own_command = if wanted.code.trim() == ":help" {
        payload.push(PagePayload::plain_text(HELP));
        Some(Ok(Map::new()))
    } else if !toggles.is_empty() {
        let applied = toggles.into_iter().try_for_each(|toggle| {
            shell.show_timing = toggle?.unwrap_or(!shell.show_timing);
            Ok::<(), String>(())
        });
        match applied {
            Err(message) => Some(Err(CellError::Other { message })),
            Ok(()) if code.trim().is_empty() => {
                let state = if shell.show_timing { "on" } else { "off" };
                let text = format!("timing footer {state}\n");
                IopubSink::for_request(request, wanted.silent).stream(StreamName::Stdout, &text);
                Some(Ok(Map::new()))
            }
            Ok(()) => None,
        }
    } else {
        None
    };

    let sink = IopubSink::for_request(request, wanted.silent);
    let interrupter = shell.interrupter.clone();
    let message = request.message;
    let stdin_allowed = wanted.allow_stdin;
    let outbox = RefCell::new(&mut *request.outbox);
    let warn_sink = sink.clone();
    let read_input = |prompt: &str, password: bool| -> String {
        if !stdin_allowed {
            warn_sink.stream(
                StreamName::Stderr,
                "tandem: the code asked for input, but this client does not allow stdin; \
                 it gets an empty string\n",
            );
            return String::new();
        }
        let ask = message.child(
            "input_request",
            content::to_value(&InputRequest {
                prompt: prompt.to_owned(),
                password,
            }),
        );
        let mut outbox = outbox.borrow_mut();
        let Some(stdin) = outbox.stdin() else {
            return String::new();
        };
        stdin
            .ask(&ask, &|| interrupter.requested())
            .unwrap_or_default()
    };
    let mut user_expressions = Map::new();
    let waiting_since = Instant::now();
    let run = match own_command {
        Some(result) => CellRun {
            result,
            timings: Default::default(),
            spans: Vec::new(),
        },
        None => match shell.engine(sink.as_ref()) {
            Ok(engine) => {
                let engine_wait = waiting_since.elapsed();
                let mut run = engine.execute(&code, sink, &read_input);
                run.timings.engine_wait = engine_wait;
                // Like ipykernel, user expressions are evaluated only after a cell that worked.
                if run.result.is_ok() {
                    for (name, expression) in &wanted.user_expressions {
                        let code = expression.as_str().unwrap_or_default();
                        let value = evaluate_expression(engine, code);
                        user_expressions.insert(name.clone(), content::to_value(&value));
                    }
                }
                run
            }
            Err(unavailable) => CellRun {
                result: Err(CellError::Other {
                    message: unavailable.evalue,
                }),
                timings: Default::default(),
                spans: Vec::new(),
            },
        },
    };

    let value_text = run.result.as_ref().ok().and_then(|value| {
        value
            .get("text/plain")
            .and_then(Value::as_str)
            .map(str::to_owned)
    });
    if counts {
        shell
            .history
            .record(execution_count, &wanted.code, value_text);
    }
    let mut outcome = ExecuteOutcome::Ok { payload };
    for shown in presentation::cell_result(&run, shell.show_timing) {
        match shown {
            Shown::Value(data) if !wanted.silent => request.publish(
                "execute_result",
                content::to_value(&ExecuteResult {
                    execution_count,
                    data,
                    metadata: Map::new(),
                }),
            ),
            Shown::UnderCell(bundle) if !wanted.silent => publish_kernel_display(request, bundle),
            Shown::Error(error) => {
                if !wanted.silent {
                    request.publish("error", content::to_value(&error));
                }
                outcome = ExecuteOutcome::Error(error);
            }
            Shown::Value(_) | Shown::UnderCell(_) => {}
        }
    }
    // As in ipykernel, an interrupt counts as an error too; silent cells never abort.
    if matches!(outcome, ExecuteOutcome::Error(_)) && wanted.stop_on_error && !wanted.silent {
        shell.to_abort = request.outbox.take_queued();
    }
    // Like ipykernel, the reply's metadata says when the cell started; tandem adds where
    // the time went, machine-readable.
    let mut reply = Reply::new(&ExecuteReply {
        outcome,
        execution_count,
        user_expressions: Some(user_expressions),
    });
    reply.metadata.insert("started".into(), json!(started));
    reply
        .metadata
        .insert("tandem".into(), run.timings.metadata());
    Ok(Some(reply))
}

/// Publishes what tandem adds under a cell (the timeline, the footer): a mime bundle and
/// its metadata, which marks the role.
fn publish_kernel_display(request: &mut Request, (data, metadata): timing::Bundle) {
    let display = DisplayData {
        data,
        metadata,
        transient: Map::new(),
    };
    request.publish("display_data", content::to_value(&display));
}

/// Evaluates one user expression after the cell: its value's mime bundle, or an error.
fn evaluate_expression(engine: &mut crate::engine::Engine, code: &str) -> ExpressionValue {
    let run = engine.execute(code, Arc::new(Discard), &|_, _| String::new());
    match run.result {
        Ok(data) => ExpressionValue::Ok {
            data,
            metadata: Map::new(),
        },
        Err(error) => ExpressionValue::Error(presentation::error_content(&error)),
    }
}

/// Answers an execute request queued behind a failed cell (`stop_on_error`).
pub fn aborted(shell: &mut ShellHandlers, _: &mut Request) -> Handled {
    Ok(Some(Reply::new(&ExecuteReply {
        outcome: ExecuteOutcome::Aborted,
        execution_count: shell.execution_count,
        user_expressions: None,
    })))
}

/// Splits `:timing [on|off]` lines off the cell's leading command lines (where evcxr
/// looks for commands) and returns the rest of the code and what they asked for.
fn take_timing_commands(code: &str) -> (String, Vec<Result<Option<bool>, String>>) {
    let mut toggles = Vec::new();
    let mut kept = Vec::new();
    let mut in_commands = true;
    for line in code.lines() {
        in_commands = in_commands && syntax::is_command_region_line(line);
        if in_commands {
            let argument = line.trim_start_matches(' ').strip_prefix(":timing");
            if let Some(argument) = argument.filter(|a| a.is_empty() || a.starts_with(' ')) {
                toggles.push(timing::parse_toggle(argument));
                continue;
            }
        }
        kept.push(line);
    }
    (kept.join("\n"), toggles)
}

const HELP: &str = "\
tandem: Rust cells compiled and run by the evcxr engine.

Ready in every cell, no :dep needed: tokio (full), futures, and the helpers:
  blocking_task(name, secs)   async_task(name, secs)   gather(futures)
  count_primes(name, limit)   timed(|| ..)   timed_async(fut)   spawn   spawn_blocking
  run_on_one_thread(fut)      run_on_threads(n, fut)   stop_if_interrupted()
  LocalServer::start(delay)   http_get(url)   http_get_async(url)
  write_file / read_file (and _async)   Database::create(name, rows)   .query / .query_async
  resources::measure(|| ..)   display::markdown(text)   exercise::previous_run() / check(..)
Top-level .await works in any cell. A cell whose helper tasks ran ends with a timeline.

Kernel commands (a line of their own in a cell):
  :help              this text
  :vars              the session's variables and their types
  :dep NAME = \"1\"    add a crate from crates.io (its build shows progress)
  :opt [0|1|2]       optimisation level of cells (default 0; dependencies are built at 2)
  :clear             forget every variable and item, keep compiled crates
  :restart           restart the engine's process (variables are lost)
  :explain           explain the last compile error
  :timing [on|off]   the footer under each cell: compile time and run time

Output printed by a cell shows up while the cell runs. A cell's last expression
(without a semicolon) is its value. Interrupting a cell that waits in a helper stops
it within milliseconds and keeps the session's variables; other code is stopped after
0.2 s by restarting the engine's process, and the cell says what was lost.
";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timing_lines_are_taken_only_among_leading_commands() {
        let (code, toggles) = take_timing_commands(":timing off\n:vars\nlet t = 1;\n:timing on");
        assert_eq!(code, ":vars\nlet t = 1;\n:timing on");
        assert_eq!(toggles, vec![Ok(Some(false))]);
        let (code, toggles) = take_timing_commands(":timing");
        assert_eq!((code.as_str(), toggles), ("", vec![Ok(None)]));
        let (_, toggles) = take_timing_commands(":timing loud");
        assert!(toggles[0].is_err());
        let (code, toggles) = take_timing_commands(":timings");
        assert_eq!((code.as_str(), toggles.len()), (":timings", 0));
    }
}
