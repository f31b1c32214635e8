//! Forwards what the running cell prints, as it prints it: stdout and stderr lines from
//! evcxr's channels become stream output (coalesced only while more is already waiting),
//! display markers become rich output, and panic reports are held for the cell's error.

mod batch;
mod pace;
mod panics;

use super::markers;
use super::trace::RuntimeTrace;
use batch::{Batch, Event};
use crossbeam_channel::{select, Receiver, Sender};
use pace::Pacer;
use panics::PanicScraper;
use serde_json::{Map, Value};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tandem_helpers::kernel_link::DisplayInPlace;
use tandem_helpers::spans::Span;

/// Which stream a piece of text was printed on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamName {
    Stdout,
    Stderr,
}

impl StreamName {
    pub fn as_str(self) -> &'static str {
        match self {
            StreamName::Stdout => "stdout",
            StreamName::Stderr => "stderr",
        }
    }
}

/// Where a cell's live output goes. The kernel implements it with iopub messages; its
/// `stream` and `display` may wait while a slow client has much output still to read (the
/// forwarder then takes no more lines, and the cell's process waits to print).
pub trait OutputSink: Send + Sync {
    fn stream(&self, name: StreamName, text: &str);
    fn display(&self, data: Map<String, Value>);
    /// A display with an `id`: shown anew, or (`update`) replacing what the id showed, in
    /// place. Sinks that cannot replace show it anew.
    fn display_in_place(&self, id: &str, data: Map<String, Value>, update: bool) {
        let _ = (id, update);
        self.display(data);
    }
    fn clear_output(&self, wait: bool);
    /// A one-line progress report that replaces the previous one of the same cell.
    fn progress(&self, _text: &str) {}
    /// What tokio's runtime did so far while the cell runs (a few times a second).
    fn runtime_so_far(&self, _trace: &RuntimeTrace) {}
}

/// Drops everything: for code the engine runs for itself.
pub struct Discard;

impl OutputSink for Discard {
    fn stream(&self, _: StreamName, _: &str) {}
    fn display(&self, _: Map<String, Value>) {}
    fn clear_output(&self, _: bool) {}
}

/// What the forwarder saw of the cell that just finished.
#[derive(Debug, Default)]
pub struct CellReport {
    /// The cell's own code panicked (evcxr caught it).
    pub panicked: bool,
    /// Panic reports from stderr (`thread '..' panicked at ..` and the message).
    pub panic_messages: Vec<String>,
    /// The helper tasks that finished during the cell, for its timeline.
    pub spans: Vec<Span>,
    /// Whether the cell's end was seen (its stderr sync marker), and whether the cell ran
    /// a future on the preloaded runtime then (a cell of items only runs none).
    pub synced: bool,
    pub ran_a_future: bool,
    /// std's last words when an allocation failed (`memory allocation of N bytes
    /// failed`), which the memory limit makes the cell's process end with.
    pub allocation_failure: Option<String>,
}

/// Upper bound of text merged into one stream message (iopub merges waiting messages up
/// to the same size, and sizes its queues by it).
pub(crate) const MAX_BATCH_BYTES: usize = 64 * 1024;
/// A cell that did not run (it failed to compile, or its process ended) leaves no stderr
/// sync marker; stderr lines may still be in flight from evcxr's reader thread.
const STDERR_GRACE: Duration = Duration::from_millis(3);
/// The longest a cell's end waits for its stderr (a thread the cell started may keep
/// writing forever; what comes later is forwarded as it arrives).
const FINISH_DEADLINE: Duration = Duration::from_secs(1);

type SharedSink = Arc<Mutex<Option<Arc<dyn OutputSink>>>>;

/// Handle to the forwarding thread.
pub struct Forwarder {
    sink: SharedSink,
    finish: Sender<(u64, Sender<CellReport>)>,
}

impl Forwarder {
    pub fn start(stdout: Receiver<String>, stderr: Receiver<String>) -> Forwarder {
        let sink: SharedSink = Arc::new(Mutex::new(None));
        let (finish, finish_rx) = crossbeam_channel::unbounded();
        let mut state = ForwardState {
            sink: sink.clone(),
            stdout,
            stderr,
            batch: Batch::default(),
            pace: Pacer::from_env(),
            panics: PanicScraper::default(),
            syncs_seen: 0,
            syncs_used: 0,
            report: CellReport::default(),
            line_continues: false,
        };
        let _ = std::thread::Builder::new()
            .name("cell-output".into())
            .spawn(move || state.run(finish_rx));
        Forwarder { sink, finish }
    }

    /// Output from now on belongs to `sink`.
    pub fn begin_cell(&self, sink: Arc<dyn OutputSink>) {
        if let Ok(mut current) = self.sink.lock() {
            *current = Some(sink);
        }
    }

    /// Waits until everything the cell printed has been forwarded; returns what was seen.
    /// `runs`: how many times code ran to its end since the last call (each time the child
    /// wrote a stderr sync marker); usually 1, or 0 for a cell that did not run.
    pub fn finish_cell(&self, runs: u64) -> CellReport {
        let (done_tx, done_rx) = crossbeam_channel::bounded(1);
        if self.finish.send((runs, done_tx)).is_err() {
            return CellReport::default();
        }
        done_rx.recv().unwrap_or_default()
    }
}

struct ForwardState {
    sink: SharedSink,
    stdout: Receiver<String>,
    stderr: Receiver<String>,
    /// What was read and not yet handed to the sink.
    batch: Batch,
    /// How fast printed text may go on to the sink.
    pace: Pacer,
    /// Panic reports taken out of stderr.
    panics: PanicScraper,
    /// Stderr sync markers received, and how many cell ends have accounted for.
    syncs_seen: u64,
    syncs_used: u64,
    report: CellReport,
    /// The next stdout line continues the last one (a piece of a line without end).
    line_continues: bool,
}

impl ForwardState {
    fn run(&mut self, finish: Receiver<(u64, Sender<CellReport>)>) {
        loop {
            select! {
                recv(self.stdout) -> line => match line {
                    Ok(line) => self.on_stdout(line),
                    Err(_) => return,
                },
                recv(self.stderr) -> line => match line {
                    Ok(line) => self.on_stderr(line),
                    Err(_) => return,
                },
                recv(finish) -> request => match request {
                    Ok((runs, done)) => {
                        self.drain_for_finish(runs);
                        let _ = done.send(std::mem::take(&mut self.report));
                        continue;
                    }
                    Err(_) => return,
                },
            }
            self.drain_ready();
            self.emit(true);
        }
    }

    /// Takes whatever is already queued, without waiting, up to the batch limit.
    fn drain_ready(&mut self) {
        while self.batch.bytes() < MAX_BATCH_BYTES {
            select! {
                recv(self.stdout) -> line => match line {
                    Ok(line) => self.on_stdout(line),
                    Err(_) => break,
                },
                recv(self.stderr) -> line => match line {
                    Ok(line) => self.on_stderr(line),
                    Err(_) => break,
                },
                default => break,
            }
        }
    }

    /// Forwards the rest of the cell's output: stdout is complete already (evcxr returns
    /// once its channel is empty), stderr once the cell's sync marker has come through.
    /// The deadline is for lines that do not come: until the marker comes, time spent
    /// while a slow client holds the output back (see `OutputSink`) does not count.
    fn drain_for_finish(&mut self, runs: u64) {
        let mut deadline = Instant::now() + FINISH_DEADLINE;
        let wanted_syncs = self.syncs_used + runs;
        loop {
            self.drain_ready();
            let emitting = Instant::now();
            self.emit(false);
            if self.syncs_seen < wanted_syncs {
                deadline += emitting.elapsed();
            }
            if !self.stdout.is_empty() || !self.stderr.is_empty() {
                if Instant::now() < deadline {
                    continue;
                }
                break;
            }
            let wait = if self.syncs_seen < wanted_syncs {
                deadline.saturating_duration_since(Instant::now())
            } else if runs > 0 {
                break; // the sync markers came: the cell's stderr is all here
            } else {
                STDERR_GRACE.min(deadline.saturating_duration_since(Instant::now()))
            };
            match self.stderr.recv_timeout(wait) {
                Ok(line) => self.on_stderr(line),
                Err(_) => break,
            }
        }
        if self.syncs_seen < wanted_syncs {
            log::debug!("a cell's stderr sync marker did not come in time");
        }
        // From here on only markers of later cells count: extra ones are absorbed, and a
        // missing one cannot make every later cell wait for it.
        self.syncs_used = self.syncs_seen;
        // A piece cut short by the cell's end continues nothing of the next cell's.
        self.line_continues = false;
        self.panics.end_of_cell(&mut self.batch);
        self.report.panic_messages = self.panics.take_messages();
        self.emit(false);
        self.pace.end_of_cell();
    }

    fn on_stdout(&mut self, line: String) {
        match markers::parse(&line) {
            Some((markers::PANIC, _)) => self.report.panicked = true,
            Some((markers::DISPLAY, payload)) => match serde_json::from_str(payload) {
                Ok(Value::Object(data)) => {
                    if let Some(wait) = markers::clear_output_request(&data) {
                        self.batch.push(Event::Clear(wait));
                    } else {
                        self.batch.push(Event::Display(data));
                    }
                }
                _ => log::warn!("unreadable display marker from the engine"),
            },
            Some((markers::DISPLAY_IN_PLACE, payload)) => {
                match serde_json::from_str::<DisplayInPlace>(payload) {
                    Ok(shown) => self.batch.push(Event::InPlace(shown)),
                    Err(_) => log::warn!("unreadable display-in-place marker from the engine"),
                }
            }
            Some((markers::SPAN, payload)) => match serde_json::from_str::<Span>(payload).ok() {
                Some(span) => self.report.spans.push(span),
                None => log::warn!("unreadable span marker from the engine"),
            },
            Some((markers::LINE_CONTINUES, _)) => self.line_continues = true,
            Some(_) => log::warn!("unknown marker from the engine: {line}"),
            None => {
                let ends_line = !std::mem::take(&mut self.line_continues);
                self.batch.push_piece(StreamName::Stdout, line, ends_line);
            }
        }
    }

    fn on_stderr(&mut self, line: String) {
        if line.starts_with("memory allocation of ") && line.ends_with(" failed") {
            self.report.allocation_failure = Some(line.clone());
        }
        if let Some((markers::STDERR_SYNC, ran)) = markers::parse(&line) {
            self.syncs_seen += 1;
            self.report.synced = true;
            self.report.ran_a_future |= ran == markers::RAN_A_FUTURE;
            return;
        }
        self.panics.take(line, &mut self.batch);
    }

    /// Hands the batch to the cell's sink; `paced`, first waiting as long as the pace asks.
    /// (What is left as the cell ends goes unpaced: at most evcxr's channels and a pipe,
    /// and a cell that was interrupted or ended must not hand it to the next cell.)
    fn emit(&mut self, paced: bool) {
        let sink = self.sink.lock().ok().and_then(|s| s.clone());
        let wait = self.pace.wait_before(self.batch.bytes(), Instant::now());
        if paced && !wait.is_zero() {
            if let (Some(sink), Some(notice)) = (sink.as_deref(), self.pace.notice()) {
                sink.stream(StreamName::Stderr, &format!("{notice}\n"));
            }
            std::thread::sleep(wait);
        }
        self.batch.send_to(sink.as_deref());
    }
}

#[cfg(test)]
mod tests;
