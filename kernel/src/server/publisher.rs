//! iopub's send queue: messages go out in order, and wait for a client that is slow to
//! read instead of being dropped; a client that stops reading is let go after a while,
//! and the output says how much it may have missed.
//!
//! ZeroMQ's XPUB drops what a subscriber has no room for, silently. With `XPUB_NODROP` a
//! send fails instead (EAGAIN), and the message waits here, with everything after it.
//! When nothing could be sent for [`STALL_LIMIT`], the publisher *lets go*: it sends one
//! message without NODROP. libzmq then sets aside the subscribers that have no room (only
//! the stuck ones: during the stall every client that reads has emptied its queue) and
//! sends on to the others; a client set aside is taken back once it reads again. libzmq
//! does not say when, so a notice says "up to N", counting every message sent since it
//! was let go. The notice goes just before each request's `idle` status while letting go
//! lasts (frontends stop listening to a request at its `idle`); letting go ends once
//! output pauses for [`QUIET_TO_RESUME`]. A client still away then is not told about what
//! it misses later.
//!
//! While stream messages wait, a new one of the same stream and request is appended to the
//! last (`outgoing`): a client that fell behind catches up on fewer, larger messages. What
//! waits is counted in the [`Backlog`] that holds fast cells back.

use super::backlog::Backlog;
use super::outgoing::{size_of, Outgoing};
use crate::wire::content::Stream;
use crate::wire::{Header, Message, Signer};
use crossbeam_channel::Sender;
use serde_json::Map;
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Each subscriber may fall this many messages behind before sends wait for it. Stream
/// messages hold at most 64 KiB (the engine's pieces and the merged ones alike), so libzmq
/// holds about 64 MiB of them for a slow client; a display goes whole, however large.
const QUEUE_PER_SUBSCRIBER: i32 = 1_000;

/// How long sends wait for a subscriber that stopped reading, unless
/// `TANDEM_IOPUB_STALL_SECONDS` says otherwise: the kernel is never held longer.
const STALL_LIMIT: Duration = Duration::from_secs(10);

/// Past this much waiting, the publisher lets go at once. Cell output waits in the
/// [`Backlog`] long before this; what the backlog does not hold back (one huge display, a
/// flood of other messages) cannot make the kernel hold unbounded memory here. A client
/// that reads but is full at that moment is let go too.
const MAX_WAITING_BYTES: usize = 256 << 20;

/// How long output must pause before letting go ends.
const QUIET_TO_RESUME: Duration = Duration::from_secs(2);

/// How often a send that waits for a slow subscriber is tried again.
const RETRY_EVERY: Duration = Duration::from_millis(5);

/// A client let go.
struct LetGo {
    since: Instant,
    /// When the last message went out: letting go ends after a pause.
    last_sent: Instant,
    /// Messages sent since (a notice's "up to").
    sent: u64,
}

pub(super) struct Publisher {
    socket: zmq::Socket,
    signer: Signer,
    backlog: Arc<Backlog>,
    waiting: VecDeque<Outgoing>,
    waiting_bytes: usize,
    /// Flushes are answered once everything queued before them has gone out.
    flushes: VecDeque<(usize, Sender<()>)>,
    sent: usize,
    /// Since when the head of the queue has found a subscriber without room.
    stalled_since: Option<Instant>,
    let_go: Option<LetGo>,
    stall_limit: Duration,
}

impl Publisher {
    pub(super) fn new(mut socket: zmq::Socket, signer: Signer, backlog: Arc<Backlog>) -> Publisher {
        if let Err(error) = set_no_drop(&mut socket, true) {
            log::warn!("iopub: a slow client may miss output (XPUB_NODROP: {error})");
        }
        if let Err(error) = socket.set_sndhwm(QUEUE_PER_SUBSCRIBER) {
            log::warn!("iopub: send queue left at its default: {error}");
        }
        Publisher {
            socket,
            signer,
            backlog,
            waiting: VecDeque::new(),
            waiting_bytes: 0,
            flushes: VecDeque::new(),
            sent: 0,
            stalled_since: None,
            let_go: None,
            stall_limit: stall_limit(),
        }
    }

    pub(super) fn socket(&self) -> &zmq::Socket {
        &self.socket
    }

    /// Queues a message for every subscriber (its topic names its type); `output_bytes`: the
    /// bytes of cell output it carries, as counted in the backlog.
    pub(super) fn queue(&mut self, message: Message, output_bytes: usize) {
        let topic = format!("kernel.tandem.{}", message.header.msg_type);
        self.queue_to(topic.into_bytes(), message, output_bytes);
    }

    /// Queues a message under `topic` (a welcome goes to the topic just subscribed).
    /// While a client is let go, a request's `idle` status comes after a notice.
    pub(super) fn queue_to(&mut self, topic: Vec<u8>, mut message: Message, output_bytes: usize) {
        let idle = message.header.msg_type == "status"
            && message
                .content
                .get("execution_state")
                .and_then(|s| s.as_str())
                == Some("idle");
        if let (true, Some(let_go)) = (idle, &self.let_go) {
            let notice = missed_output_notice(
                let_go.sent,
                let_go.since.elapsed().as_secs_f64(),
                message.parent_header.clone(),
            );
            log::warn!(
                "iopub: a client let go may have missed up to {} messages",
                let_go.sent
            );
            self.push(notice, 0, true);
        }
        message.identities = vec![topic];
        self.push(message, output_bytes, false);
    }

    fn push(&mut self, message: Message, output_bytes: usize, notice: bool) {
        if let (Some(last), false) = (self.waiting.back_mut(), notice) {
            let before = last.bytes;
            if last.merge(&message) {
                last.output_bytes += output_bytes;
                self.waiting_bytes += last.bytes - before;
                return;
            }
        }
        // Cell output was measured once already, by the backlog.
        let bytes = size_of(&message, (output_bytes > 0).then_some(output_bytes));
        self.waiting_bytes += bytes;
        self.waiting.push_back(Outgoing {
            message,
            frames: None,
            bytes,
            output_bytes,
            notice,
        });
    }

    /// Answers `done` once everything queued so far has been handed to libzmq.
    pub(super) fn when_sent(&mut self, done: Sender<()>) {
        self.flushes
            .push_back((self.sent + self.waiting.len(), done));
        self.answer_flushes();
    }

    /// How soon the poll loop must call [`Publisher::send_waiting`] again (`None`: when
    /// something new arrives).
    pub(super) fn retry_within(&self) -> Option<Duration> {
        if !self.waiting.is_empty() {
            Some(RETRY_EVERY)
        } else {
            self.let_go.as_ref().map(|_| QUIET_TO_RESUME / 4)
        }
    }

    /// Sends what is queued, in order, until a slow subscriber has no room; `Err` once the
    /// ZeroMQ context is terminated.
    pub(super) fn send_waiting(&mut self) -> Result<(), ()> {
        while let Some(next) = self.waiting.front_mut() {
            let frames = next.frames(&self.signer);
            match self.socket.send_multipart(frames.iter(), zmq::DONTWAIT) {
                Ok(()) => self.sent_one(),
                Err(zmq::Error::EAGAIN) => {
                    let since = *self.stalled_since.get_or_insert_with(Instant::now);
                    if since.elapsed() < self.stall_limit && self.waiting_bytes < MAX_WAITING_BYTES
                    {
                        break;
                    }
                    match self.send_front_letting_go() {
                        Err(zmq::Error::ETERM) => return Err(()),
                        Err(error) => log::warn!("iopub: send failed: {error}"),
                        Ok(()) => {}
                    }
                    self.sent_one();
                }
                Err(zmq::Error::ETERM) => return Err(()),
                Err(error) => {
                    log::warn!("iopub: send failed: {error}");
                    self.sent_one();
                }
            }
        }
        self.answer_flushes();
        self.maybe_resume();
        Ok(())
    }

    /// Sends the head of the queue without NODROP: libzmq sets aside the subscribers that
    /// have no room for it and delivers it to the others.
    fn send_front_letting_go(&mut self) -> Result<(), zmq::Error> {
        log::warn!(
            "iopub: a client has not read for {:?} ({} KiB waiting); sending on without it",
            self.stall_limit,
            self.waiting_bytes / 1024
        );
        let now = Instant::now();
        self.let_go.get_or_insert(LetGo {
            since: now,
            last_sent: now,
            sent: 0,
        });
        set_no_drop(&mut self.socket, false)?;
        let sent = match self.waiting.front_mut() {
            Some(next) => self
                .socket
                .send_multipart(next.frames(&self.signer).iter(), zmq::DONTWAIT),
            None => Ok(()),
        };
        if let Err(error) = set_no_drop(&mut self.socket, true) {
            log::warn!("iopub: could not wait for slow clients again: {error}");
        }
        sent
    }

    fn sent_one(&mut self) {
        let Some(gone) = self.waiting.pop_front() else {
            return;
        };
        self.waiting_bytes -= gone.bytes;
        self.backlog.remove(gone.output_bytes);
        self.sent += 1;
        self.stalled_since = None;
        if let (Some(let_go), false) = (&mut self.let_go, gone.notice) {
            let_go.last_sent = Instant::now();
            let_go.sent += 1;
        }
    }

    /// Letting go ends once output has paused for [`QUIET_TO_RESUME`]: a client that reads
    /// at all has caught up by then.
    fn maybe_resume(&mut self) {
        let Some(let_go) = &self.let_go else {
            return;
        };
        if self.waiting.is_empty() && let_go.last_sent.elapsed() >= QUIET_TO_RESUME {
            log::info!(
                "iopub: output paused; up to {} messages were sent while a client was let go",
                let_go.sent
            );
            self.let_go = None;
        }
    }

    fn answer_flushes(&mut self) {
        while self
            .flushes
            .front()
            .is_some_and(|(after, _)| *after <= self.sent)
        {
            if let Some((_, done)) = self.flushes.pop_front() {
                let _ = done.send(());
            }
        }
    }
}

impl Drop for Publisher {
    /// Nothing drains once the publisher stops: no cell may wait for it.
    fn drop(&mut self) {
        self.backlog.close();
    }
}

/// The stream line a client that could not keep up finds where its output has gaps.
fn missed_output_notice(count: u64, seconds: f64, parent: Option<Header>) -> Message {
    let text = format!(
        "\n[tandem: a client stopped reading this kernel's output, so output went on \
         without it; it may have missed up to {count} message{} sent in the {seconds:.1} s \
         since]\n",
        if count == 1 { "" } else { "s" },
    );
    Message {
        identities: vec![b"kernel.tandem.stream".to_vec()],
        header: Header::new("stream"),
        parent_header: parent,
        metadata: Map::new(),
        content: serde_json::to_value(Stream {
            name: "stderr",
            text,
        })
        .unwrap_or_default(),
        buffers: Vec::new(),
    }
}

fn stall_limit() -> Duration {
    std::env::var("TANDEM_IOPUB_STALL_SECONDS")
        .ok()
        .and_then(|seconds| seconds.trim().parse().ok())
        .and_then(|seconds| Duration::try_from_secs_f64(seconds).ok())
        .unwrap_or(STALL_LIMIT)
}

/// ZMQ_XPUB_NODROP: whether a full subscriber queue makes sends fail (EAGAIN) rather than
/// drop the message for that subscriber. The zmq crate has no setter for it.
fn set_no_drop(socket: &mut zmq::Socket, on: bool) -> Result<(), zmq::Error> {
    let value: libc::c_int = on.into();
    // SAFETY: the socket pointer is valid while `socket` lives (this thread owns it), and
    // the option takes an int whose size we pass.
    let status = unsafe {
        zmq_sys::zmq_setsockopt(
            socket.as_mut_ptr(),
            zmq_sys::ZMQ_XPUB_NODROP as libc::c_int,
            (&value as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>(),
        )
    };
    if status == 0 {
        Ok(())
    } else {
        // SAFETY: zmq_errno only reads this thread's last libzmq error.
        Err(zmq::Error::from_raw(unsafe { zmq_sys::zmq_errno() }))
    }
}
