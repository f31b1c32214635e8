//! Panic reports taken out of a cell's stderr: std writes `thread '..' panicked at ..`,
//! the message and a `note: run with RUST_BACKTRACE` line; the message becomes the cell's
//! error instead of stderr output. Everything else on stderr passes through, in order.

use super::batch::Batch;
use super::StreamName;

#[derive(Default)]
pub(super) struct PanicScraper {
    /// The message of a report still being read.
    in_progress: Option<String>,
    /// Blank lines not yet passed on: std writes one before a panic report.
    held_blank_lines: usize,
    /// Reports read whole, for the cell's error.
    messages: Vec<String>,
}

impl PanicScraper {
    /// Takes one stderr line: part of a panic report, or output passed to `batch`.
    pub(super) fn take(&mut self, line: String, batch: &mut Batch) {
        if line.is_empty() && self.in_progress.is_none() {
            self.held_blank_lines += 1;
            return;
        }
        let is_panic_header = line.starts_with("thread '") && line.contains(" panicked at ");
        if is_panic_header {
            self.held_blank_lines = 0;
            if let Some(previous) = self.in_progress.take() {
                self.messages.push(previous);
            }
            self.in_progress = Some(String::new());
            return;
        }
        self.release_blank_lines(batch);
        if let Some(text) = self.in_progress.as_mut() {
            if line.starts_with("note: run with `RUST_BACKTRACE") {
                let done = std::mem::take(text);
                self.in_progress = None;
                self.messages.push(done);
            } else {
                if !text.is_empty() {
                    text.push('\n');
                }
                text.push_str(&line);
            }
            return;
        }
        batch.push_text(StreamName::Stderr, line);
    }

    /// The cell is over: a report still being read is complete, held lines are output.
    pub(super) fn end_of_cell(&mut self, batch: &mut Batch) {
        if let Some(text) = self.in_progress.take() {
            self.messages.push(text);
        }
        self.release_blank_lines(batch);
    }

    /// The reports read whole since the last call.
    pub(super) fn take_messages(&mut self) -> Vec<String> {
        std::mem::take(&mut self.messages)
    }

    fn release_blank_lines(&mut self, batch: &mut Batch) {
        for _ in 0..std::mem::take(&mut self.held_blank_lines) {
            batch.push_text(StreamName::Stderr, String::new());
        }
    }
}
