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
//! does not say when, so the notice under the cell says "up to N", counting every message
//! sent since it was let go; it comes once output pauses for [`QUIET_TO_NOTICE`] (or
//! every [`STALL_LIMIT`] while it does not), when a client that reads at all has caught
//! up and gets it.

use crate::wire::content::Stream;
use crate::wire::{Header, Message, Signer};
use crossbeam_channel::Sender;
use serde_json::Map;
use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// Each subscriber may fall this many messages behind before sends wait for it.
const QUEUE_PER_SUBSCRIBER: i32 = 10_000;

/// How long sends wait for a subscriber that stopped reading, unless
/// `TANDEM_IOPUB_STALL_SECONDS` says otherwise: the kernel is never held longer.
const STALL_LIMIT: Duration = Duration::from_secs(10);

/// Past this much waiting output, the publisher lets go at once: a client that reads, but
/// far slower than a cell prints, cannot make the kernel hold unbounded memory.
const MAX_WAITING_BYTES: usize = 1 << 30;

/// How long output must pause before the notice about a client let go is sent.
const QUIET_TO_NOTICE: Duration = Duration::from_secs(2);

/// How often a send that waits for a slow subscriber is tried again.
const RETRY_EVERY: Duration = Duration::from_millis(5);

/// A message ready to go: its frames, and its parent (the request it belongs to).
struct Outgoing {
    frames: Vec<Vec<u8>>,
    parent: Option<Header>,
}

impl Outgoing {
    fn bytes(&self) -> usize {
        self.frames.iter().map(Vec::len).sum()
    }
}

/// A client let go, not yet told about it.
struct LetGo {
    since: Instant,
    /// When the last message went out (the notice waits for a pause), and the last notice.
    last_sent: Instant,
    last_notice: Instant,
    /// Messages sent since (the notice's "up to"), and the request the last belonged to.
    sent: u64,
    parent: Option<Header>,
}

pub(super) struct Publisher {
    socket: zmq::Socket,
    signer: Signer,
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
    pub(super) fn new(mut socket: zmq::Socket, signer: Signer) -> Publisher {
        if let Err(error) = set_no_drop(&mut socket, true) {
            log::warn!("iopub: a slow client may miss output (XPUB_NODROP: {error})");
        }
        if let Err(error) = socket.set_sndhwm(QUEUE_PER_SUBSCRIBER) {
            log::warn!("iopub: send queue left at its default: {error}");
        }
        Publisher {
            socket,
            signer,
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

    /// Queues a message for every subscriber (its topic names its type).
    pub(super) fn queue(&mut self, message: Message) {
        let topic = format!("kernel.tandem.{}", message.header.msg_type);
        self.queue_to(topic.into_bytes(), message);
    }

    /// Queues a message under `topic` (a welcome goes to the topic just subscribed).
    pub(super) fn queue_to(&mut self, topic: Vec<u8>, mut message: Message) {
        message.identities = vec![topic];
        let outgoing = Outgoing {
            frames: message.to_frames(&self.signer),
            parent: message.parent_header.clone(),
        };
        self.waiting_bytes += outgoing.bytes();
        self.waiting.push_back(outgoing);
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
            self.let_go.as_ref().map(|_| QUIET_TO_NOTICE / 4)
        }
    }

    /// Sends what is queued, in order, until a slow subscriber has no room; `Err` once the
    /// ZeroMQ context is terminated.
    pub(super) fn send_waiting(&mut self) -> Result<(), ()> {
        while let Some(next) = self.waiting.front() {
            match self
                .socket
                .send_multipart(next.frames.iter(), zmq::DONTWAIT)
            {
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
        self.maybe_notice();
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
            last_notice: now,
            sent: 0,
            parent: None,
        });
        set_no_drop(&mut self.socket, false)?;
        let sent = match self.waiting.front() {
            Some(next) => self.socket.send_multipart(next.frames.iter(), 0),
            None => Ok(()),
        };
        set_no_drop(&mut self.socket, true)?;
        sent
    }

    fn sent_one(&mut self) {
        let Some(gone) = self.waiting.pop_front() else {
            return;
        };
        self.waiting_bytes -= gone.bytes();
        self.sent += 1;
        self.stalled_since = None;
        if let Some(let_go) = &mut self.let_go {
            let_go.last_sent = Instant::now();
            let_go.sent += 1;
            if gone.parent.is_some() {
                let_go.parent = gone.parent;
            }
        }
    }

    /// Once output pauses after a client was let go (or every [`STALL_LIMIT`] while it does
    /// not), a notice under the cell concerned says how much that client may have missed.
    fn maybe_notice(&mut self) {
        let Some(let_go) = &mut self.let_go else {
            return;
        };
        let paused = self.waiting.is_empty() && let_go.last_sent.elapsed() >= QUIET_TO_NOTICE;
        if !paused && let_go.last_notice.elapsed() < self.stall_limit {
            return;
        }
        let notice = missed_output_notice(
            let_go.sent,
            let_go.since.elapsed().as_secs_f64(),
            self.stall_limit,
            let_go.parent.clone(),
        );
        log::warn!(
            "iopub: a client let go may have missed up to {} messages",
            let_go.sent
        );
        if paused {
            self.let_go = None;
        } else {
            let_go.last_notice = Instant::now();
        }
        let outgoing = Outgoing {
            frames: notice.to_frames(&self.signer),
            parent: notice.parent_header,
        };
        self.waiting_bytes += outgoing.bytes();
        self.waiting.push_back(outgoing);
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

/// The stream line a client that could not keep up finds where its output has gaps.
fn missed_output_notice(
    count: u64,
    seconds: f64,
    stall_limit: Duration,
    parent: Option<Header>,
) -> Message {
    let text = format!(
        "\n[tandem: a client did not read this kernel's output for over {:.0} s, so \
         output went on without it; it may have missed up to {count} message{} sent in \
         the {seconds:.1} s since]\n",
        stall_limit.as_secs_f64(),
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
