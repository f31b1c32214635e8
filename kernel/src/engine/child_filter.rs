//! Runs inside the evcxr child process (where user code runs), between the code's stdout
//! and the kernel: evcxr mime blocks printed mid-cell become live `display` markers,
//! panics are flagged, and everything else passes through line by line without delay.

use super::markers;
use serde_json::{Map, Value};
use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::os::fd::{AsRawFd, FromRawFd};
use std::time::{Duration, Instant};

/// A mime block followed this closely by the end of the cell is the cell's value: evcxr
/// prints the final expression that way, just before the cell returns.
const FINAL_VALUE_WINDOW: Duration = Duration::from_millis(25);

/// Redirects this process's stdout through the filter. Call before `evcxr::runtime_hook`,
/// only in the child process. On failure stdout is left as it was.
pub fn install() {
    // SAFETY: plain POSIX calls on descriptors this process owns; on any failure we stop
    // before changing fd 1.
    unsafe {
        let mut fds = [0; 2];
        if libc::pipe(fds.as_mut_ptr()) != 0 {
            return;
        }
        let original = libc::dup(1);
        if original < 0 || libc::dup2(fds[1], 1) < 0 {
            return;
        }
        libc::close(fds[1]);
        let input = File::from_raw_fd(fds[0]);
        let output = File::from_raw_fd(original);
        let _ = std::thread::Builder::new()
            .name("tandem-stdout".into())
            .spawn(move || filter(input, output));
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

    fn display_marker(&self) -> String {
        let text = self.body.join("\n");
        let value = if self.mime.contains("json") {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        } else {
            Value::String(text)
        };
        let mut data = Map::new();
        data.insert(self.mime.clone(), value);
        markers::line(markers::DISPLAY, &Value::Object(data).to_string())
    }
}

fn filter(input: File, output: File) {
    let fd = input.as_raw_fd();
    let mut output = std::io::BufWriter::with_capacity(64 * 1024, output);
    let mut reader = BufReader::new(input);
    let mut open_block: Option<Block> = None;
    // A finished block waits here briefly: if the cell ends right after it, it is the
    // cell's value and evcxr must see it as printed.
    let mut held: Option<(Block, Instant)> = None;
    let mut line = Vec::new();
    loop {
        if let Some((block, since)) = &held {
            let left = FINAL_VALUE_WINDOW.saturating_sub(since.elapsed());
            if reader.buffer().is_empty() && !wait_readable(fd, left) {
                write_line(&mut output, &block.display_marker());
                let _ = output.flush();
                held = None;
                continue;
            }
        }
        line.clear();
        match reader.read_until(b'\n', &mut line) {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        let text = String::from_utf8_lossy(&line);
        let text = text.strip_suffix('\n').unwrap_or(&text);
        if let Some((block, _)) = held.take() {
            if text == markers::EVCXR_COMPLETE {
                for raw in block.raw_lines() {
                    write_line(&mut output, &raw);
                }
            } else {
                write_line(&mut output, &block.display_marker());
            }
        }
        if text == markers::EVCXR_PANIC {
            if let Some(block) = open_block.take() {
                // A panic cut the block short: show what there was as plain output.
                for partial in &block.body {
                    write_line(&mut output, partial);
                }
            }
            write_line(&mut output, &markers::line(markers::PANIC, ""));
            write_line(&mut output, text);
        } else if let Some(block) = open_block.as_mut() {
            if text == markers::EVCXR_END {
                held = open_block.take().map(|block| (block, Instant::now()));
            } else {
                block.body.push(text.to_owned());
            }
        } else if let Some(mime) = text.strip_prefix(markers::EVCXR_BEGIN) {
            open_block = Some(Block {
                mime: mime.trim().to_owned(),
                body: Vec::new(),
            });
        } else {
            write_line(&mut output, text);
        }
        // Coalesce writes while more is already waiting, never delay when nothing is.
        if reader.buffer().is_empty() {
            let _ = output.flush();
        }
    }
    let _ = output.flush();
}

/// Whether `fd` has data within `timeout`.
fn wait_readable(fd: i32, timeout: Duration) -> bool {
    let mut pfd = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    let millis = timeout.as_millis().min(i32::MAX as u128) as i32;
    // SAFETY: one valid pollfd for the duration of the call.
    unsafe { libc::poll(&mut pfd, 1, millis) != 0 }
}

fn write_line(output: &mut impl Write, text: &str) {
    let _ = output.write_all(text.as_bytes());
    let _ = output.write_all(b"\n");
}
