//! The lessons' checks, one function per exercise: what each one asks of the run it looks
//! at, and the hint it gives otherwise. A check cell is one line, for example
//! `exercise::heartbeat_on_time(&exercise::previous_run()).show();`.

use super::{Verdict, RUN_THE_EXERCISE_FIRST};
use crate::spans::{Kind, Span, WORKER};
use crate::timeline::Timeline;
use std::fmt::Debug;
use std::time::Duration;

pub(super) fn secs(duration: Duration) -> f64 {
    duration.as_secs_f64()
}

/// The span of the task called `name`.
pub(super) fn task<'a>(run: &'a Timeline, name: &str) -> Option<&'a Span> {
    run.spans.iter().find(|span| span.name == name)
}

/// Whether all of `spans` were running at one moment (each started before any ended).
pub(super) fn all_at_once(spans: &[&Span]) -> bool {
    let last_start = spans.iter().map(|span| span.start).max();
    let first_end = spans.iter().map(|span| span.end).min();
    matches!((last_start, first_end), (Some(start), Some(end)) if start < end)
}

/// Exercise 1: a blocking task "fry eggs" of 0.25 s, after the toast.
pub fn breakfast(run: &Timeline) -> Verdict {
    let names: Vec<&str> = run.spans.iter().map(|span| span.name.as_str()).collect();
    let Some(eggs) = task(run, "fry eggs") else {
        return Verdict::not_yet(format!(
            "the check saw the tasks {names:?}: add blocking_task(\"fry eggs\", 0.25) and run the exercise cell again"
        ));
    };
    if names != ["boil the kettle", "make toast", "fry eggs"] {
        return Verdict::not_yet(format!(
            "the tasks ran in the order {names:?}: the eggs come after the toast, last"
        ));
    }
    if eggs.kind != Kind::Blocking {
        return Verdict::not_yet(
            "the eggs must be a blocking task, like the others: blocking_task(..)",
        );
    }
    let took = secs(eggs.duration());
    if !(0.2..0.4).contains(&took) {
        return Verdict::not_yet(format!(
            "frying the eggs took {took:.2} s: make it wait 0.25 s"
        ));
    }
    Verdict::pass(format!(
        "three tasks, {:.2} s in total: one after another",
        secs(run.total())
    ))
}

/// Exercise 2: the prediction kept by `run_after_predicting` (the first one given, before
/// the tasks ran) against the run time, within 0.1 s.
pub fn predicted(run: &Timeline) -> Verdict {
    prediction_against(run, super::kept_prediction())
}

/// [`predicted`], with the prediction given.
pub fn prediction_against(run: &Timeline, prediction: Option<f64>) -> Verdict {
    let Some(prediction) = prediction else {
        return Verdict::not_yet(
            "no prediction yet: write your guess in my_prediction (in seconds), then run the exercise cell",
        );
    };
    if task(run, "render page").is_none() {
        return Verdict::not_yet(RUN_THE_EXERCISE_FIRST);
    }
    let took = secs(run.total());
    if (prediction - took).abs() < 0.1 {
        Verdict::pass(format!(
            "you predicted {prediction:.2} s and it took {took:.2} s: blocking waits add up"
        ))
    } else {
        Verdict::not_yet(format!(
            "you predicted {prediction:.2} s but it took {took:.2} s. Blocking tasks run one after another: add up their waits"
        ))
    }
}

/// Exercise 3: the three fetches all waiting at once, the total about the longest wait.
pub fn fetches_together(run: &Timeline) -> Verdict {
    let fetches: Vec<&Span> = run
        .spans
        .iter()
        .filter(|span| span.name.starts_with("fetch "))
        .collect();
    if fetches.len() != 3 {
        return Verdict::not_yet(RUN_THE_EXERCISE_FIRST);
    }
    let (total, sum) = (secs(run.total()), secs(run.sum()));
    let longest = fetches
        .iter()
        .map(|span| span.duration())
        .max()
        .unwrap_or_default();
    if all_at_once(&fetches) && total < 1.2 * secs(longest) {
        return Verdict::pass(format!(
            "the fetches overlapped: {total:.2} s in total for {sum:.2} s of waiting"
        ));
    }
    Verdict::not_yet(format!(
        "{total:.2} s in total for {sum:.2} s of waiting: not all three waited at once. Pass all three futures to tokio::join!(..) or gather(vec![..]).await"
    ))
}

/// Exercise 4: the heartbeat on time while the legacy report runs at the same time, on a
/// thread that is not one of the runtime's workers (`spawn_blocking`, or a thread of its own).
pub fn heartbeat_on_time(run: &Timeline) -> Verdict {
    let (Some(report), Some(heartbeat)) = (task(run, "legacy report"), task(run, "heartbeat"))
    else {
        return Verdict::not_yet(RUN_THE_EXERCISE_FIRST);
    };
    let start = run
        .spans
        .iter()
        .map(|span| span.start)
        .min()
        .unwrap_or_default();
    let beat = secs(heartbeat.end.saturating_sub(start));
    if beat >= 0.5 {
        return Verdict::not_yet(format!(
            "the heartbeat finished at {beat:.2} s, not 0.25 s: the legacy report held the thread. Run it with spawn_blocking(legacy_report)"
        ));
    }
    if report.start >= heartbeat.end {
        return Verdict::not_yet(
            "the heartbeat was on time, but the report only started after it: they must run at the same time (tokio::join! the report and the heartbeat)",
        );
    }
    if report.thread.starts_with("main #") {
        return Verdict::not_yet(
            "the heartbeat was on time, but the report blocked the cell's own thread, which runs the cell's future: it only worked because the heartbeat ran elsewhere. Blocking code belongs on tokio's blocking pool: spawn_blocking(legacy_report)",
        );
    }
    if report.thread.starts_with(WORKER) {
        return Verdict::not_yet(format!(
            "the report ran on one of the runtime's workers ({}): it held that worker for a second, and every task waiting for it waited too. Blocking code belongs on tokio's blocking pool: spawn_blocking(legacy_report)",
            report.thread
        ));
    }
    Verdict::pass(format!(
        "the heartbeat finished at {beat:.2} s, on time, while the report ran on {}",
        report.thread
    ))
}

/// Exercise 5: the two batches computing at once, on two threads (faster on two cores).
pub fn batches_in_parallel(run: &Timeline, cores: usize) -> Verdict {
    let batches: Vec<&Span> = run
        .spans
        .iter()
        .filter(|span| span.name.starts_with("batch "))
        .collect();
    if batches.len() != 2 {
        return Verdict::not_yet(RUN_THE_EXERCISE_FIRST);
    }
    let speedup = secs(run.sum()) / secs(run.total()).max(1e-9);
    let threads = run.threads();
    if threads == 2 && all_at_once(&batches) && (cores < 2 || speedup > 1.4) {
        return Verdict::pass(format!(
            "two threads computed at once: {speedup:.1}× faster than one after another"
        ));
    }
    Verdict::not_yet(format!(
        "the batches ran on {threads} thread(s), {speedup:.1}× faster than one after another. Give each batch its own thread: std::thread::scope(|s| {{ s.spawn(..); .. }}), or spawn_blocking"
    ))
}

/// Exercise 6: the user, the orders and the score all fetched at once.
pub fn requests_together(run: &Timeline) -> Verdict {
    let requests: Vec<&Span> = run.spans.iter().collect();
    let ran = run
        .spans
        .iter()
        .any(|span| span.name.contains("/users/7/orders"));
    if !ran || requests.len() != 3 {
        return Verdict::not_yet(RUN_THE_EXERCISE_FIRST);
    }
    let (total, sum) = (secs(run.total()), secs(run.sum()));
    if all_at_once(&requests) && total < 0.7 * sum {
        return Verdict::pass(format!(
            "all three at once: {total:.2} s instead of {sum:.2} s"
        ));
    }
    Verdict::not_yet(format!(
        "{total:.2} s for {sum:.2} s of waiting: not all three requests were under way at once. Use http_get_async and query_async, and await all three together with tokio::join!(..)"
    ))
}

/// Exercise 7: 20 requests in flight at once (the server saw at least 15 together), on
/// one thread.
pub fn all_in_flight(run: &Timeline, peak_concurrent: usize) -> Verdict {
    let pages = (run.spans.iter())
        .filter(|span| span.name.starts_with("GET /pages/"))
        .count();
    if pages == 20 && run.threads() == 1 && peak_concurrent >= 15 {
        return Verdict::pass(format!(
            "one thread had {peak_concurrent} requests in flight at once, done in {:.2} s",
            secs(run.total())
        ));
    }
    Verdict::not_yet(format!(
        "the server saw at most {peak_concurrent} request(s) at a time, from {} thread(s). Build all 20 futures first and await them together: run_on_one_thread(gather((0..20).map(..)))",
        run.threads()
    ))
}

/// The six jobs of exercise 8, what suits each, and why.
const JOBS: [(&str, &str, &str); 6] = [
    (
        "resize 10,000 photos",
        "Sync",
        "CPU-bound: computing, not waiting; use threads",
    ),
    (
        "call three payment APIs",
        "Async",
        "I/O-bound: three waits that can overlap",
    ),
    (
        "chat server, 5,000 connections",
        "Async",
        "many connections on few threads",
    ),
    (
        "rename files in a folder",
        "Sync",
        "a simple script; straightforward flow wins",
    ),
    ("crawl 500 pages", "Async", "I/O-bound: web scraping"),
    (
        "encrypt a 10 GB file",
        "Sync",
        "CPU-bound: heavy computation",
    ),
];

/// Exercise 8: a pick (`Pick::Sync` or `Pick::Async`) for each of the six jobs.
pub fn sync_or_async(picks: &[impl Debug]) -> Verdict {
    let picks: Vec<String> = picks.iter().map(|pick| format!("{pick:?}")).collect();
    let wrong: Vec<String> = (JOBS.iter().zip(&picks))
        .filter(|((_, right, _), pick)| pick.as_str() != *right)
        .map(|((job, _, why), pick)| format!("{job} ({pick}? think: {why})"))
        .collect();
    if picks.len() == JOBS.len() && wrong.is_empty() {
        return Verdict::pass("all six picks match what the measurements say");
    }
    if picks.len() != JOBS.len() {
        return Verdict::not_yet(format!(
            "{} picks for {} jobs: give one pick for each job, in order",
            picks.len(),
            JOBS.len()
        ));
    }
    Verdict::not_yet(format!(
        "{} of {} to rethink: {}",
        wrong.len(),
        JOBS.len(),
        wrong.join("; ")
    ))
}

mod tasks_and_limits;
pub use tasks_and_limits::*;

#[cfg(test)]
mod tests;
