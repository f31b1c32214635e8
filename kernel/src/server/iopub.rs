//! The iopub publisher: one thread owns the XPUB socket; every other thread hands it
//! messages through a channel. It greets each new subscriber with `iopub_welcome`
//! (JEP 65) so clients know when they stop missing broadcasts.

use crate::wire::content::Stream;
use crate::wire::{Header, Message, Signer};
use anyhow::Result;
use crossbeam_channel::{Receiver, Sender};
use serde_json::{json, Map};
use std::collections::VecDeque;
use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

enum Command {
    Publish(Box<Message>),
    Flush(Sender<()>),
}

/// A cheap, cloneable handle that publishes messages on iopub from any thread.
#[derive(Clone)]
pub struct Iopub {
    commands: Sender<Command>,
    // Writing a byte here wakes the publisher thread out of zmq_poll.
    wake: Arc<Mutex<UnixStream>>,
}

impl Iopub {
    pub fn start(socket: zmq::Socket, signer: Signer) -> Result<Iopub> {
        let (commands, receiver) = crossbeam_channel::unbounded();
        let (wake_write, wake_read) = UnixStream::pair()?;
        wake_write.set_nonblocking(true)?;
        wake_read.set_nonblocking(true)?;
        std::thread::Builder::new()
            .name("iopub".into())
            .spawn(move || run(socket, signer, receiver, wake_read))?;
        Ok(Iopub {
            commands,
            wake: Arc::new(Mutex::new(wake_write)),
        })
    }

    /// Queues a message for publication. Never blocks on the network.
    pub fn publish(&self, message: Message) {
        if self
            .commands
            .send(Command::Publish(Box::new(message)))
            .is_ok()
        {
            self.wake();
        }
    }

    /// Waits (up to `timeout`) until every message queued so far has been handed to libzmq.
    pub fn flush(&self, timeout: Duration) {
        let (done_tx, done_rx) = crossbeam_channel::bounded(1);
        if self.commands.send(Command::Flush(done_tx)).is_ok() {
            self.wake();
            let _ = done_rx.recv_timeout(timeout);
        }
    }

    fn wake(&self) {
        if let Ok(mut stream) = self.wake.lock() {
            // A full pipe already means "wake up"; nothing is lost by ignoring WouldBlock.
            let _ = stream.write(&[1]);
        }
    }
}

/// Each subscriber may fall this many messages behind; past that, publishing waits for it
/// (ZMQ_XPUB_NODROP) instead of dropping messages silently, as PUB sockets do.
const QUEUE_PER_SUBSCRIBER: i32 = 10_000;

/// How long publishing waits for a subscriber that stopped reading (unless
/// `TANDEM_IOPUB_STALL_SECONDS` says otherwise). Past that, messages that subscriber has
/// no room for are dropped for it (the others still get them), and the output says how
/// many: a client that never reads cannot stall the kernel forever.
const STALL_LIMIT: Duration = Duration::from_secs(10);

fn stall_limit() -> Duration {
    std::env::var("TANDEM_IOPUB_STALL_SECONDS")
        .ok()
        .and_then(|seconds| seconds.trim().parse().ok())
        .and_then(|seconds| Duration::try_from_secs_f64(seconds).ok())
        .unwrap_or(STALL_LIMIT)
}

/// How often a publisher that waits for a slow subscriber tries again.
const RETRY_EVERY: Duration = Duration::from_millis(5);

/// A message ready to go: its frames, and its parent (for a notice about drops).
struct Outgoing {
    frames: Vec<Vec<u8>>,
    parent: Option<Header>,
}

/// The publisher's queue: messages wait here, in order, while a subscriber is slow.
struct Publisher {
    socket: zmq::Socket,
    signer: Signer,
    waiting: VecDeque<Outgoing>,
    /// Flushes are answered once everything queued before them is out.
    flushes: VecDeque<(usize, Sender<()>)>,
    sent: usize,
    /// Since when the head of the queue has been waiting for a slow subscriber.
    stalled_since: Option<Instant>,
    /// Messages let go for a stalled subscriber since the last notice, and the parent
    /// (the request) of the last of them: the notice goes under that cell.
    dropped: u64,
    dropped_parent: Option<Header>,
    stall_limit: Duration,
}

fn run(mut socket: zmq::Socket, signer: Signer, commands: Receiver<Command>, mut wake: UnixStream) {
    if let Err(error) = set_no_drop(&mut socket, true) {
        log::warn!("iopub: a slow client may miss output (XPUB_NODROP: {error})");
    }
    if let Err(error) = socket.set_sndhwm(QUEUE_PER_SUBSCRIBER) {
        log::warn!("iopub: send queue left at its default: {error}");
    }
    let mut publisher = Publisher {
        socket,
        signer,
        waiting: VecDeque::new(),
        flushes: VecDeque::new(),
        sent: 0,
        stalled_since: None,
        dropped: 0,
        dropped_parent: None,
        stall_limit: stall_limit(),
    };
    let mut drain = [0u8; 256];
    loop {
        let timeout = if publisher.waiting.is_empty() {
            -1
        } else {
            RETRY_EVERY.as_millis() as i64
        };
        let mut items = [
            publisher.socket.as_poll_item(zmq::POLLIN),
            zmq::PollItem::from_fd(wake.as_raw_fd(), zmq::POLLIN),
        ];
        match zmq::poll(&mut items, timeout) {
            Ok(_) => {}
            Err(zmq::Error::ETERM) => return,
            Err(zmq::Error::EINTR) => continue,
            Err(error) => {
                log::error!("iopub: poll failed: {error}");
                return;
            }
        }
        let subscription_ready = items[0].is_readable();
        let wake_ready = items[1].is_readable();
        if subscription_ready {
            greet_subscribers(&publisher.socket, &publisher.signer);
        }
        if wake_ready {
            while matches!(wake.read(&mut drain), Ok(n) if n > 0) {}
        }
        while let Ok(command) = commands.try_recv() {
            match command {
                Command::Publish(message) => publisher.queue(*message),
                Command::Flush(done) => {
                    let after = publisher.sent + publisher.waiting.len();
                    publisher.flushes.push_back((after, done));
                }
            }
        }
        if publisher.send_waiting().is_err() {
            return;
        }
    }
}

impl Publisher {
    fn queue(&mut self, mut message: Message) {
        let topic = format!("kernel.tandem.{}", message.header.msg_type);
        message.identities = vec![topic.into_bytes()];
        self.waiting.push_back(Outgoing {
            frames: message.to_frames(&self.signer),
            parent: message.parent_header.clone(),
        });
    }

    /// Sends what is queued, in order, until a slow subscriber has no room; `Err` once the
    /// context is terminated.
    fn send_waiting(&mut self) -> Result<(), ()> {
        while let Some(next) = self.waiting.front() {
            match self
                .socket
                .send_multipart(next.frames.iter(), zmq::DONTWAIT)
            {
                Ok(()) => {
                    self.waiting.pop_front();
                    self.sent += 1;
                    self.caught_up();
                }
                Err(zmq::Error::EAGAIN) => {
                    let since = *self.stalled_since.get_or_insert_with(Instant::now);
                    if since.elapsed() < self.stall_limit {
                        break;
                    }
                    // Let this one go for whoever has no room; the others get it.
                    let _ = set_no_drop(&mut self.socket, false);
                    let sent = self.socket.send_multipart(next.frames.iter(), 0);
                    let _ = set_no_drop(&mut self.socket, true);
                    if sent == Err(zmq::Error::ETERM) {
                        return Err(());
                    }
                    self.dropped_parent = next.parent.clone();
                    self.waiting.pop_front();
                    self.sent += 1;
                    self.dropped += 1;
                }
                Err(zmq::Error::ETERM) => return Err(()),
                Err(error) => {
                    log::warn!("iopub: send failed: {error}");
                    self.waiting.pop_front();
                    self.sent += 1;
                }
            }
        }
        while self
            .flushes
            .front()
            .is_some_and(|(after, _)| *after <= self.sent)
        {
            if let Some((_, done)) = self.flushes.pop_front() {
                let _ = done.send(());
            }
        }
        Ok(())
    }

    /// A message went out without waiting: a stall is over. If messages were dropped
    /// during it, the output says so, under the cell they belonged to.
    fn caught_up(&mut self) {
        if self.stalled_since.take().is_none() || self.dropped == 0 {
            return;
        }
        let dropped = std::mem::take(&mut self.dropped);
        let limit = self.stall_limit;
        log::warn!(
            "iopub: a client stopped reading for over {limit:?}; up to {dropped} messages \
             were dropped for it"
        );
        let notice = Message {
            identities: vec![b"kernel.tandem.stream".to_vec()],
            header: Header::new("stream"),
            parent_header: self.dropped_parent.take(),
            metadata: Map::new(),
            content: serde_json::to_value(Stream {
                name: "stderr",
                text: format!(
                    "\n[tandem: a client stopped reading this kernel's output for over \
                     {:.0} s; up to {dropped} output message{} dropped for it here]\n",
                    limit.as_secs_f64(),
                    if dropped == 1 { " was" } else { "s were" }
                ),
            })
            .unwrap_or_default(),
            buffers: Vec::new(),
        };
        self.waiting.push_front(Outgoing {
            frames: notice.to_frames(&self.signer),
            parent: None,
        });
    }
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

/// XPUB hands us subscription frames: `\x01topic` to subscribe, `\x00topic` to leave.
fn greet_subscribers(socket: &zmq::Socket, signer: &Signer) {
    while let Ok(frame) = socket.recv_bytes(zmq::DONTWAIT) {
        if frame.first() != Some(&1) {
            continue;
        }
        let topic = String::from_utf8_lossy(&frame[1..]).into_owned();
        let welcome = Message {
            identities: vec![frame[1..].to_vec()],
            header: Header::new("iopub_welcome"),
            parent_header: None,
            metadata: Map::new(),
            content: json!({ "subscription": topic }),
            buffers: Vec::new(),
        };
        // Never waits: a subscriber that stopped reading must not hold the publisher.
        if let Err(error) = socket.send_multipart(welcome.to_frames(signer), zmq::DONTWAIT) {
            log::warn!("iopub: welcome failed: {error}");
        }
    }
}
