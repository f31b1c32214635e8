//! The event loop made visible: what tokio's runtime did while a cell ran, drawn from the
//! poll recorder's trace. A lane per thread shows which task held it when; a row per task
//! shows its polls solid and its waits hollow, on the cell's time axis in seconds.

use crate::engine::{RuntimeTrace, TaskTrace};
use crate::timing::Bundle;
use serde_json::{json, Map, Value};
use std::fmt::Write;
use std::time::Duration;

/// Marks the picture among a cell's outputs (`metadata.tandem.role`).
pub const EVENT_LOOP_ROLE: &str = "event-loop";

/// Tasks drawn one row each; the rest are counted under the picture.
const MOST_ROWS: usize = 12;
const WIDTH: f64 = 720.0;
const LABEL: f64 = 210.0;
const ROW: f64 = 18.0;
const COLOURS: [&str; 6] = [
    "#4c78a8", "#f58518", "#54a24b", "#b279a2", "#e45756", "#72b7b2",
];

/// The picture and its figures; `None` when no tokio task ran during the cell.
pub fn picture(trace: &RuntimeTrace) -> Option<Bundle> {
    if !trace.has_tasks() {
        return None;
    }
    let end = trace
        .tasks
        .iter()
        .flat_map(|task| task.polls.iter().map(|poll| poll.end))
        .max()
        .unwrap_or_default()
        .max(Duration::from_millis(1));
    let mut data = Map::new();
    let svg = svg(trace, end);
    data.insert(
        "text/html".into(),
        Value::String(format!("<div class=\"tandem-event-loop\">{svg}</div>")),
    );
    data.insert("image/svg+xml".into(), Value::String(svg));
    data.insert("text/plain".into(), Value::String(text(trace)));
    let tasks: Vec<Value> = trace
        .tasks
        .iter()
        .map(|task| {
            let mut threads: Vec<&str> = task
                .polls
                .iter()
                .map(|poll| trace.threads[poll.thread].as_str())
                .collect();
            threads.sort_unstable();
            threads.dedup();
            json!({
                "id": task.id,
                "name": name(task),
                "spawned_at": task.spawned_at,
                "polls": task.polls.len(),
                "busy_seconds": busy(task).as_secs_f64(),
                "first_poll": task.polls.first().map(|poll| poll.start.as_secs_f64()),
                "last_poll_end": task.polls.last().map(|poll| poll.end.as_secs_f64()),
                "threads": threads,
            })
        })
        .collect();
    let mut metadata = Map::new();
    metadata.insert(
        "tandem".into(),
        json!({
            "role": EVENT_LOOP_ROLE,
            "threads": trace.threads,
            "task_threads": trace.task_threads(),
            "tasks": tasks,
            "dropped_events": trace.dropped,
        }),
    );
    Some((data, metadata))
}

/// A task's label: the cell's own future, or the task and where it was spawned.
fn name(task: &TaskTrace) -> String {
    match (&task.spawned_at, task.id) {
        (_, 0) => "the cell's future".to_owned(),
        (Some(place), id) => format!("task {id} ({})", short_place(place)),
        (None, id) => format!("task {id}"),
    }
}

/// `line:column` of a spawn place in the cell's generated code, or the file's last part.
fn short_place(place: &str) -> String {
    let parts: Vec<&str> = place.rsplitn(3, ':').collect();
    match parts.as_slice() {
        [column, line, file] => {
            let file = file.rsplit('/').next().unwrap_or(file);
            format!("{file}:{line}:{column}")
        }
        _ => place.to_owned(),
    }
}

fn busy(task: &TaskTrace) -> Duration {
    task.polls
        .iter()
        .map(|poll| poll.end.saturating_sub(poll.start))
        .sum()
}

fn colour(index: usize) -> &'static str {
    COLOURS[index % COLOURS.len()]
}

fn svg(trace: &RuntimeTrace, end: Duration) -> String {
    let scale = (WIDTH - LABEL - 10.0) / end.as_secs_f64();
    let x = |at: Duration| LABEL + at.as_secs_f64() * scale;
    let rows = trace.tasks.len().min(MOST_ROWS);
    let height = ROW * (trace.threads.len() + rows) as f64 + 3.0 * ROW;
    let mut out = String::new();
    let _ = write!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" font-family="sans-serif" font-size="11">"#
    );
    let mut y = ROW;
    let _ = write!(
        out,
        r#"<text x="0" y="{}" font-weight="bold">threads</text>"#,
        y - 4.0
    );
    for (lane, thread) in trace.threads.iter().enumerate() {
        let _ = write!(
            out,
            r#"<text x="8" y="{}">{}</text><line x1="{LABEL}" x2="{}" y1="{}" y2="{}" stroke="silver"/>"#,
            y + ROW - 5.0,
            escape(thread),
            WIDTH - 10.0,
            y + ROW / 2.0,
            y + ROW / 2.0
        );
        for (index, task) in trace.tasks.iter().enumerate() {
            for poll in task.polls.iter().filter(|poll| poll.thread == lane) {
                let width = (x(poll.end) - x(poll.start)).max(0.5);
                let _ = write!(
                    out,
                    r#"<rect x="{:.1}" y="{}" width="{width:.1}" height="{}" fill="{}"><title>{}: {:.3}–{:.3} s</title></rect>"#,
                    x(poll.start),
                    y + 3.0,
                    ROW - 6.0,
                    colour(index),
                    escape(&name(task)),
                    poll.start.as_secs_f64(),
                    poll.end.as_secs_f64()
                );
            }
        }
        y += ROW;
    }
    y += ROW;
    let _ = write!(
        out,
        r#"<text x="0" y="{}" font-weight="bold">tasks</text>"#,
        y - 4.0
    );
    for (index, task) in trace.tasks.iter().take(MOST_ROWS).enumerate() {
        let _ = write!(
            out,
            r#"<text x="8" y="{}">{}</text>"#,
            y + ROW - 5.0,
            escape(&name(task))
        );
        if let (Some(first), Some(last)) = (task.polls.first(), task.polls.last()) {
            let _ = write!(
                out,
                r#"<rect x="{:.1}" y="{}" width="{:.1}" height="{}" fill="none" stroke="{}"/>"#,
                x(first.start),
                y + 4.0,
                (x(last.end) - x(first.start)).max(0.5),
                ROW - 8.0,
                colour(index)
            );
        }
        for poll in &task.polls {
            let _ = write!(
                out,
                r#"<rect x="{:.1}" y="{}" width="{:.1}" height="{}" fill="{}"/>"#,
                x(poll.start),
                y + 4.0,
                (x(poll.end) - x(poll.start)).max(0.5),
                ROW - 8.0,
                colour(index)
            );
        }
        y += ROW;
    }
    let _ = write!(
        out,
        r#"<text x="{LABEL}" y="{}">0 s</text><text x="{}" y="{}" text-anchor="end">{:.2} s</text></svg>"#,
        y + ROW - 4.0,
        WIDTH - 10.0,
        y + ROW - 4.0,
        end.as_secs_f64()
    );
    out
}

/// The figures in words, for terminals and `text/plain`.
fn text(trace: &RuntimeTrace) -> String {
    let polls: usize = trace.tasks.iter().map(|task| task.polls.len()).sum();
    let mut out = format!(
        "event loop: {} tasks, {polls} polls, on {} thread(s)\n",
        trace.tasks.len(),
        trace.threads.len()
    );
    for task in trace.tasks.iter().take(MOST_ROWS) {
        let mut threads: Vec<&str> = task
            .polls
            .iter()
            .map(|poll| trace.threads[poll.thread].as_str())
            .collect();
        threads.sort_unstable();
        threads.dedup();
        let _ = writeln!(
            out,
            "  {}: {} polls, busy {:.3} s, on {}",
            name(task),
            task.polls.len(),
            busy(task).as_secs_f64(),
            threads.join(", ")
        );
    }
    if trace.tasks.len() > MOST_ROWS {
        let _ = writeln!(out, "  … and {} more tasks", trace.tasks.len() - MOST_ROWS);
    }
    if trace.dropped > 0 {
        let _ = writeln!(
            out,
            "  ({} events past the recorder's limit were not kept)",
            trace.dropped
        );
    }
    out
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::Poll;

    fn task(id: u64, polls: &[(u64, u64, usize)]) -> TaskTrace {
        TaskTrace {
            id,
            spawned_at: Some("/tmp/x/src/lib.rs:12:5".into()),
            polls: polls
                .iter()
                .map(|&(start, end, thread)| Poll {
                    start: Duration::from_millis(start),
                    end: Duration::from_millis(end),
                    thread,
                })
                .collect(),
            ended: true,
        }
    }

    #[test]
    fn a_cell_with_tasks_gets_lanes_rows_and_figures_and_one_without_none() {
        let trace = RuntimeTrace {
            tasks: vec![
                task(0, &[(0, 1, 0)]),
                task(3, &[(1, 201, 1)]),
                task(4, &[(2, 202, 2)]),
            ],
            threads: vec!["cell thread".into(), "worker #2".into(), "worker #3".into()],
            dropped: 0,
        };
        let (data, metadata) = picture(&trace).expect("tasks ran");
        let svg = data["image/svg+xml"].as_str().unwrap();
        assert_eq!(
            svg.matches("<rect").count(),
            3 + 3 * 2,
            "a bar per poll per lane and row"
        );
        assert!(data["text/plain"]
            .as_str()
            .unwrap()
            .contains("task 3 (lib.rs:12:5)"));
        let figures = &metadata["tandem"];
        assert_eq!(figures["role"], EVENT_LOOP_ROLE);
        assert_eq!(figures["task_threads"], 2);
        let only_the_cell = RuntimeTrace {
            tasks: vec![task(0, &[(0, 5, 0)])],
            threads: vec!["cell thread".into()],
            dropped: 0,
        };
        assert!(picture(&only_the_cell).is_none());
    }
}
