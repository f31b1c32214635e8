//! Each check's verdicts on the runs its exercise's answers make, drawn as spans: the
//! stub, the solution, wrong answers a learner might try, and correct alternatives.

use super::*;

/// A span: name, kind, thread, start and end in seconds.
pub(super) fn span(name: &str, kind: Kind, thread: &str, start: f64, end: f64) -> Span {
    Span {
        name: name.into(),
        kind,
        thread: thread.into(),
        start: Duration::from_secs_f64(start),
        end: Duration::from_secs_f64(end),
        task: None,
    }
}

pub(super) fn run(spans: Vec<Span>) -> Timeline {
    Timeline::new(spans)
}

const CELL: &str = "main #1";

#[test]
fn breakfast_wants_the_eggs_last_blocking_and_a_quarter_second() {
    let kettle = span("boil the kettle", Kind::Blocking, CELL, 0.0, 0.5);
    let toast = span("make toast", Kind::Blocking, CELL, 0.5, 0.75);
    let eggs = |kind, start: f64, took: f64| span("fry eggs", kind, CELL, start, start + took);
    let stub = run(vec![kettle.clone(), toast.clone()]);
    assert!(!breakfast(&stub).passed);
    let solution = run(vec![
        kettle.clone(),
        toast.clone(),
        eggs(Kind::Blocking, 0.75, 0.25),
    ]);
    assert!(breakfast(&solution).passed, "{:?}", breakfast(&solution));
    let first = run(vec![
        eggs(Kind::Blocking, 0.0, 0.25),
        kettle.clone(),
        toast.clone(),
    ]);
    assert!(breakfast(&first).said.contains("after the toast"));
    let long = run(vec![
        kettle.clone(),
        toast.clone(),
        eggs(Kind::Blocking, 0.75, 1.0),
    ]);
    assert!(breakfast(&long).said.contains("0.25 s"));
    let not_blocking = run(vec![kettle, toast, eggs(Kind::Async, 0.75, 0.25)]);
    assert!(breakfast(&not_blocking).said.contains("blocking task"));
}

#[test]
fn a_prediction_passes_within_a_tenth_of_a_second() {
    // (A changed guess is kept out by `run_after_predicting`: tested through the kernel.)
    let tasks = run(vec![
        span("read config", Kind::Blocking, CELL, 0.0, 0.25),
        span("query users", Kind::Blocking, CELL, 0.25, 0.75),
        span("render page", Kind::Blocking, CELL, 0.75, 1.0),
    ]);
    let said = prediction_against(&tasks, None).said;
    assert!(said.starts_with("no prediction yet"), "the stub: {said}");
    assert!(prediction_against(&tasks, Some(1.0)).passed);
    assert!(
        !prediction_against(&tasks, Some(0.5)).passed,
        "the longest wait, as if async"
    );
    assert!(
        !prediction_against(&tasks, Some(1.0 / 3.0)).passed,
        "the average"
    );
    assert!(
        !prediction_against(&run(vec![]), Some(1.0)).passed,
        "nothing ran"
    );
}

#[test]
fn fetches_must_all_wait_at_once() {
    let fetch =
        |name: &str, start: f64, took: f64| span(name, Kind::Async, CELL, start, start + took);
    let stub = run(vec![
        fetch("fetch A", 0.0, 1.0),
        fetch("fetch B", 1.0, 0.5),
        fetch("fetch C", 1.5, 0.25),
    ]);
    assert!(!fetches_together(&stub).passed);
    let joined = run(vec![
        fetch("fetch A", 0.0, 1.0),
        fetch("fetch B", 0.0, 0.5),
        fetch("fetch C", 0.0, 0.25),
    ]);
    assert!(fetches_together(&joined).passed);
    // Two joined, the third after them: overlapped, but not all at once.
    let two = run(vec![
        fetch("fetch A", 0.0, 1.0),
        fetch("fetch B", 0.0, 0.5),
        fetch("fetch C", 1.0, 0.25),
    ]);
    assert!(!fetches_together(&two).passed);
    // The short two first, then the long one alone.
    let short_first = run(vec![
        fetch("fetch C", 0.0, 0.25),
        fetch("fetch B", 0.0, 0.5),
        fetch("fetch A", 0.5, 1.0),
    ]);
    assert!(!fetches_together(&short_first).passed);
    // Spawned tasks, a moment apart on workers: a correct alternative.
    let spawned = run(vec![
        span("fetch A", Kind::Async, "tokio worker #5", 0.001, 1.001),
        span("fetch B", Kind::Async, "tokio worker #6", 0.002, 0.502),
        span("fetch C", Kind::Async, "tokio worker #5", 0.002, 0.252),
    ]);
    assert!(fetches_together(&spawned).passed);
}

#[test]
fn the_heartbeat_is_on_time_only_with_the_report_off_the_workers_at_the_same_time() {
    let beat = |start: f64| span("heartbeat", Kind::Async, CELL, start, start + 0.25);
    let report = |thread: &str, start: f64| {
        span("legacy report", Kind::Blocking, thread, start, start + 1.0)
    };
    // The stub: the report holds the cell's thread first.
    let stub = run(vec![report(CELL, 0.0), beat(1.0)]);
    assert!(heartbeat_on_time(&stub).said.contains("held the thread"));
    let solution = run(vec![report("tokio blocking pool #9", 0.0), beat(0.0)]);
    assert!(
        heartbeat_on_time(&solution).passed,
        "{:?}",
        heartbeat_on_time(&solution)
    );
    // No concurrency at all: the heartbeat first, then the report.
    let one_after_the_other = run(vec![beat(0.0), report(CELL, 0.25)]);
    assert!(heartbeat_on_time(&one_after_the_other)
        .said
        .contains("only started after it"));
    // tokio::spawn(async { legacy_report() }): on time, but it held a worker.
    let on_a_worker = run(vec![report("tokio worker #4", 0.0), beat(0.0)]);
    assert!(heartbeat_on_time(&on_a_worker)
        .said
        .contains("runtime's workers"));
    // The heartbeat spawned, the report on the cell's own thread: the pitfall itself.
    let heartbeat_away = run(vec![
        report("main #1", 0.0),
        span("heartbeat", Kind::Async, "tokio worker #3", 0.0, 0.25),
    ]);
    assert!(heartbeat_on_time(&heartbeat_away)
        .said
        .contains("cell's own thread"));
    // A thread of its own (std::thread::spawn): also correct.
    let own_thread = run(vec![report("thread #12", 0.0), beat(0.0)]);
    assert!(heartbeat_on_time(&own_thread).passed);
}

#[test]
fn batches_must_compute_at_once_on_two_threads() {
    let batch =
        |name: &str, thread: &str, start: f64| span(name, Kind::Cpu, thread, start, start + 0.5);
    let stub = run(vec![
        batch("batch 1", CELL, 0.0),
        batch("batch 2", CELL, 0.5),
    ]);
    assert!(!batches_in_parallel(&stub, 2).passed);
    let scoped = run(vec![
        batch("batch 1", "thread #7", 0.0),
        batch("batch 2", "thread #8", 0.0),
    ]);
    assert!(batches_in_parallel(&scoped, 2).passed);
    // gather of two async blocks: one thread, one after the other.
    let gathered = run(vec![
        batch("batch 1", CELL, 0.0),
        batch("batch 2", CELL, 0.5),
    ]);
    assert!(batches_in_parallel(&gathered, 2)
        .said
        .contains("1 thread(s)"));
    // Two threads, but one joined before the other started.
    let joined_early = run(vec![
        batch("batch 1", "thread #7", 0.0),
        batch("batch 2", "thread #8", 0.5),
    ]);
    assert!(!batches_in_parallel(&joined_early, 2).passed);
    // spawn_blocking twice: two threads of the pool (which share a name, not a number).
    let pool = run(vec![
        batch("batch 1", "tokio blocking pool #10", 0.0),
        batch("batch 2", "tokio blocking pool #11", 0.01),
    ]);
    assert!(batches_in_parallel(&pool, 2).passed);
    // On one core two threads take turns: overlapping is enough there.
    let one_core = run(vec![
        span("batch 1", Kind::Cpu, "thread #7", 0.0, 1.0),
        span("batch 2", Kind::Cpu, "thread #8", 0.0, 1.0),
    ]);
    assert!(batches_in_parallel(&one_core, 1).passed);
    // Two threads that barely overlapped: no faster, which two cores would have made.
    let barely = run(vec![
        batch("batch 1", "thread #7", 0.0),
        batch("batch 2", "thread #8", 0.45),
    ]);
    assert!(
        batches_in_parallel(&barely, 1).passed,
        "on one core, taking turns is all"
    );
    assert!(
        !batches_in_parallel(&barely, 2).passed,
        "no faster on two cores"
    );
}

#[test]
fn all_three_requests_must_be_under_way_at_once() {
    let get = |path: &str, start: f64, took: f64| {
        span(
            &format!("GET {path}"),
            Kind::Async,
            CELL,
            start,
            start + took,
        )
    };
    let query = |start: f64| {
        span(
            "SELECT sleep(0.4), score",
            Kind::Async,
            CELL,
            start,
            start + 0.4,
        )
    };
    let stub = run(vec![
        get("/users/7.json", 0.0, 0.3),
        get("/users/7/orders.json", 0.3, 0.3),
        query(0.6),
    ]);
    assert!(!requests_together(&stub).passed);
    let solution = run(vec![
        get("/users/7.json", 0.0, 0.3),
        get("/users/7/orders.json", 0.0, 0.3),
        query(0.0),
    ]);
    assert!(requests_together(&solution).passed);
    // Two together, the query after them.
    let two = run(vec![
        get("/users/7.json", 0.0, 0.3),
        get("/users/7/orders.json", 0.0, 0.3),
        query(0.3),
    ]);
    assert!(!requests_together(&two).passed);
    // The user first, then the other two together.
    let user_first = run(vec![
        get("/users/7.json", 0.0, 0.3),
        get("/users/7/orders.json", 0.3, 0.3),
        query(0.3),
    ]);
    assert!(!requests_together(&user_first).passed);
}

#[test]
fn twenty_requests_in_flight_on_one_thread() {
    let pages = |thread: &dyn Fn(usize) -> String, apart: f64| {
        run((0..20)
            .map(|i| {
                span(
                    &format!("GET /pages/{i}"),
                    Kind::Async,
                    &thread(i),
                    i as f64 * apart,
                    i as f64 * apart + 0.1,
                )
            })
            .collect())
    };
    let one = |_| "event-loop #3".to_owned();
    assert!(
        !all_in_flight(&pages(&one, 0.1), 1).passed,
        "the stub: one at a time"
    );
    assert!(all_in_flight(&pages(&one, 0.0), 20).passed);
    assert!(
        !all_in_flight(&pages(&one, 0.0), 10).passed,
        "two batches of ten"
    );
    let threads = |i: usize| format!("thread #{i}");
    assert!(
        !all_in_flight(&pages(&threads, 0.0), 20).passed,
        "a thread per request"
    );
}

#[test]
fn each_job_has_its_pick() {
    #[derive(Debug)]
    enum Pick {
        Sync,
        Async,
        Undecided,
    }
    use Pick::*;
    assert!(
        !sync_or_async(&[Undecided, Undecided, Undecided, Undecided, Undecided, Undecided]).passed
    );
    assert!(sync_or_async(&[Sync, Async, Async, Sync, Async, Sync]).passed);
    let all_async = sync_or_async(&[Async, Async, Async, Async, Async, Async]);
    assert!(all_async.said.starts_with("3 of 6"), "{all_async:?}");
    assert!(
        !sync_or_async(&[Sync, Async, Async, Sync, Async]).passed,
        "one missing"
    );
}
