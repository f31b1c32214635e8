//! `execute_request`: counts executions, publishes the input, runs the cell (tandem's own
//! commands here, the rest through the engine with live output on iopub), then its value
//! or its error, user expressions, and the typed reply.

mod sink;
mod stdin;

use super::commands::{self, Answer};
use super::{Handled, Reply, Request, ShellHandlers};
use crate::engine::{CellError, CellRun, Discard, Engine, OutputSink, StreamName};
use crate::presentation::{self, Shown};
use crate::timing;
use crate::wire::content::{
    self, DisplayData, ExecuteInput, ExecuteOutcome, ExecuteReply, ExecuteRequest, ExecuteResult,
    ExpressionValue,
};
use crate::wire::now_iso8601;
use serde_json::{json, Map, Value};
use sink::{CellOutput, IopubSink};
use std::sync::Arc;
use std::time::Instant;
use stdin::StdinBridge;

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

    let output = IopubSink::for_request(request, wanted.silent);
    let sink = output.sink();
    let mut payload = Vec::new();
    let mut user_expressions = Map::new();
    let last_trace = shell.last_trace.as_ref();
    let (code, answer) = commands::carry_out(&wanted.code, &mut shell.settings, last_trace);
    let run = match answer {
        Some(answer) => answered(answer, sink.as_ref(), &mut payload),
        None => run_in_engine(shell, request, &wanted, &code, sink, &mut user_expressions),
    };

    if counts {
        let value_text = run.result.as_ref().ok().and_then(|value| {
            value
                .get("text/plain")
                .and_then(Value::as_str)
                .map(str::to_owned)
        });
        shell
            .history
            .record(execution_count, &wanted.code, value_text);
    }
    if let Some(trace) = run.trace.as_ref().filter(|trace| trace.has_tasks()) {
        shell.last_trace = Some((execution_count, trace.clone()));
    }
    let footer_on = shell.settings.footer;
    let outcome = show_result(request, &output, &run, &wanted, execution_count, footer_on);
    let outcome = outcome.unwrap_or(ExecuteOutcome::Ok { payload });
    let failed = matches!(outcome, ExecuteOutcome::Error(_));
    shell.waiting.after_cell(&wanted, failed, request.outbox);
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

/// A cell answered by tandem's own commands: what they say goes to the cell's output or
/// to the reply's `payload`.
fn answered(
    answer: Answer,
    sink: &dyn OutputSink,
    payload: &mut Vec<content::PagePayload>,
) -> CellRun {
    let result = match answer {
        Answer::Page(page) => {
            payload.push(page);
            Ok(Map::new())
        }
        Answer::Said(text) => {
            sink.stream(StreamName::Stdout, &text);
            Ok(Map::new())
        }
        Answer::Refused(message) => Err(CellError::Other { message }),
    };
    CellRun::without_running(result)
}

/// Runs `code` in the engine (waiting for it to start, if need be); after a cell that
/// worked, evaluates the request's user expressions into `user_expressions`.
fn run_in_engine(
    shell: &mut ShellHandlers,
    request: &mut Request,
    wanted: &ExecuteRequest,
    code: &str,
    sink: Arc<dyn OutputSink>,
    user_expressions: &mut Map<String, Value>,
) -> CellRun {
    let waiting_since = Instant::now();
    let timeline = shell.settings.timeline;
    let interrupter = shell.interrupter.clone();
    let engine = match shell.engine(sink.as_ref()) {
        Ok(engine) => engine,
        Err(unavailable) => {
            return CellRun::without_running(Err(CellError::Other {
                message: unavailable.evalue,
            }))
        }
    };
    let engine_wait = waiting_since.elapsed();
    engine.set_recording(timeline);
    let stdin = StdinBridge::new(request, wanted.allow_stdin, sink.clone(), interrupter);
    let mut run = engine.execute(code, sink, &|prompt, password| stdin.read(prompt, password));
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

/// Publishes what a finished cell shows (value, timeline, footer, error) unless the
/// request is silent; returns the error outcome if the cell failed.
fn show_result(
    request: &Request,
    output: &CellOutput,
    run: &CellRun,
    wanted: &ExecuteRequest,
    execution_count: u64,
    footer_on: bool,
) -> Option<ExecuteOutcome> {
    let mut failed = None;
    for shown in presentation::cell_result(run, footer_on) {
        match shown {
            Shown::Value(data) if !wanted.silent => request.publish(
                "execute_result",
                content::to_value(&ExecuteResult {
                    execution_count,
                    data,
                    metadata: Map::new(),
                }),
            ),
            Shown::EventLoop(bundle) => output.event_loop(bundle),
            Shown::UnderCell(bundle) if !wanted.silent => publish_kernel_display(request, bundle),
            Shown::Error(error) => {
                if !wanted.silent {
                    request.publish("error", content::to_value(&error));
                }
                failed = Some(ExecuteOutcome::Error(error));
            }
            Shown::Value(_) | Shown::UnderCell(_) => {}
        }
    }
    failed
}

/// Publishes what tandem adds under a cell (the timeline, the footer): a mime bundle and
/// its metadata, which marks the role.
fn publish_kernel_display(request: &Request, (data, metadata): timing::Bundle) {
    let display = DisplayData {
        data,
        metadata,
        transient: Map::new(),
    };
    request.publish("display_data", content::to_value(&display));
}

/// Evaluates one user expression after the cell: its value's mime bundle, or an error.
fn evaluate_expression(engine: &mut Engine, code: &str) -> ExpressionValue {
    let run = engine.execute(code, Arc::new(Discard), &|_, _| String::new());
    match run.result {
        Ok(data) => ExpressionValue::Ok {
            data,
            metadata: Map::new(),
        },
        Err(error) => ExpressionValue::Error(presentation::error_content(&error)),
    }
}
