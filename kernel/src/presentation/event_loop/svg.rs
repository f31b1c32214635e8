//! The event-loop picture's SVG: a lane per thread with the polls it ran, a row per task
//! and branch with its polls solid, its life hollow and the timers it waited on dashed;
//! bars less than a pixel apart merged.

use super::{Row, Totals, MOST_ROWS};
use crate::engine::{Poll, RuntimeTrace, Timer};
use crate::presentation::blocking;
use crate::presentation::runtime_names::task_name;
use std::fmt::Write;
use std::time::Duration;

const WIDTH: f64 = 720.0;
const LABEL: f64 = 210.0;
const ROW: f64 = 18.0;
/// The colour of its words: grey, which reads on light and dark themes alike.
const TEXT: &str = "#8a8a8a";
/// The colour of bars that stand for several tasks' polls.
const MANY: &str = "#9a9a9a";
/// Timers drawn per row (a loop that sleeps 10,000 times is drawn by its first ones).
const MOST_TIMERS: usize = 200;
const COLOURS: [&str; 6] = [
    "#4c78a8", "#f58518", "#54a24b", "#b279a2", "#e45756", "#72b7b2",
];

/// The picture of `trace`, as long as its `totals` say, with the `holdings` outlined in red.
pub(super) fn svg(
    trace: &RuntimeTrace,
    rows: &[Row],
    totals: &Totals,
    holdings: &[blocking::Holding],
) -> String {
    let end = totals.end;
    let scale = (WIDTH - LABEL - 10.0) / end.as_secs_f64();
    let x = |at: Duration| LABEL + at.as_secs_f64() * scale;
    let shown_rows = rows.len().min(MOST_ROWS + 1);
    let height = ROW * (trace.threads.len() + shown_rows) as f64 + 4.0 * ROW;
    let mut out = String::new();
    let _ = write!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" font-family="sans-serif" font-size="11" fill="{TEXT}">"#
    );
    let mut y = ROW;
    let _ = write!(
        out,
        r#"<text x="0" y="{}" font-weight="bold">threads</text>"#,
        y - 4.0
    );
    let pixel = Duration::from_secs_f64(1.0 / scale);
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
        let polls = trace.tasks.iter().enumerate().flat_map(|(index, task)| {
            let on_lane = task.polls.iter().filter(move |poll| poll.thread == lane);
            on_lane.map(move |poll| (poll, index))
        });
        for slice in merged(polls, pixel) {
            let (fill, title) = match slice.task {
                Some(index) => (colour(index), task_name(&trace.tasks[index])),
                None => (MANY, format!("{} polls of several tasks", slice.polls)),
            };
            let _ = write!(
                out,
                r#"<rect x="{:.1}" y="{}" width="{:.1}" height="{}" fill="{fill}"><title>{}: {:.3}–{:.3} s</title></rect>"#,
                x(slice.start),
                y + 3.0,
                (x(slice.end) - x(slice.start)).max(0.5),
                ROW - 6.0,
                escape(&title),
                slice.start.as_secs_f64(),
                slice.end.as_secs_f64()
            );
        }
        y += ROW;
    }
    y += ROW;
    let _ = write!(
        out,
        r#"<text x="0" y="{}" font-weight="bold">tasks</text>"#,
        y - 4.0
    );
    for row in rows.iter().take(MOST_ROWS) {
        let _ = write!(
            out,
            r#"<text x="8" y="{}">{}</text>"#,
            y + ROW - 5.0,
            escape(&row.label)
        );
        if let (Some(first), Some(last)) = (row.polls.first(), row.polls.last()) {
            let _ = write!(
                out,
                r#"<rect x="{:.1}" y="{}" width="{:.1}" height="{}" fill="none" stroke="{}"/>"#,
                x(first.start),
                y + 4.0,
                (x(last.end) - x(first.start)).max(0.5),
                ROW - 8.0,
                colour(row.colour)
            );
        }
        for timer in row.timers.iter().take(MOST_TIMERS) {
            // A timer due after the picture's end is drawn to its end.
            let clamp = |at: Duration| x(at.min(end));
            let _ = write!(
                out,
                "{}",
                timer_line(timer, row.polls, clamp, y + ROW / 2.0)
            );
        }
        let flagged = holdings
            .iter()
            .find(|holding| row.key == holding.row)
            .map_or(&[][..], |holding| holding.polls.as_slice());
        // Polls less than a pixel apart are one bar (a task that yields 100,000 times).
        for slice in merged(row.polls.iter().map(|poll| (poll, 0)), pixel) {
            // A poll that held the loop while others waited is outlined in red.
            let held = (flagged.iter()).any(|start| (slice.start..=slice.end).contains(start));
            let mark = if held {
                r#" stroke="red" stroke-width="2""#
            } else {
                ""
            };
            let _ = write!(
                out,
                r#"<rect x="{:.1}" y="{}" width="{:.1}" height="{}" fill="{}"{mark}/>"#,
                x(slice.start),
                y + 4.0,
                (x(slice.end) - x(slice.start)).max(0.5),
                ROW - 8.0,
                colour(row.colour)
            );
        }
        y += ROW;
    }
    if rows.len() > MOST_ROWS {
        // The rest, drawn together on one row: how busy they were, not who was.
        let rest = &rows[MOST_ROWS..];
        let _ = write!(
            out,
            r#"<text x="8" y="{}">… {} more rows, together</text>"#,
            y + ROW - 5.0,
            rest.len()
        );
        let polls = rest
            .iter()
            .flat_map(|row| row.polls.iter().map(|poll| (poll, 0)));
        for slice in merged(polls, pixel) {
            let _ = write!(
                out,
                r#"<rect x="{:.1}" y="{}" width="{:.1}" height="{}" fill="{MANY}"/>"#,
                x(slice.start),
                y + 4.0,
                (x(slice.end) - x(slice.start)).max(0.5),
                ROW - 8.0,
            );
        }
        y += ROW;
    }
    let _ = write!(
        out,
        r#"<text x="{LABEL}" y="{}">0 s</text><text x="{}" y="{}" text-anchor="end">{:.2} s</text><text x="0" y="{}">{}</text></svg>"#,
        y + ROW - 4.0,
        WIDTH - 10.0,
        y + ROW - 4.0,
        end.as_secs_f64(),
        y + 2.0 * ROW - 4.0,
        escape(&totals.line())
    );
    out
}

/// A timer as a dashed line at height `y`, from when it was set to when it fell due or the
/// row was polled again, whichever came first (woken sooner: a `timeout` that did not fire).
fn timer_line(timer: &Timer, polls: &[Poll], x: impl Fn(Duration) -> f64, y: f64) -> String {
    // The row's polls are in the order they started.
    let next = polls.get(polls.partition_point(|poll| poll.start <= timer.set));
    let end = next.map_or(timer.due, |next| next.start.min(timer.due));
    format!(
        r#"<line x1="{:.1}" x2="{:.1}" y1="{y}" y2="{y}" stroke="{TEXT}" stroke-dasharray="3 2"><title>{} {:.3} s, set at {:.3} s</title></line>"#,
        x(timer.set),
        x(end).max(x(timer.set) + 0.5),
        timer.kind.name(),
        timer.due.saturating_sub(timer.set).as_secs_f64(),
        timer.set.as_secs_f64()
    )
}

/// Polls drawn as one bar: those of one task (`task`, its index) or of several.
struct Slice {
    start: Duration,
    end: Duration,
    task: Option<usize>,
    polls: usize,
}

/// `polls` (with their task's index) as bars, merging those less than `pixel` apart: a
/// lane of 10,000 tasks' polls is a few hundred bars, not 20,000.
fn merged<'a>(polls: impl Iterator<Item = (&'a Poll, usize)>, pixel: Duration) -> Vec<Slice> {
    let mut polls: Vec<(&Poll, usize)> = polls.collect();
    polls.sort_by_key(|(poll, _)| poll.start);
    let mut slices: Vec<Slice> = Vec::new();
    for (poll, task) in polls {
        match slices.last_mut() {
            Some(last) if poll.start < last.end + pixel => {
                last.end = last.end.max(poll.end);
                last.polls += 1;
                if last.task != Some(task) {
                    last.task = None;
                }
            }
            _ => slices.push(Slice {
                start: poll.start,
                end: poll.end,
                task: Some(task),
                polls: 1,
            }),
        }
    }
    slices
}

fn colour(index: usize) -> &'static str {
    COLOURS[index % COLOURS.len()]
}

pub(super) fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}
