//! The checks of notebooks 9 to 11, where the learner's own tasks, limits and fixes are
//! judged: downloads in spawned tasks, a crawl held to 3, the dashboard's hidden blocker.

use super::{all_at_once, secs, task, Verdict, RUN_THE_EXERCISE_FIRST};
use crate::spans::{Kind, Span, WORKER};
use crate::timeline::Timeline;

/// Exercise 9: the three downloads in three spawned tasks of their own, all at once.
pub fn downloads_spawned(run: &Timeline) -> Verdict {
    let downloads: Vec<&Span> = (run.spans.iter())
        .filter(|span| span.name.starts_with("download "))
        .collect();
    if downloads.is_empty() {
        return Verdict::not_yet(RUN_THE_EXERCISE_FIRST);
    }
    if downloads.len() != 3 {
        return Verdict::not_yet(format!(
            "the check saw {} downloads: download each of the three pages once",
            downloads.len()
        ));
    }
    if downloads.iter().any(|span| span.kind != Kind::Async) {
        return Verdict::not_yet(
            "keep each download the async wait it is (async_task): the exercise is about giving each one a task with tokio::spawn",
        );
    }
    let (total, sum) = (secs(run.total()), secs(run.sum()));
    let together = all_at_once(&downloads);
    let mut tasks: Vec<u64> = downloads.iter().filter_map(|span| span.task).collect();
    tasks.sort_unstable();
    tasks.dedup();
    if tasks.len() != 3 {
        let how = match (tasks.len(), together) {
            (0, true) => "they overlapped, but inside the cell's own future (join! or gather interleave futures in one task)",
            (0, false) => "they ran one after another, inside the cell's own future",
            (_, _) => "some of them shared a task",
        };
        return Verdict::not_yet(format!(
            "{how}: give each download a task of its own with tokio::spawn(..), and await the handles"
        ));
    }
    if !together || total >= 0.7 * sum {
        return Verdict::not_yet(format!(
            "three tasks, but {total:.2} s for {sum:.2} s of downloads: they did not all wait at once. Spawn all three first, then await the handles (awaiting each one right after spawning it waits for it before the next starts)"
        ));
    }
    Verdict::pass(format!(
        "three tasks, all at once: {total:.2} s for {sum:.2} s of downloads"
    ))
}

/// Exercise 10: the 12 pages fetched with at most 3 requests in flight at once (the server
/// saw `peak_concurrent` together), and 3 at a time rather than fewer.
pub fn at_most_three(run: &Timeline, peak_concurrent: usize) -> Verdict {
    let mut pages: Vec<&str> = (run.spans.iter())
        .filter(|span| span.name.starts_with("GET /pages/"))
        .map(|span| span.name.as_str())
        .collect();
    pages.sort_unstable();
    pages.dedup();
    if pages.is_empty() {
        return Verdict::not_yet(RUN_THE_EXERCISE_FIRST);
    }
    if pages.len() != 12 {
        return Verdict::not_yet(format!(
            "{} different pages were fetched: fetch all 12, each once",
            pages.len()
        ));
    }
    let (total, sum) = (secs(run.total()), secs(run.sum()));
    if peak_concurrent == 0 {
        return Verdict::not_yet(
            "the exercise's server saw no request: fetch the 12 pages from it (polite.url(..)), not from another",
        );
    }
    if peak_concurrent > 3 {
        return Verdict::not_yet(format!(
            "the server saw {peak_concurrent} requests at once: at most 3 may be in flight. Take a permit of a tokio::sync::Semaphore::new(3) before each request, and keep it (`let _permit = ...`; `let _ = ...` drops it at once) until the request is done"
        ));
    }
    if total >= 0.45 * sum {
        return Verdict::not_yet(format!(
            "at most {peak_concurrent} at once, {total:.2} s for {sum:.2} s of requests: too few at a time. Up to 3 may wait together"
        ));
    }
    Verdict::pass(format!(
        "never more than {peak_concurrent} at once, 12 pages in {total:.2} s (one after another: {sum:.2} s)"
    ))
}

/// The parts exercise 11's dashboard loads, each a helper task.
const DASHBOARD: [&str; 4] = [
    "profile of user 7",
    "feed page 1",
    "feed page 2",
    "ads lookup 7",
];

/// Exercise 11: the dashboard's parts all loaded, the ads lookup no longer blocking a
/// thread the other parts needed (nor a runtime worker), and the whole about as long as
/// its slowest part.
pub fn dashboard_fast(run: &Timeline) -> Verdict {
    if DASHBOARD.iter().all(|part| task(run, part).is_none()) {
        return Verdict::not_yet(RUN_THE_EXERCISE_FIRST);
    }
    let missing: Vec<&str> = (DASHBOARD.iter().copied())
        .filter(|part| task(run, part).is_none())
        .collect();
    let Some(lookup) = task(run, "ads lookup 7").filter(|_| missing.is_empty()) else {
        return Verdict::not_yet(format!(
            "the dashboard must still load every part: {missing:?} did not (a fix keeps the work, and changes how it waits)"
        ));
    };
    let (total, slowest) = (
        secs(run.total()),
        run.spans.iter().map(Span::duration).max(),
    );
    let slowest = secs(slowest.unwrap_or_default());
    // A blocking lookup on the thread that polls the async parts kept them from starting
    // or going on, whether they had started yet or not.
    let held_others =
        (run.spans.iter()).any(|other| other.kind == Kind::Async && other.thread == lookup.thread);
    if lookup.kind == Kind::Blocking && held_others {
        return Verdict::not_yet(format!(
            "the dashboard took {total:.2} s, its slowest part {slowest:.2} s: one part blocked the thread the others were waiting on. The event-loop picture's ⚠ line names it; notebook 4 has two fixes"
        ));
    }
    if lookup.kind == Kind::Blocking && lookup.thread.starts_with(WORKER) {
        return Verdict::not_yet(format!(
            "the ads lookup still blocks, now on one of the runtime's workers ({}), which every task waiting for it waits on too. Blocking code belongs on tokio's blocking pool: spawn_blocking",
            lookup.thread
        ));
    }
    if total >= 1.25 * slowest {
        return Verdict::not_yet(format!(
            "the dashboard took {total:.2} s, its slowest part {slowest:.2} s: its parts do not all load at once (keep them in one tokio::join!)"
        ));
    }
    Verdict::pass(format!(
        "the dashboard loads in {total:.2} s, its slowest part's time, with the ads lookup on {}",
        lookup.thread
    ))
}

#[cfg(test)]
mod tests {
    use super::super::tests::{run, span};
    use super::*;

    #[test]
    fn three_downloads_in_three_tasks_at_once() {
        // (task, start) for each of the three 0.3 s downloads.
        let downloads = |how: [(Option<u64>, f64); 3]| {
            run((how.iter().zip(["/news", "/weather", "/sport"]))
                .map(|(&(task, start), page)| Span {
                    task,
                    ..span(
                        &format!("download {page}"),
                        Kind::Async,
                        "tokio worker #2",
                        start,
                        start + 0.3,
                    )
                })
                .collect())
        };
        let stub = downloads([(None, 0.0), (None, 0.3), (None, 0.6)]);
        assert!(downloads_spawned(&stub).said.contains("one after another"));
        let solution = downloads([(Some(7), 0.0), (Some(8), 0.0), (Some(9), 0.01)]);
        assert!(
            downloads_spawned(&solution).passed,
            "{:?}",
            downloads_spawned(&solution)
        );
        let joined = downloads([(None, 0.0), (None, 0.0), (None, 0.0)]);
        assert!(downloads_spawned(&joined)
            .said
            .contains("inside the cell's own future"));
        let one_task = downloads([(Some(7), 0.0), (Some(7), 0.0), (Some(7), 0.0)]);
        assert!(downloads_spawned(&one_task).said.contains("shared a task"));
        let awaited_each = downloads([(Some(7), 0.0), (Some(8), 0.3), (Some(9), 0.6)]);
        assert!(downloads_spawned(&awaited_each)
            .said
            .contains("Spawn all three first"));
        let blocking = run(
            (downloads([(Some(7), 0.0), (Some(8), 0.0), (Some(9), 0.0)]).spans)
                .into_iter()
                .map(|span| Span {
                    kind: Kind::Blocking,
                    ..span
                })
                .collect(),
        );
        assert!(downloads_spawned(&blocking)
            .said
            .contains("keep each download"));
        let two =
            run(downloads([(Some(7), 0.0), (Some(8), 0.0), (Some(9), 0.0)]).spans[..2].to_vec());
        assert!(downloads_spawned(&two).said.contains("saw 2 downloads"));
        let forgotten = downloads_spawned(&run(vec![]));
        assert!(
            forgotten.said.contains("await what you spawn"),
            "{forgotten:?}"
        );
    }

    #[test]
    fn twelve_pages_at_most_three_at_a_time() {
        // Twelve 0.2 s requests, `at_once` of them at a time.
        let crawl = |at_once: usize| {
            run((0..12)
                .map(|i| {
                    let start = (i / at_once) as f64 * 0.2;
                    span(
                        &format!("GET /pages/{i}"),
                        Kind::Async,
                        "tokio worker #2",
                        start,
                        start + 0.2,
                    )
                })
                .collect())
        };
        let stub = at_most_three(&crawl(12), 12);
        assert!(stub.said.contains("12 requests at once"), "{stub:?}");
        assert!(
            at_most_three(&crawl(3), 3).passed,
            "{:?}",
            at_most_three(&crawl(3), 3)
        );
        assert!(stub.said.contains("`let _ = ...` drops it"), "{stub:?}");
        let elsewhere = at_most_three(&crawl(12), 0);
        assert!(elsewhere.said.contains("saw no request"), "{elsewhere:?}");
        assert!(at_most_three(&crawl(2), 2)
            .said
            .contains("too few at a time"));
        assert!(at_most_three(&crawl(1), 1)
            .said
            .contains("too few at a time"));
        let eleven = run(crawl(3).spans[1..].to_vec());
        assert!(at_most_three(&eleven, 3)
            .said
            .contains("11 different pages"));
        let twice = run(crawl(3)
            .spans
            .iter()
            .chain(&crawl(3).spans[..1])
            .cloned()
            .collect());
        assert!(
            at_most_three(&twice, 3).passed,
            "a page fetched again is one page"
        );
        assert_eq!(at_most_three(&run(vec![]), 0).said, RUN_THE_EXERCISE_FIRST);
    }

    #[test]
    fn the_dashboard_loads_in_its_slowest_parts_time_without_blocking_the_others() {
        const CELL: &str = "main #1";
        // The lookup's kind, thread and start; the other parts start at `others`.
        let dashboard = |kind, thread: &str, lookup_at: f64, others: f64| {
            run(vec![
                span("ads lookup 7", kind, thread, lookup_at, lookup_at + 0.4),
                span("profile of user 7", Kind::Async, CELL, others, others + 0.2),
                span("feed page 1", Kind::Async, CELL, others, others + 0.15),
                span(
                    "feed page 2",
                    Kind::Async,
                    CELL,
                    others + 0.15,
                    others + 0.3,
                ),
            ])
        };
        let stub = dashboard_fast(&dashboard(Kind::Blocking, CELL, 0.0, 0.4));
        assert!(stub.said.contains("⚠ line names it"), "{stub:?}");
        let last_in_join = dashboard_fast(&dashboard(Kind::Blocking, CELL, 0.0, 0.0));
        assert!(
            last_in_join.said.contains("⚠ line names it"),
            "{last_in_join:?}"
        );
        let pool = dashboard(Kind::Blocking, "tokio blocking pool #9", 0.0, 0.0);
        assert!(dashboard_fast(&pool).passed, "{:?}", dashboard_fast(&pool));
        assert!(dashboard_fast(&dashboard(Kind::Async, CELL, 0.0, 0.0)).passed);
        let worker = dashboard_fast(&dashboard(Kind::Blocking, "tokio worker #3", 0.0, 0.0));
        assert!(worker.said.contains("runtime's workers"), "{worker:?}");
        let one_by_one = dashboard_fast(&dashboard(Kind::Async, CELL, 0.0, 0.4));
        assert!(
            one_by_one.said.contains("do not all load at once"),
            "{one_by_one:?}"
        );
        let no_ads = run(dashboard(Kind::Async, CELL, 0.0, 0.0).spans[1..].to_vec());
        assert!(dashboard_fast(&no_ads).said.contains("ads lookup 7"));
        assert_eq!(dashboard_fast(&run(vec![])).said, RUN_THE_EXERCISE_FIRST);
    }
}
