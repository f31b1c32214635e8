//! How much of the cells' output waits to go out on iopub, and the one place where a cell
//! that prints faster than a client reads is made to wait for it (back-pressure).
//!
//! Output is never dropped for a client that reads, however slowly: past [`MAX_HELD`]
//! bytes, the thread forwarding the cell's output waits here. It then stops taking lines
//! from evcxr, whose channels are bounded (see `patches/README.md`), so the pipes from the
//! cell's process fill and its `println!` waits too. Memory stays bounded; the cell runs
//! at the pace of its slowest reading client. A client that stops reading altogether is
//! let go by the publisher after its stall limit, and the wait ends. An interrupt or a
//! shutdown releases the hold until the next cell begins: the cell must stop at once
//! (within the interrupt's 0.2 s grace), so what it prints meanwhile goes to the queue
//! without waiting, where the publisher's own limit (it lets a slow client go past 256
//! MiB waiting) still bounds it.

use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

/// Cell output queued on iopub past which the cell waits.
pub const MAX_HELD: usize = 32 << 20;

/// The log says a cell waits at most this often (and at its first wait).
const SAY_EVERY: Duration = Duration::from_secs(10);

/// How often a waiting cell looks whether the publisher has gone.
const CHECK_EVERY: Duration = Duration::from_millis(200);

#[derive(Default)]
struct Held {
    bytes: usize,
    /// The publisher has stopped: nothing will drain, so nothing waits.
    closed: bool,
    /// Released until the next cell (an interrupt, a shutdown): nothing waits.
    released: bool,
    said_at: Option<Instant>,
}

#[derive(Default)]
pub struct Backlog {
    held: Mutex<Held>,
    drained: Condvar,
}

impl Backlog {
    /// Output of `bytes` is queued.
    pub fn add(&self, bytes: usize) {
        if let Ok(mut held) = self.held.lock() {
            held.bytes += bytes;
        }
    }

    /// Output of `bytes` has been handed to libzmq (or will never be).
    pub fn remove(&self, bytes: usize) {
        if let Ok(mut held) = self.held.lock() {
            held.bytes = held.bytes.saturating_sub(bytes);
            if held.bytes <= MAX_HELD {
                self.drained.notify_all();
            }
        }
    }

    /// No output waits until [`Backlog::hold`]: the cell is being stopped.
    pub fn release(&self) {
        if let Ok(mut held) = self.held.lock() {
            held.released = true;
            self.drained.notify_all();
        }
    }

    /// Output waits again while too much is queued (a new cell begins; its first wait
    /// is logged).
    pub fn hold(&self) {
        if let Ok(mut held) = self.held.lock() {
            held.released = false;
            held.said_at = None;
        }
    }

    /// Nothing drains any more: waiting cells go on.
    pub fn close(&self) {
        if let Ok(mut held) = self.held.lock() {
            held.closed = true;
            self.drained.notify_all();
        }
    }

    /// Waits while more than [`MAX_HELD`] bytes of output are queued.
    pub fn wait_for_room(&self) {
        let Ok(mut held) = self.held.lock() else {
            return;
        };
        if held.bytes <= MAX_HELD || held.closed || held.released {
            return;
        }
        if held.said_at.is_none_or(|said| said.elapsed() >= SAY_EVERY) {
            held.said_at = Some(Instant::now());
            log::info!(
                "iopub: a client reads slower than the cell prints; the cell waits for it \
                 ({} MiB of output queued)",
                held.bytes >> 20
            );
        }
        while held.bytes > MAX_HELD && !held.closed && !held.released {
            held = match self.drained.wait_timeout(held, CHECK_EVERY) {
                Ok((held, _)) => held,
                Err(_) => return,
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    /// A writer waiting for room on a thread; the receiver hears when it went on.
    fn writer_waiting(
        backlog: &Arc<Backlog>,
    ) -> (std::thread::JoinHandle<()>, crossbeam_channel::Receiver<()>) {
        let (went_on, went_on_rx) = crossbeam_channel::bounded(1);
        let backlog = backlog.clone();
        let writer = std::thread::spawn(move || {
            backlog.wait_for_room();
            let _ = went_on.send(());
        });
        (writer, went_on_rx)
    }

    #[test]
    fn a_full_backlog_holds_the_writer_until_it_drains() {
        let backlog = Arc::new(Backlog::default());
        backlog.add(MAX_HELD + 1);
        let (writer, went_on_rx) = writer_waiting(&backlog);
        assert!(went_on_rx.recv_timeout(Duration::from_millis(300)).is_err());
        backlog.remove(2);
        assert!(went_on_rx.recv_timeout(Duration::from_secs(10)).is_ok());
        writer.join().unwrap();
    }

    #[test]
    fn a_released_backlog_holds_no_one_until_held_again() {
        let backlog = Arc::new(Backlog::default());
        backlog.add(MAX_HELD + 1);
        let (writer, went_on_rx) = writer_waiting(&backlog);
        backlog.release();
        assert!(went_on_rx.recv_timeout(Duration::from_secs(10)).is_ok());
        writer.join().unwrap();
        backlog.wait_for_room();
        backlog.hold();
        assert!(!backlog.held.lock().unwrap().released);
    }

    #[test]
    fn a_closed_backlog_holds_no_one() {
        let backlog = Backlog::default();
        backlog.add(MAX_HELD * 2);
        backlog.close();
        backlog.wait_for_room();
    }
}
