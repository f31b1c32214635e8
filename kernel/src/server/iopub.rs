//! The iopub publisher: one thread owns the XPUB socket; every other thread hands it
//! messages through a channel. It greets each new subscriber with `iopub_welcome`
//! (JEP 65) so clients know when they stop missing broadcasts. How messages wait for a
//! slow client is `publisher`'s job; how cells wait for it is `backlog`'s.

use super::backlog::Backlog;
use super::outgoing::content_bytes;
use super::publisher::Publisher;
use crate::wire::{Header, Message, Signer};
use anyhow::Result;
use crossbeam_channel::{Receiver, Sender};
use serde_json::{json, Map};
use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::sync::{Arc, Mutex};
use std::time::Duration;

enum Command {
    /// A message, and the bytes of cell output it carries (counted in the backlog).
    Publish(Box<Message>, usize),
    Flush(Sender<()>),
}

/// A cheap, cloneable handle that publishes messages on iopub from any thread.
#[derive(Clone)]
pub struct Iopub {
    commands: Sender<Command>,
    // Writing a byte here wakes the publisher thread out of zmq_poll.
    wake: Arc<Mutex<UnixStream>>,
    backlog: Arc<Backlog>,
}

impl Iopub {
    pub fn start(socket: zmq::Socket, signer: Signer) -> Result<Iopub> {
        let (commands, receiver) = crossbeam_channel::unbounded();
        let (wake_write, wake_read) = UnixStream::pair()?;
        wake_write.set_nonblocking(true)?;
        wake_read.set_nonblocking(true)?;
        let backlog = Arc::new(Backlog::default());
        let publisher = Publisher::new(socket, signer, backlog.clone());
        std::thread::Builder::new()
            .name("iopub".into())
            .spawn(move || run(publisher, receiver, wake_read))?;
        Ok(Iopub {
            commands,
            wake: Arc::new(Mutex::new(wake_write)),
            backlog,
        })
    }

    /// Queues a message for publication. Never blocks on the network.
    pub fn publish(&self, message: Message) {
        self.send(message, 0);
    }

    /// Queues what a cell printed or displayed; waits first while a client that reads
    /// slower than the cell prints has much output queued (see `backlog`).
    pub fn publish_output(&self, message: Message) {
        let bytes = content_bytes(&message);
        self.backlog.wait_for_room();
        self.backlog.add(bytes);
        self.send(message, bytes);
    }

    fn send(&self, message: Message, output_bytes: usize) {
        if self
            .commands
            .send(Command::Publish(Box::new(message), output_bytes))
            .is_ok()
        {
            self.wake();
        } else {
            self.backlog.remove(output_bytes);
        }
    }

    /// The running cell is being stopped (interrupt, shutdown): its output no longer waits
    /// for slow clients, until [`Iopub::hold_output`].
    pub fn release_output(&self) {
        self.backlog.release();
    }

    /// A cell begins: its output waits for slow clients again.
    pub fn hold_output(&self) {
        self.backlog.hold();
    }

    /// Waits (up to `timeout`) until every message queued so far has been handed to libzmq.
    pub fn flush(&self, timeout: Duration) {
        if let Some(done) = self.when_sent() {
            let _ = done.recv_timeout(timeout);
        }
    }

    /// Waits until every message queued so far has been handed to libzmq, however long a
    /// slow client takes: the wait always ends, since the publisher lets a client that
    /// stops reading go after its stall limit (or it stops, which ends the wait too).
    pub fn flush_all(&self) {
        if let Some(done) = self.when_sent() {
            let _ = done.recv();
        }
    }

    fn when_sent(&self) -> Option<Receiver<()>> {
        let (done_tx, done_rx) = crossbeam_channel::bounded(1);
        self.commands.send(Command::Flush(done_tx)).ok()?;
        self.wake();
        Some(done_rx)
    }

    fn wake(&self) {
        if let Ok(mut stream) = self.wake.lock() {
            // A full pipe already means "wake up"; nothing is lost by ignoring WouldBlock.
            let _ = stream.write(&[1]);
        }
    }
}

fn run(mut publisher: Publisher, commands: Receiver<Command>, mut wake: UnixStream) {
    let mut drain = [0u8; 256];
    loop {
        let timeout = publisher
            .retry_within()
            .map_or(-1, |wait| wait.as_millis() as i64);
        let mut items = [
            publisher.socket().as_poll_item(zmq::POLLIN),
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
            greet_subscribers(&mut publisher);
        }
        if wake_ready {
            while matches!(wake.read(&mut drain), Ok(n) if n > 0) {}
        }
        while let Ok(command) = commands.try_recv() {
            match command {
                Command::Publish(message, output_bytes) => publisher.queue(*message, output_bytes),
                Command::Flush(done) => publisher.when_sent(done),
            }
        }
        if publisher.send_waiting().is_err() {
            return;
        }
    }
}

/// XPUB hands us subscription frames: `\x01topic` to subscribe, `\x00topic` to leave.
/// Welcomes queue behind what is already waiting, like any message.
fn greet_subscribers(publisher: &mut Publisher) {
    while let Ok(frame) = publisher.socket().recv_bytes(zmq::DONTWAIT) {
        if frame.first() != Some(&1) {
            continue;
        }
        let topic = String::from_utf8_lossy(&frame[1..]).into_owned();
        publisher.queue_to(
            frame[1..].to_vec(),
            Message {
                identities: Vec::new(),
                header: Header::new("iopub_welcome"),
                parent_header: None,
                metadata: Map::new(),
                content: json!({ "subscription": topic }),
                buffers: Vec::new(),
            },
            0,
        );
    }
}
