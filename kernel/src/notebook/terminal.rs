//! What `tandem run` shows in the terminal: cell headers, Markdown, mime bundles as text,
//! a progress line that rewrites itself, and the sink that prints a running cell's output
//! as it arrives while keeping it as nbformat outputs.

use super::Output;
use crate::engine::{OutputSink, StreamName};
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::io::{IsTerminal, Write};
use std::sync::Mutex;

pub(super) fn print_markdown(source: &str) {
    if !source.trim().is_empty() {
        println!("\n{}", source.trim_end());
    }
}

/// `In [n]:` and the cell's code, bold and dimmed on a terminal.
pub(super) fn print_header(number: u64, source: &str) {
    let (bold, dim, plain) = if std::io::stdout().is_terminal() {
        ("\x1b[1m", "\x1b[2m", "\x1b[0m")
    } else {
        ("", "", "")
    };
    println!("\n{bold}In [{number}]:{plain}");
    for line in source.trim_end().lines() {
        println!("  {dim}│{plain} {line}");
    }
    println!();
}

/// Prints what a terminal can show of a mime bundle: its plain text, else the source of
/// its Markdown or HTML.
pub(super) fn print_bundle(data: &Map<String, Value>) {
    let text = ["text/plain", "text/markdown", "text/html"]
        .iter()
        .find_map(|mime| data.get(*mime).and_then(Value::as_str));
    match text {
        Some(text) => println!("{}", text.trim_end()),
        None => {
            let kinds: Vec<&str> = data.keys().map(String::as_str).collect();
            println!("[{}]", kinds.join(", "));
        }
    }
}

/// A one-line status that rewrites itself on a terminal (and stays silent elsewhere).
#[derive(Default)]
pub(super) struct Progress {
    shown: Mutex<bool>,
}

impl Progress {
    pub(super) fn show(&self, text: &str) {
        let mut stderr = std::io::stderr();
        if !stderr.is_terminal() {
            return;
        }
        let _ = write!(stderr, "\r\x1b[K{text}");
        let _ = stderr.flush();
        if let Ok(mut shown) = self.shown.lock() {
            *shown = true;
        }
    }

    pub(super) fn end(&self) {
        if let Ok(mut shown) = self.shown.lock() {
            if std::mem::take(&mut *shown) {
                eprint!("\r\x1b[K");
            }
        }
    }
}

/// Prints a running cell's output as it arrives and keeps it as nbformat outputs.
#[derive(Default)]
pub(super) struct TerminalSink {
    pub(super) outputs: Mutex<Vec<Output>>,
    pub(super) progress: Progress,
    /// A `clear_output(wait)` takes effect at the next output.
    clear_pending: Mutex<bool>,
    /// Where each display with an id is kept among the outputs.
    display_ids: Mutex<HashMap<String, usize>>,
}

impl TerminalSink {
    fn keep(&self, output: Output) {
        let mut outputs = self.outputs.lock().unwrap_or_else(|p| p.into_inner());
        if std::mem::take(&mut *self.clear_pending.lock().unwrap_or_else(|p| p.into_inner())) {
            outputs.clear();
            lock(&self.display_ids).clear();
        }
        // Consecutive text on the same stream is one output, as Jupyter stores it.
        if let (
            Some(Output::Stream { name, text }),
            Output::Stream {
                name: new,
                text: more,
            },
        ) = (outputs.last_mut(), &output)
        {
            if name == new {
                text.push_str(more);
                return;
            }
        }
        outputs.push(output);
    }
}

impl OutputSink for TerminalSink {
    fn stream(&self, name: StreamName, text: &str) {
        self.progress.end();
        match name {
            StreamName::Stdout => {
                let mut stdout = std::io::stdout();
                let _ = stdout.write_all(text.as_bytes());
                let _ = stdout.flush();
            }
            StreamName::Stderr => {
                let _ = std::io::stderr().write_all(text.as_bytes());
            }
        }
        self.keep(Output::Stream {
            name: name.as_str(),
            text: text.to_owned(),
        });
    }

    fn display(&self, data: Map<String, Value>) {
        self.progress.end();
        print_bundle(&data);
        self.keep(Output::DisplayData {
            data,
            metadata: Map::new(),
        });
    }

    /// Printed again; the notebook keeps only the latest of what an id showed.
    fn display_in_place(&self, id: &str, data: Map<String, Value>, update: bool) {
        self.progress.end();
        print_bundle(&data);
        let shown = Output::DisplayData {
            data,
            metadata: Map::new(),
        };
        let kept_at = lock(&self.display_ids).get(id).copied();
        if let (true, Some(at)) = (update, kept_at) {
            if let Some(before) = lock(&self.outputs).get_mut(at) {
                *before = shown;
                return;
            }
        }
        self.keep(shown);
        let at = lock(&self.outputs).len().saturating_sub(1);
        lock(&self.display_ids).insert(id.to_owned(), at);
    }

    fn clear_output(&self, wait: bool) {
        self.progress.end();
        if wait {
            *self.clear_pending.lock().unwrap_or_else(|p| p.into_inner()) = true;
        } else {
            lock(&self.outputs).clear();
            lock(&self.display_ids).clear();
        }
    }

    fn progress(&self, text: &str) {
        self.progress.show(text);
    }
}

/// A lock that a panic elsewhere did not make unusable.
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_text_on_one_stream_is_merged_and_cleared_on_request() {
        let sink = TerminalSink::default();
        sink.keep(Output::Stream {
            name: "stdout",
            text: "a\n".into(),
        });
        sink.keep(Output::Stream {
            name: "stdout",
            text: "b\n".into(),
        });
        sink.keep(Output::Stream {
            name: "stderr",
            text: "c\n".into(),
        });
        let outputs = sink.outputs.lock().unwrap().clone();
        assert_eq!(outputs.len(), 2);
        assert_eq!(
            serde_json::to_value(&outputs[0]).unwrap(),
            serde_json::json!({"output_type": "stream", "name": "stdout", "text": "a\nb\n"})
        );
        sink.clear_output(true);
        sink.keep(Output::Stream {
            name: "stdout",
            text: "d\n".into(),
        });
        assert_eq!(sink.outputs.lock().unwrap().len(), 1);
    }
}
