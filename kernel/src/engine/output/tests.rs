//! The forwarder's tests: displays in place, late stderr and sync markers at a cell's end,
//! panic reports and span markers, through a sink that records what it is handed.

use super::*;

#[derive(Default)]
struct Recording(Mutex<Vec<(StreamName, String)>>, Mutex<Vec<(String, bool)>>);

impl OutputSink for Recording {
    fn stream(&self, name: StreamName, text: &str) {
        self.0.lock().unwrap().push((name, text.to_owned()));
    }
    fn display(&self, _: Map<String, Value>) {}
    fn clear_output(&self, _: bool) {}
    fn display_in_place(&self, id: &str, _: Map<String, Value>, update: bool) {
        self.1.lock().unwrap().push((id.to_owned(), update));
    }
}

#[test]
fn displays_in_place_keep_their_id_and_forged_ones_stay_text() {
    let (out_tx, err_tx, forwarder) = forwarder();
    let sink = Arc::new(Recording::default());
    forwarder.begin_cell(sink.clone());
    let shown = r#"{"id":"d1","update":false,"data":{"text/plain":"0"}}"#;
    let changed = r#"{"id":"d1","update":true,"data":{"text/plain":"1"}}"#;
    out_tx
        .send(markers::line(markers::DISPLAY_IN_PLACE, shown))
        .unwrap();
    out_tx
        .send(markers::line(markers::DISPLAY_IN_PLACE, changed))
        .unwrap();
    let forged = format!("\u{1f}TANDEM-0 display-in-place {changed}");
    out_tx.send(forged.clone()).unwrap();
    err_tx.send(sync()).unwrap();
    forwarder.finish_cell(1);
    let in_place = sink.1.lock().unwrap().clone();
    assert_eq!(
        in_place,
        [("d1".to_owned(), false), ("d1".to_owned(), true)]
    );
    let seen = sink.0.lock().unwrap().clone();
    assert_eq!(seen, [(StreamName::Stdout, forged + "\n")]);
}

/// A forwarder fed by test channels: (stdout sender, stderr sender, forwarder).
fn forwarder() -> (Sender<String>, Sender<String>, Forwarder) {
    let (out_tx, out_rx) = crossbeam_channel::unbounded();
    let (err_tx, err_rx) = crossbeam_channel::unbounded();
    (out_tx, err_tx, Forwarder::start(out_rx, err_rx))
}

fn sync() -> String {
    markers::line(markers::STDERR_SYNC, "")
}

/// A cell end that has its sync marker must not wait for the deadline.
fn assert_prompt(started: Instant) {
    assert!(
        started.elapsed() < FINISH_DEADLINE / 2,
        "cell end waited {:?}",
        started.elapsed()
    );
}

#[test]
fn cell_end_waits_for_late_stderr_until_its_sync_marker() {
    let (out_tx, err_tx, forwarder) = forwarder();
    let sink = Arc::new(Recording::default());
    forwarder.begin_cell(sink.clone());
    out_tx.send("out".to_owned()).unwrap();
    let late = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(100));
        err_tx.send("late".to_owned()).unwrap();
        err_tx.send(sync()).unwrap();
        err_tx
    });
    let started = Instant::now();
    forwarder.finish_cell(1);
    assert_prompt(started);
    let seen = sink.0.lock().unwrap().clone();
    assert_eq!(
        seen,
        vec![
            (StreamName::Stdout, "out\n".to_owned()),
            (StreamName::Stderr, "late\n".to_owned())
        ]
    );
    drop(late.join());
}

#[test]
fn startup_markers_do_not_shift_later_cells() {
    let (_out_tx, err_tx, forwarder) = forwarder();
    // Warm-up and prelude each left a marker before the forwarder existed.
    err_tx.send(sync()).unwrap();
    err_tx.send(sync()).unwrap();
    forwarder.finish_cell(2);
    for _ in 0..3 {
        err_tx.send(sync()).unwrap();
        let started = Instant::now();
        forwarder.finish_cell(1);
        assert_prompt(started);
    }
    // A cell that did not run has no marker and does not wait for one.
    let started = Instant::now();
    forwarder.finish_cell(0);
    assert_prompt(started);
}

#[test]
fn a_lost_marker_costs_one_deadline_not_every_cell() {
    let (_out_tx, err_tx, forwarder) = forwarder();
    forwarder.finish_cell(1); // its marker never comes
    err_tx.send(sync()).unwrap();
    let started = Instant::now();
    forwarder.finish_cell(1);
    assert_prompt(started);
}

#[test]
fn panic_reports_are_held_for_the_cell() {
    let (out_tx, err_tx, forwarder) = forwarder();
    let sink = Arc::new(Recording::default());
    forwarder.begin_cell(sink.clone());
    for line in [
        "",
        "thread '<unnamed>' (9981) panicked at src/lib.rs:3:1:",
        "boom 42",
        "note: run with `RUST_BACKTRACE=1` environment variable to display a backtrace",
    ] {
        err_tx.send(line.to_owned()).unwrap();
    }
    out_tx.send(markers::line(markers::PANIC, "")).unwrap();
    err_tx.send(sync()).unwrap();
    let report = forwarder.finish_cell(1);
    assert!(report.panicked);
    assert_eq!(report.panic_messages, vec!["boom 42".to_owned()]);
    assert!(
        sink.0.lock().unwrap().is_empty(),
        "the report is not stderr output"
    );
}

#[test]
fn span_markers_are_taken_out_of_the_output_into_the_report() {
    let (out_tx, err_tx, forwarder) = forwarder();
    let sink = Arc::new(Recording::default());
    forwarder.begin_cell(sink.clone());
    let span = r#"{"name":"A","kind":"async","thread":"main","start":{"secs":0,"nanos":0},"end":{"secs":1,"nanos":0}}"#;
    out_tx.send("before".to_owned()).unwrap();
    out_tx.send(markers::line(markers::SPAN, span)).unwrap();
    out_tx
        .send(markers::line(markers::SPAN, "{broken"))
        .unwrap();
    err_tx.send(sync()).unwrap();
    let report = forwarder.finish_cell(1);
    assert_eq!(report.spans.len(), 1, "the broken one is dropped");
    assert_eq!(report.spans[0].name, "A");
    assert_eq!(report.spans[0].end, Duration::from_secs(1));
    let seen = sink.0.lock().unwrap().clone();
    assert_eq!(seen, vec![(StreamName::Stdout, "before\n".to_owned())]);
    // The next cell starts with no spans.
    err_tx.send(sync()).unwrap();
    assert!(forwarder.finish_cell(1).spans.is_empty());
}
