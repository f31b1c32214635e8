//! Cells' runtime traces as Chrome's trace-event JSON, which Perfetto and chrome://tracing
//! open: a process per cell, a track per thread with each poll, each task's life as a slice.

use super::runtime_names::task_name;
use crate::engine::{Poll, RuntimeTrace};
use serde::Serialize;
use std::time::Duration;

/// One record of the trace-event format (the fields it defines; times in microseconds).
#[derive(Serialize)]
struct TraceEvent {
    name: String,
    /// `X` a complete slice, `b`/`e` an async slice's begin and end, `M` metadata.
    ph: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    cat: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ts: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    dur: Option<f64>,
    pid: u32,
    tid: usize,
    /// An async slice's id (the task's).
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<u64>,
    #[serde(skip_serializing_if = "serde_json::Map::is_empty")]
    args: serde_json::Map<String, serde_json::Value>,
}

#[derive(Serialize)]
struct TraceFile {
    #[serde(rename = "traceEvents")]
    trace_events: Vec<TraceEvent>,
    #[serde(rename = "displayTimeUnit")]
    display_time_unit: &'static str,
}

/// The traces of `cells` (each named, say `cell [3]`), as the JSON text of a trace-event
/// file; each cell's times start at its first poll.
pub fn chrome_trace(cells: &[(String, &RuntimeTrace)]) -> String {
    let mut out = Vec::new();
    for (pid, (name, trace)) in (1..).zip(cells) {
        out.push(metadata("process_name", name, pid, 0));
        cell_events(trace, pid, &mut out);
    }
    let file = TraceFile {
        trace_events: out,
        display_time_unit: "ms",
    };
    serde_json::to_string(&file).unwrap_or_default()
}

/// A name for a process or thread track.
fn metadata(what: &str, name: &str, pid: u32, tid: usize) -> TraceEvent {
    let mut args = serde_json::Map::new();
    args.insert("name".into(), name.into());
    TraceEvent {
        name: what.into(),
        ph: "M",
        cat: None,
        ts: None,
        dur: None,
        pid,
        tid,
        id: None,
        args,
    }
}

fn cell_events(trace: &RuntimeTrace, pid: u32, out: &mut Vec<TraceEvent>) {
    for (tid, thread) in trace.threads.iter().enumerate() {
        out.push(metadata("thread_name", thread, pid, tid));
    }
    for task in &trace.tasks {
        let name = task_name(task);
        for poll in &task.polls {
            out.push(slice(&name, "poll", (pid, poll), serde_json::Map::new()));
        }
        for branch in &task.branches {
            for poll in &branch.polls {
                let mut args = serde_json::Map::new();
                args.insert("task".into(), name.clone().into());
                out.push(slice(&branch.name, "branch poll", (pid, poll), args));
            }
            if let Some(at) = branch.cancelled {
                let thread = branch.polls.last().map_or(0, |poll| poll.thread);
                out.push(TraceEvent {
                    name: format!("{} cancelled", branch.name),
                    ph: "i",
                    cat: Some("cancelled"),
                    ts: Some(micros(at)),
                    dur: None,
                    pid,
                    tid: thread,
                    id: None,
                    args: serde_json::Map::new(),
                });
            }
        }
        if let (Some(first), Some(last)) = (task.polls.first(), task.polls.last()) {
            let mut args = serde_json::Map::new();
            if let Some(place) = &task.spawned_at {
                args.insert("spawned_at".into(), place.clone().into());
            }
            for (ph, at, args) in [
                ("b", first.start, args),
                ("e", last.end, Default::default()),
            ] {
                out.push(TraceEvent {
                    name: name.clone(),
                    ph,
                    cat: Some("task"),
                    ts: Some(micros(at)),
                    dur: None,
                    pid,
                    tid: first.thread,
                    id: Some(task.id),
                    args,
                });
            }
        }
    }
}

/// One poll, on its thread's track.
fn slice(
    name: &str,
    cat: &'static str,
    (pid, poll): (u32, &Poll),
    args: serde_json::Map<String, serde_json::Value>,
) -> TraceEvent {
    TraceEvent {
        name: name.to_owned(),
        ph: "X",
        cat: Some(cat),
        ts: Some(micros(poll.start)),
        dur: Some(micros(poll.end.saturating_sub(poll.start))),
        pid,
        tid: poll.thread,
        id: None,
        args,
    }
}

fn micros(at: Duration) -> f64 {
    at.as_secs_f64() * 1e6
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{BranchTrace, TaskTrace};
    use serde_json::Value;

    #[test]
    fn each_poll_is_a_slice_on_its_threads_track_and_each_task_a_life() {
        let poll = |start: u64, end: u64, thread| Poll {
            start: Duration::from_millis(start),
            end: Duration::from_millis(end),
            thread,
        };
        let trace = RuntimeTrace {
            tasks: vec![
                TaskTrace {
                    id: 0,
                    spawned_at: None,
                    polls: vec![poll(0, 2, 0)],
                    ended: true,
                    branches: vec![BranchTrace {
                        id: 1,
                        name: "fetch(\"a\")".into(),
                        polls: vec![poll(0, 1, 0)],
                        ..BranchTrace::default()
                    }],
                    ..TaskTrace::default()
                },
                TaskTrace {
                    id: 7,
                    spawned_at: Some("src/lib.rs:3:9".into()),
                    polls: vec![poll(1, 3, 1), poll(5, 6, 1)],
                    ended: true,
                    ..TaskTrace::default()
                },
            ],
            threads: vec!["cell thread".into(), "tokio-runtime-worker #2".into()],
            dropped: 0,
        };
        let file = chrome_trace(&[("cell [1]".into(), &trace)]);
        let file: Value = serde_json::from_str(&file).unwrap();
        let events = file["traceEvents"].as_array().unwrap();
        let of = |ph: &'static str| events.iter().filter(move |e| e["ph"] == ph);
        let names: Vec<&Value> = of("M").map(|e| &e["args"]["name"]).collect();
        assert_eq!(
            names,
            ["cell [1]", "cell thread", "tokio-runtime-worker #2"]
        );
        let slices: Vec<(f64, f64, u64)> = of("X")
            .map(|e| {
                let (ts, dur) = (e["ts"].as_f64().unwrap(), e["dur"].as_f64().unwrap());
                (ts, dur, e["tid"].as_u64().unwrap())
            })
            .collect();
        assert_eq!(slices.len(), 4);
        assert!(slices.contains(&(5000.0, 1000.0, 1)), "{slices:?}");
        let branch = of("X").find(|e| e["cat"] == "branch poll").unwrap();
        assert_eq!(branch["name"], "fetch(\"a\")");
        let life: Vec<(&Value, f64)> = of("b")
            .chain(of("e"))
            .filter(|e| e["id"] == 7)
            .map(|e| (&e["ph"], e["ts"].as_f64().unwrap()))
            .collect();
        assert_eq!(
            life,
            [(&Value::from("b"), 1000.0), (&Value::from("e"), 6000.0)]
        );
    }
}
