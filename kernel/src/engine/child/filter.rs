//! Runs inside the evcxr child process (where user code runs), between the code's stdout
//! and the kernel: evcxr mime blocks printed mid-cell become live `display` markers,
//! panics are flagged, and everything else passes through line by line without delay.

use crate::engine::markers;
use serde_json::{Map, Value};
use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::os::fd::AsRawFd;
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

/// A mime block followed this closely by the end of the cell is the cell's value: evcxr
/// prints the final expression that way, just before the cell returns.
const FINAL_VALUE_WINDOW: Duration = Duration::from_millis(25);

/// The longest piece of a line passed on at once. A line without end (a cell that
/// `print!`s 500 MB and no newline) would otherwise be held whole, here and in the
/// kernel: longer lines go on in pieces, each after a `line-continues` marker. (Inside an
/// evcxr mime block lines stay whole: a block is one value, an image's base64 say.)
const MAX_PIECE: usize = 64 * 1024;

/// What one read from the cell's stdout gave.
enum Read {
    /// A whole line (or the last one, unterminated, before the end).
    Line,
    /// The first `MAX_PIECE` bytes of a longer line (whole characters).
    Piece,
    End,
}

/// Reads up to the next newline into `line`, or `cap` bytes of a longer line.
fn read_line_or_piece(reader: &mut impl BufRead, line: &mut Vec<u8>, cap: usize) -> Read {
    loop {
        let buffer = match reader.fill_buf() {
            Ok(buffer) => buffer,
            Err(error) if error.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => {
                return if line.is_empty() {
                    Read::End
                } else {
                    Read::Line
                }
            }
        };
        if buffer.is_empty() {
            return if line.is_empty() {
                Read::End
            } else {
                Read::Line
            };
        }
        let room = cap.saturating_sub(line.len()).max(1);
        let window = &buffer[..buffer.len().min(room)];
        if let Some(at) = window.iter().position(|&byte| byte == b'\n') {
            line.extend_from_slice(&window[..=at]);
            reader.consume(at + 1);
            return Read::Line;
        }
        let taken = window.len();
        line.extend_from_slice(window);
        reader.consume(taken);
        if line.len() >= cap {
            return Read::Piece;
        }
    }
}

/// How much of `bytes` is whole UTF-8 characters: a character cut at the end of a piece
/// waits for the rest of its bytes (invalid bytes elsewhere are passed on as they are).
fn whole_characters(bytes: &[u8]) -> usize {
    match std::str::from_utf8(bytes) {
        Ok(_) => bytes.len(),
        Err(error) if error.error_len().is_none() => error.valid_up_to(),
        Err(_) => bytes.len(),
    }
}

/// Where in `piece` a protocol line may begin that the piece cuts short: the bytes from
/// there wait for the rest of the line, so that evcxr still sees the line whole (its
/// `EVCXR_EXECUTION_COMPLETE` ends the cell). Returns how much can go on now.
fn unfinished_protocol_line(piece: &[u8]) -> usize {
    let longest = PROTOCOL_LINES
        .iter()
        .map(|line| line.len())
        .max()
        .unwrap_or(0);
    let cut = (piece.len().saturating_sub(longest)..piece.len()).find(|&start| {
        let tail = &piece[start..];
        PROTOCOL_LINES
            .iter()
            .any(|line| line.as_bytes().starts_with(tail))
    });
    cut.unwrap_or(piece.len())
}

/// evcxr's protocol lines, which must start a line to be understood.
const PROTOCOL_LINES: [&str; 4] = [
    markers::EVCXR_COMPLETE,
    markers::EVCXR_PANIC,
    markers::EVCXR_BEGIN,
    "EVCXR_INPUT_REQUEST",
];

/// Set when the filter has forwarded everything (its input closed).
static FILTER_DONE: (Mutex<bool>, Condvar) = (Mutex::new(false), Condvar::new());

/// Redirects this process's stdout through the filter. Call before `evcxr::runtime_hook`,
/// only in the child process. On failure stdout is left as it was.
pub fn install() {
    let Some(stdout) = super::pipes::interpose(1) else {
        return;
    };
    let spawned = std::thread::Builder::new()
        .name("tandem-stdout".into())
        .spawn(move || {
            Filter::new(stdout.original).run(stdout.ours);
            let (done, signal) = &FILTER_DONE;
            if let Ok(mut done) = done.lock() {
                *done = true;
                signal.notify_all();
            }
        });
    if spawned.is_ok() {
        // SAFETY: registers a plain `extern "C" fn` to run at exit.
        unsafe { libc::atexit(drain_at_exit) };
    }
}

/// At exit (`std::process::exit` in a cell, say), lines already printed are still in the
/// pipe: close our end and give the filter a moment to pass them on.
extern "C" fn drain_at_exit() {
    // SAFETY: closing fd 1 at exit; nothing writes to it afterwards.
    unsafe { libc::close(1) };
    let (done, signal) = &FILTER_DONE;
    if let Ok(guard) = done.lock() {
        let _ = signal.wait_timeout_while(guard, Duration::from_millis(500), |done| !*done);
    }
}

struct Block {
    mime: String,
    body: Vec<String>,
}

impl Block {
    /// The block as evcxr's child would have printed it.
    fn raw_lines(&self) -> impl Iterator<Item = String> + '_ {
        std::iter::once(format!("{}{}", markers::EVCXR_BEGIN, self.mime))
            .chain(self.body.iter().cloned())
            .chain(std::iter::once(markers::EVCXR_END.to_owned()))
    }

    fn value(&self) -> Value {
        markers::mime_value(&self.mime, self.body.join("\n"))
    }
}

/// One `display` marker for blocks printed back to back: one bundle, several mime types.
fn display_marker(blocks: &[Block]) -> String {
    let data: Map<String, Value> = blocks
        .iter()
        .map(|block| (block.mime.clone(), block.value()))
        .collect();
    markers::line(markers::DISPLAY, &Value::Object(data).to_string())
}

struct Filter {
    output: std::io::BufWriter<File>,
    open_block: Option<Block>,
    // Finished blocks printed back to back wait here briefly: if the cell ends right after
    // them, they are the cell's value and evcxr must see them as printed.
    held: Vec<Block>,
    held_since: Instant,
    /// The cell futures run by the end of the last cell (`CellState::futures_run`).
    futures_run: u64,
}

impl Filter {
    fn new(output: File) -> Filter {
        Filter {
            output: std::io::BufWriter::with_capacity(64 * 1024, output),
            open_block: None,
            held: Vec::new(),
            held_since: Instant::now(),
            futures_run: 0,
        }
    }

    fn run(&mut self, input: File) {
        let fd = input.as_raw_fd();
        let mut reader = BufReader::new(input);
        let mut line = Vec::new();
        loop {
            if !self.held.is_empty() && self.open_block.is_none() {
                let left = FINAL_VALUE_WINDOW.saturating_sub(self.held_since.elapsed());
                if reader.buffer().is_empty() && !wait_readable(fd, left) {
                    self.release_held();
                    let _ = self.output.flush();
                    continue;
                }
            }
            // (A piece's cut character, if any, is still at the start of `line`.)
            let cap = if self.open_block.is_some() {
                usize::MAX
            } else {
                MAX_PIECE
            };
            match read_line_or_piece(&mut reader, &mut line, cap) {
                Read::End => break,
                Read::Piece => {
                    let sent = unfinished_protocol_line(&line[..whole_characters(&line)]);
                    self.piece(&String::from_utf8_lossy(&line[..sent]));
                    line.drain(..sent);
                    continue;
                }
                Read::Line => {}
            }
            let text = String::from_utf8_lossy(&line).into_owned();
            line.clear();
            let text = text.strip_suffix('\n').unwrap_or(&text);
            // Output printed without a newline (`print!` + flush) can put a protocol line
            // in the middle of a line; split it so the protocol line starts a line.
            match PROTOCOL_LINES.iter().filter_map(|m| text.find(m)).min() {
                Some(at) if at > 0 => {
                    self.line(&text[..at]);
                    self.line(&text[at..]);
                }
                _ => self.line(text),
            }
            // Coalesce writes while whole lines are waiting, never delay when none are.
            if !reader.buffer().contains(&b'\n') {
                let _ = self.output.flush();
            }
        }
        if let Some(block) = self.open_block.take() {
            self.held.push(block);
        }
        self.release_held();
        let _ = self.output.flush();
    }

    /// A piece of a line too long to pass on whole: the kernel joins it to the next one.
    fn piece(&mut self, text: &str) {
        self.release_held();
        self.write(&markers::line(markers::LINE_CONTINUES, ""));
        self.write(text);
    }

    fn line(&mut self, text: &str) {
        if let Some(block) = self.open_block.as_mut() {
            if text == markers::EVCXR_END {
                if let Some(block) = self.open_block.take() {
                    self.held.push(block);
                    self.held_since = Instant::now();
                }
                return;
            }
            if text != markers::EVCXR_PANIC && text != markers::EVCXR_COMPLETE {
                block.body.push(text.to_owned());
                return;
            }
            // A panic, or the end of the cell, cut the block short (it was never closed):
            // show what there was as plain output, and let the cell end.
            self.release_held();
            if let Some(block) = self.open_block.take() {
                for partial in &block.body {
                    self.write(partial);
                }
            }
        }
        if let Some(mime) = text.strip_prefix(markers::EVCXR_BEGIN) {
            // Blocks back to back stay together (one value or display, several mime types).
            self.open_block = Some(Block {
                mime: mime.trim().to_owned(),
                body: Vec::new(),
            });
            return;
        }
        if text == markers::EVCXR_COMPLETE {
            // Blocks right before the end of the cell are its value: let evcxr collect them.
            for block in std::mem::take(&mut self.held) {
                for raw in block.raw_lines() {
                    self.write(&raw);
                }
            }
            // The cell returned: all it wrote to stderr is in the pipe before this line.
            // The marker also says whether the cell ran a future, whose runtime events
            // the kernel then waits for.
            let futures_run = super::cell::TANDEM_CELL_STATE.futures_run();
            let ran = if futures_run == self.futures_run {
                ""
            } else {
                markers::RAN_A_FUTURE
            };
            self.futures_run = futures_run;
            let sync = markers::line(markers::STDERR_SYNC, ran) + "\n";
            let _ = std::io::stderr().write_all(sync.as_bytes());
            self.write(text);
            return;
        }
        self.release_held();
        if text == markers::EVCXR_PANIC {
            self.write(&markers::line(markers::PANIC, ""));
        }
        self.write(text);
    }

    /// Shows held blocks as a live display: something came after them, so they were not
    /// the cell's value.
    fn release_held(&mut self) {
        if !self.held.is_empty() {
            let marker = display_marker(&self.held);
            self.held.clear();
            self.write(&marker);
        }
    }

    fn write(&mut self, text: &str) {
        let _ = self.output.write_all(text.as_bytes());
        let _ = self.output.write_all(b"\n");
    }
}

/// Whether `fd` has data (or has closed) within `timeout`.
fn wait_readable(fd: i32, timeout: Duration) -> bool {
    let mut pfd = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    let millis = timeout.as_millis().min(i32::MAX as u128) as i32;
    // SAFETY: one valid pollfd for the duration of the call.
    unsafe { libc::poll(&mut pfd, 1, millis) > 0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_longer_than_the_cap_comes_in_pieces_and_a_short_one_whole() {
        let mut input = std::io::Cursor::new(b"abcdefgh\nxy\ntail".to_vec());
        let mut line = Vec::new();
        assert!(matches!(
            read_line_or_piece(&mut input, &mut line, 5),
            Read::Piece
        ));
        assert_eq!(line, b"abcde");
        line.clear();
        assert!(matches!(
            read_line_or_piece(&mut input, &mut line, 5),
            Read::Line
        ));
        assert_eq!(line, b"fgh\n");
        line.clear();
        assert!(matches!(
            read_line_or_piece(&mut input, &mut line, 5),
            Read::Line
        ));
        assert_eq!(line, b"xy\n");
        line.clear();
        assert!(matches!(
            read_line_or_piece(&mut input, &mut line, 5),
            Read::Line
        ));
        assert_eq!(line, b"tail", "the last line, unterminated");
        line.clear();
        assert!(matches!(
            read_line_or_piece(&mut input, &mut line, 5),
            Read::End
        ));
    }

    #[test]
    fn a_piece_keeps_back_a_cut_character_and_a_cut_protocol_line() {
        let e_acute = "é".as_bytes();
        assert_eq!(whole_characters(&[b'a', e_acute[0]]), 1);
        assert_eq!(whole_characters("aé".as_bytes()), 3);
        assert_eq!(
            whole_characters(&[b'a', 0xff, b'b']),
            3,
            "invalid bytes go on"
        );
        let piece = b"some output EVCXR_EXEC";
        assert_eq!(unfinished_protocol_line(piece), b"some output ".len());
        assert_eq!(unfinished_protocol_line(b"plain text"), 10);
    }
}
