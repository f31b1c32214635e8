//! The loop behind each ROUTER socket (shell, control): receive, decode and verify, hand
//! the message to a handler. Anything undecodable is logged and dropped; the loop goes on.

use crate::wire::content::InputReply;
use crate::wire::{Message, Signer};
use anyhow::{bail, Result};
use std::time::Duration;

/// How a handler answers on the socket its request came from, and reads what is queued.
pub struct Outbox<'a> {
    socket: &'a zmq::Socket,
    signer: &'a Signer,
    stdin: Option<&'a mut StdinPort>,
    channel: &'static str,
}

impl Outbox<'_> {
    /// Sends a message (usually a reply) back on this socket.
    pub fn send(&mut self, message: &Message) {
        if let Err(error) = self
            .socket
            .send_multipart(message.to_frames(self.signer), 0)
        {
            log::warn!("{}: send failed: {error}", self.channel);
        }
    }

    /// The next request already waiting on this socket, without blocking.
    pub fn next_queued(&mut self) -> Option<Message> {
        loop {
            match self.socket.poll(zmq::POLLIN, 0) {
                Ok(n) if n > 0 => {}
                _ => return None,
            }
            let frames = self.socket.recv_multipart(0).ok()?;
            if let Some(message) = decode(frames, self.signer, self.channel) {
                return Some(message);
            }
        }
    }

    /// Every request waiting on this socket now, in the order they arrived.
    pub fn take_queued(&mut self) -> Vec<Message> {
        std::iter::from_fn(|| self.next_queued()).collect()
    }

    /// Whether no request arrives on this socket within `wait` (returns as soon as one
    /// does; nothing is read).
    pub fn stays_quiet_for(&self, wait: Duration) -> bool {
        let millis = i64::try_from(wait.as_millis()).unwrap_or(i64::MAX);
        matches!(self.socket.poll(zmq::POLLIN, millis), Ok(0))
    }

    /// Whether this is the shell socket (the one cells run from).
    pub fn is_shell(&self) -> bool {
        self.channel == "shell"
    }

    /// The stdin channel, on the shell socket only.
    pub fn stdin(&mut self) -> Option<&mut StdinPort> {
        self.stdin.as_deref_mut()
    }
}

/// The stdin ROUTER socket: the kernel asks the client for input here.
pub struct StdinPort {
    socket: zmq::Socket,
    signer: Signer,
}

impl StdinPort {
    /// Sends `input_request` (a child of the execute request) and waits for the client's
    /// `input_reply`. Gives up with an error when `cancelled()` turns true.
    pub fn ask(&mut self, request: &Message, cancelled: &dyn Fn() -> bool) -> Result<String> {
        // Anything left over from an earlier, abandoned question is stale now.
        while let Ok(n) = self.socket.poll(zmq::POLLIN, 0) {
            if n == 0 || self.socket.recv_multipart(0).is_err() {
                break;
            }
        }
        self.socket
            .send_multipart(request.to_frames(&self.signer), 0)?;
        loop {
            if cancelled() {
                bail!("input request cancelled");
            }
            if self.socket.poll(zmq::POLLIN, 50)? == 0 {
                continue;
            }
            let frames = self.socket.recv_multipart(0)?;
            let Some(reply) = decode(frames, &self.signer, "stdin") else {
                continue;
            };
            // jupyter_client sends input_reply without a parent header; one that names a
            // different parent answers an older question.
            let answers_us = reply
                .parent_header
                .as_ref()
                .is_none_or(|p| p.msg_id == request.header.msg_id);
            if reply.header.msg_type == "input_reply" && answers_us {
                let answer: InputReply = serde_json::from_value(reply.content)?;
                return Ok(answer.value);
            }
            log::warn!(
                "stdin: ignoring {} (parent {:?}, waiting for an answer to {})",
                reply.header.msg_type,
                reply.parent_header.as_ref().map(|p| &p.msg_id),
                request.header.msg_id
            );
        }
    }
}

fn decode(frames: Vec<Vec<u8>>, signer: &Signer, channel: &str) -> Option<Message> {
    match Message::from_frames(frames, signer) {
        Ok(message) => Some(message),
        Err(error) => {
            if let Some(also) = REJECTION_LOG.admit() {
                let also = match also {
                    0 => String::new(),
                    n => format!(" ({n} more dropped since the last line)"),
                };
                log::warn!("{channel}: dropped a message: {error}{also}");
            }
            None
        }
    }
}

/// At most this many "dropped a message" lines per [`REJECTIONS_PER`]: a flood of bad
/// messages cannot fill the log (or the disk under it).
const REJECTION_LINES: u32 = 10;
const REJECTIONS_PER: Duration = Duration::from_secs(10);

static REJECTION_LOG: RateLimit = RateLimit::new();

/// Counts log lines in windows of [`REJECTIONS_PER`].
struct RateLimit {
    state: std::sync::Mutex<Option<(std::time::Instant, u32, u64)>>,
}

impl RateLimit {
    const fn new() -> RateLimit {
        RateLimit {
            state: std::sync::Mutex::new(None),
        }
    }

    /// `Some(lines held back since the last one)` when a line may be written now.
    fn admit(&self) -> Option<u64> {
        let mut state = self
            .state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let now = std::time::Instant::now();
        let (since, written, held) = state.get_or_insert((now, 0, 0));
        if now.duration_since(*since) >= REJECTIONS_PER {
            (*since, *written) = (now, 0);
        }
        if *written < REJECTION_LINES {
            *written += 1;
            Some(std::mem::take(held))
        } else {
            *held += 1;
            None
        }
    }
}

/// Serves one ROUTER socket until the ZeroMQ context is terminated.
pub fn run(
    socket: zmq::Socket,
    stdin: Option<zmq::Socket>,
    signer: &Signer,
    channel: &'static str,
    mut handle: impl FnMut(Message, &mut Outbox),
) {
    let mut stdin = stdin.map(|socket| StdinPort {
        socket,
        signer: signer.clone(),
    });
    loop {
        let frames = match socket.recv_multipart(0) {
            Ok(frames) => frames,
            Err(zmq::Error::ETERM) => return,
            Err(error) => {
                log::warn!("{channel}: receive failed: {error}");
                std::thread::sleep(Duration::from_millis(10));
                continue;
            }
        };
        let Some(message) = decode(frames, signer, channel) else {
            continue;
        };
        let mut outbox = Outbox {
            socket: &socket,
            signer,
            stdin: stdin.as_mut(),
            channel,
        };
        handle(message, &mut outbox);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flood_of_rejections_writes_a_few_lines_and_counts_the_rest() {
        let limit = RateLimit::new();
        let written = (0..1_000).filter(|_| limit.admit().is_some()).count();
        assert_eq!(written, REJECTION_LINES as usize);
        // The next window's first line says how many were held back.
        if let Ok(mut state) = limit.state.lock() {
            if let Some((since, _, _)) = state.as_mut() {
                *since = since.checked_sub(REJECTIONS_PER).unwrap_or(*since);
            }
        }
        assert_eq!(limit.admit(), Some(1_000 - u64::from(REJECTION_LINES)));
    }
}
