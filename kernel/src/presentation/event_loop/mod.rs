//! The event loop made visible: what tokio's runtime did while a cell ran, drawn from the
//! poll recorder's trace. A lane per thread shows which task held it when; a row per task
//! shows its polls solid and its waits hollow, on the cell's time axis in seconds.

mod svg;

use super::blocking::{self, Row as RowKey};
use super::runtime_names::task_name;
use crate::engine::{Poll, RuntimeTrace, TaskTrace, Timer};
use crate::timing::Bundle;
use serde_json::{json, Map, Value};
use std::fmt::Write;
use std::time::Duration;

/// Marks the picture among a cell's outputs (`metadata.tandem.role`).
pub const EVENT_LOOP_ROLE: &str = "event-loop";

/// Tasks drawn one row each; the rest are counted under the picture.
const MOST_ROWS: usize = 12;
/// Tasks whose figures the metadata lists (past this, it gives their number).
const MOST_LISTED: usize = 1000;
/// Timers listed in the metadata per task or branch (past this, their number).
const MOST_TIMERS: usize = 20;

/// The picture and its figures (`last`: the cell is over, and so is the picture); `None`
/// when no tokio task ran during the cell.
pub fn picture(trace: &RuntimeTrace, last: bool) -> Option<Bundle> {
    if !trace.has_tasks() {
        return None;
    }
    let end = trace
        .tasks
        .iter()
        .flat_map(|task| {
            let branches = task.branches.iter().flat_map(|branch| &branch.polls);
            task.polls.iter().chain(branches).map(|poll| poll.end)
        })
        .max()
        .unwrap_or_default()
        .max(Duration::from_millis(1));
    let holdings = blocking::held_the_loop(trace);
    let warnings: Vec<String> = holdings.iter().map(blocking::warning).collect();
    let mut data = Map::new();
    // Each row's label names its task: made once, for the drawing, the words and the totals.
    let rows = rows(trace);
    let totals = Totals::of(&rows, trace, end);
    let svg = svg::svg(trace, &rows, &totals, &holdings);
    let lines: String = warnings
        .iter()
        .map(|line| {
            format!(
                "<p class=\"tandem-held-the-loop\">{}</p>",
                svg::escape(line)
            )
        })
        .collect();
    data.insert(
        "text/html".into(),
        Value::String(format!(
            "<div class=\"tandem-event-loop\">{lines}{svg}</div>"
        )),
    );
    data.insert("image/svg+xml".into(), Value::String(svg));
    let mut plain: String = warnings.iter().map(|line| format!("{line}\n")).collect();
    plain.push_str(&text(trace, &rows, &totals));
    data.insert("text/plain".into(), Value::String(plain));
    let tasks: Vec<Value> = trace
        .tasks
        .iter()
        .take(MOST_LISTED)
        .map(|task| {
            let threads = thread_names(trace, &task.polls);
            json!({
                "id": task.id,
                "name": task_name(task),
                "spawned_at": task.spawned_at,
                "spawned": task.site.what,
                "cell_line": task.site.cell_line,
                "cancelled_at": task.cancelled.map(|at| at.as_secs_f64()),
                "timers": timers(&task.timers),
                "timers_total": task.timers.len(),
                "polls": task.polls.len(),
                "busy_seconds": busy(task).as_secs_f64(),
                "first_poll": task.polls.first().map(|poll| poll.start.as_secs_f64()),
                "last_poll_end": task.polls.last().map(|poll| poll.end.as_secs_f64()),
                "threads": threads,
                "branches": task.branches.iter().map(|branch| json!({
                    "name": branch.name,
                    "cell_line": branch.cell_line,
                    "cancelled_at": branch.cancelled.map(|at| at.as_secs_f64()),
                    "timers": timers(&branch.timers),
                    "timers_total": branch.timers.len(),
                    "polls": branch.polls.len(),
                    "busy_seconds": branch.polls.iter().map(poll_time).sum::<Duration>().as_secs_f64(),
                    "first_poll": branch.polls.first().map(|poll| poll.start.as_secs_f64()),
                    "last_poll_end": branch.polls.last().map(|poll| poll.end.as_secs_f64()),
                    "threads": thread_names(trace, &branch.polls),
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    let mut metadata = Map::new();
    metadata.insert(
        "tandem".into(),
        json!({
            "role": EVENT_LOOP_ROLE,
            "final": last,
            "threads": trace.threads,
            "task_threads": trace.task_threads(),
            "tasks": tasks,
            "tasks_total": trace.tasks.len(),
            "seconds": totals.end.as_secs_f64(),
            "busy_seconds": totals.busy.as_secs_f64(),
            "waited_seconds": totals.waited.as_secs_f64(),
            "dropped_events": trace.dropped,
            "held_the_loop": holdings.iter().map(|holding| json!({
                "name": holding.name,
                "kind": match holding.row {
                    RowKey::Task(_) => "task",
                    RowKey::Branch(_) => "branch",
                },
                "seconds": holding.held.as_secs_f64(),
                "waiting": holding.waiting,
            })).collect::<Vec<_>>(),
        }),
    );
    Some((data, metadata))
}

/// The first timers of a task or branch, for the metadata.
fn timers(timers: &[Timer]) -> Vec<Value> {
    (timers.iter().take(MOST_TIMERS))
        .map(|timer| {
            json!({
                "kind": timer.kind.name(),
                "set_at": timer.set.as_secs_f64(),
                "seconds": timer.due.saturating_sub(timer.set).as_secs_f64(),
            })
        })
        .collect()
}

/// "cancelled at" for a label, when it was.
fn cancelled(at: Option<Duration>) -> String {
    at.map_or(String::new(), |at| {
        format!(" ✗ cancelled {:.2} s", at.as_secs_f64())
    })
}

fn busy(task: &TaskTrace) -> Duration {
    task.polls.iter().map(poll_time).sum()
}

fn poll_time(poll: &Poll) -> Duration {
    poll.end.saturating_sub(poll.start)
}

/// The names of the threads `polls` ran on, each once.
fn thread_names<'a>(trace: &'a RuntimeTrace, polls: &[Poll]) -> Vec<&'a str> {
    let mut threads: Vec<&str> = polls
        .iter()
        .map(|poll| trace.threads[poll.thread].as_str())
        .collect();
    threads.sort_unstable();
    threads.dedup();
    threads
}

/// One row of the picture: a task, or a branch inside the task above it.
struct Row<'a> {
    label: String,
    polls: &'a [Poll],
    timers: &'a [Timer],
    colour: usize,
    key: RowKey,
}

/// Each task, followed by its branches, indented. Tasks spawned from one place (a loop)
/// are told apart by tokio's number.
fn rows(trace: &RuntimeTrace) -> Vec<Row<'_>> {
    let mut rows = Vec::new();
    let names: Vec<String> = trace.tasks.iter().map(task_name).collect();
    let mut seen = std::collections::HashMap::<&str, usize>::new();
    for name in &names {
        *seen.entry(name.as_str()).or_default() += 1;
    }
    for (index, task) in trace.tasks.iter().enumerate() {
        let name = &names[index];
        let label = match seen.get(name.as_str()) {
            Some(&count) if count > 1 && task.id != 0 => format!("{name} #{}", task.id),
            _ => name.clone(),
        };
        rows.push(Row {
            label: label + &cancelled(task.cancelled),
            polls: &task.polls,
            timers: &task.timers,
            colour: index,
            key: RowKey::Task(task.id),
        });
        for (at, branch) in task.branches.iter().enumerate() {
            rows.push(Row {
                label: format!("  └ {}{}", branch.name, cancelled(branch.cancelled)),
                polls: &branch.polls,
                timers: &branch.timers,
                colour: index + at + 1,
                key: RowKey::Branch(branch.id),
            });
        }
    }
    rows
}

/// The picture's totals: how long it covers, how long threads ran tasks, and how long
/// the tasks and branches (not the cell's own future) waited, summed.
pub(super) struct Totals {
    pub end: Duration,
    pub busy: Duration,
    pub waited: Duration,
}

impl Totals {
    fn of(rows: &[Row], trace: &RuntimeTrace, end: Duration) -> Totals {
        let busy = trace.tasks.iter().map(busy).sum();
        let waited = rows
            .iter()
            .filter(|row| row.key != RowKey::Task(0))
            .map(|row| match (row.polls.first(), row.polls.last()) {
                (Some(first), Some(last)) => {
                    let life = last.end.saturating_sub(first.start);
                    life.saturating_sub(row.polls.iter().map(poll_time).sum())
                }
                _ => Duration::ZERO,
            })
            .sum();
        Totals { end, busy, waited }
    }

    /// One line: `0.60 s · threads busy 0.40 s · waits summed 0.90 s`.
    pub(super) fn line(&self) -> String {
        format!(
            "{:.2} s · threads busy {:.2} s · tasks' and branches' waits summed {:.2} s",
            self.end.as_secs_f64(),
            self.busy.as_secs_f64(),
            self.waited.as_secs_f64()
        )
    }
}

/// `1 poll`, `2 polls`.
fn counted(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// The figures in words, for terminals and `text/plain`.
fn text(trace: &RuntimeTrace, rows: &[Row], totals: &Totals) -> String {
    let polls: usize = trace.tasks.iter().map(|task| task.polls.len()).sum();
    let mut out = format!(
        "event loop: {}, {}, on {}; {}\n",
        counted(trace.tasks.len(), "task", "tasks"),
        counted(polls, "poll", "polls"),
        counted(trace.threads.len(), "thread", "threads"),
        totals.line()
    );
    for row in rows.iter().take(MOST_ROWS) {
        let busy: Duration = row.polls.iter().map(poll_time).sum();
        let timers = match row.timers {
            [] => String::new(),
            [timer] => format!(
                ", waited on {} {:.2} s",
                timer.kind.name(),
                timer.due.saturating_sub(timer.set).as_secs_f64()
            ),
            many => format!(", set {} timers", many.len()),
        };
        let _ = writeln!(
            out,
            "  {}: {}, busy {:.3} s, on {}{timers}",
            row.label.trim_start(),
            counted(row.polls.len(), "poll", "polls"),
            busy.as_secs_f64(),
            thread_names(trace, row.polls).join(", ")
        );
    }
    if rows.len() > MOST_ROWS {
        let _ = writeln!(out, "  … and {} more rows", rows.len() - MOST_ROWS);
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

#[cfg(test)]
mod tests {
    use super::*;

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
            ..TaskTrace::default()
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
        let (data, metadata) = picture(&trace, true).expect("tasks ran");
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
        // Threads were busy 1 + 200 + 200 ms; one poll each, so nothing waited.
        assert!((figures["busy_seconds"].as_f64().unwrap() - 0.401).abs() < 1e-9);
        assert_eq!(figures["waited_seconds"], 0.0);
        assert!(svg.contains("threads busy 0.40 s"));
        let only_the_cell = RuntimeTrace {
            tasks: vec![task(0, &[(0, 5, 0)])],
            threads: vec!["cell thread".into()],
            dropped: 0,
        };
        assert!(picture(&only_the_cell, true).is_none());
    }

    #[test]
    fn ten_thousand_tasks_are_drawn_together_and_listed_in_part() {
        // 10,000 tasks of one 0.1 ms poll each, one after another on two workers.
        let mut tasks = vec![task(0, &[(0, 1, 0)])];
        for id in 1..=10_000u64 {
            let start = Duration::from_micros(id * 100);
            tasks.push(TaskTrace {
                polls: vec![Poll {
                    start,
                    end: start + Duration::from_micros(100),
                    thread: 1 + (id % 2) as usize,
                }],
                ..task(id, &[])
            });
        }
        let trace = RuntimeTrace {
            tasks,
            threads: vec!["cell thread".into(), "worker #2".into(), "worker #3".into()],
            dropped: 0,
        };
        let (data, metadata) = picture(&trace, true).expect("tasks ran");
        let svg = data["image/svg+xml"].as_str().unwrap();
        let bars = svg.matches("<rect").count();
        assert!(bars < 2_000, "{bars} bars for 10,000 tasks");
        assert!(svg.contains("9989 more rows, together"), "the rest is said");
        assert!(svg.contains("polls of several tasks"));
        let figures = &metadata["tandem"];
        assert_eq!(figures["tasks_total"], 10_001);
        assert_eq!(figures["tasks"].as_array().unwrap().len(), MOST_LISTED);
    }
}
