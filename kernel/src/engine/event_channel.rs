//! The kernel's end of the poll recorder's channel: an abstract Unix socket with a random
//! name, where the engine's process (each one, across restarts) sends what the runtime did
//! during each cell. Only a process of this user is read from.

use super::markers;
use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use std::collections::HashMap;
use std::io::{Read, Write};
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixListener, UnixStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;
use tandem_helpers::kernel_link::events::{self, Event};

/// The events of one cell so far, with the names of the recorder's threads known so far.
#[derive(Debug, Default)]
pub struct CellEvents {
    pub events: Vec<Event>,
    pub thread_names: HashMap<u32, String>,
    /// When the cell's future started (its `CellStarted`), once that came.
    started_at: Option<u64>,
    /// When the kernel asked for the cell: a `CellStarted` before this is an earlier
    /// cell's (all of whose events came late).
    asked_at: u64,
    /// Whether the cell's `CellEnded` came: nothing more of it will.
    pub ended: bool,
}

impl CellEvents {
    /// The events of a cell the kernel asked for at `asked_at` (CLOCK_MONOTONIC ns, the
    /// recorder's clock).
    pub fn asked_at(asked_at: u64) -> CellEvents {
        CellEvents {
            asked_at,
            ..CellEvents::default()
        }
    }

    /// Whether the cell's start came (else nothing that came is known to be the cell's).
    pub fn started(&self) -> bool {
        self.started_at.is_some()
    }

    /// Takes in what came. Only what follows the cell's start is the cell's: a `CellEnded`
    /// before it is an earlier cell's (come late), and events from before its time are
    /// from between cells. (Threads' events come one thread after another, so some of the
    /// cell's may come before its `CellStarted`: they are kept.)
    fn absorb(&mut self, piece: Piece) {
        self.thread_names = piece.thread_names;
        for event in piece.events {
            match event {
                Event::CellStarted { at_ns } if at_ns < self.asked_at => {}
                Event::CellStarted { at_ns } => {
                    self.started_at = Some(at_ns);
                    self.ended = false;
                    self.events
                        .retain(|event| event.at_ns().is_none_or(|at| at >= at_ns));
                }
                Event::CellEnded { .. } if self.started_at.is_none() => {}
                Event::CellEnded { .. } => {
                    self.ended = true;
                    self.events.push(event);
                }
                event if self.too_early(&event) => {}
                event => self.events.push(event),
            }
        }
    }

    fn too_early(&self, event: &Event) -> bool {
        // Before the start, once it came; before the kernel asked for the cell, always.
        let start = self.started_at.unwrap_or(self.asked_at);
        event.at_ns().is_some_and(|at| at < start)
    }
}

/// Events as they arrive: a part of a cell, the recorder sends every 100 ms.
struct Piece {
    events: Vec<Event>,
    thread_names: HashMap<u32, String>,
}

/// Receives the cells' events from the engine's process, and tells it whether to record.
pub struct EventChannel {
    pieces: Receiver<Piece>,
    /// `:timeline on|off`, told to each engine process as it connects.
    recording: Arc<AtomicBool>,
    /// The engine process's connection, to tell it of a change.
    engine: Arc<Mutex<Option<UnixStream>>>,
}

/// What waiting for a cell's events came to.
pub enum Received {
    /// More events came (and maybe the cell's end).
    More,
    /// Nothing came in time.
    Nothing,
    /// The caller's `stop` fired.
    Stopped,
}

impl EventChannel {
    /// Listens on the channel; `None` (cells then draw no event-loop picture) if its random
    /// name is taken.
    pub fn listen() -> Option<EventChannel> {
        let Some(name) = markers::events_channel() else {
            log::warn!("no event-loop pictures: this kernel chose no events channel");
            return None;
        };
        let listener = SocketAddr::from_abstract_name(name)
            .and_then(|address| UnixListener::bind_addr(&address));
        let listener = match listener {
            Ok(listener) => listener,
            Err(error) => {
                log::warn!("no event-loop pictures: cannot listen for the recorder: {error}");
                return None;
            }
        };
        let (to_kernel, pieces) = crossbeam_channel::unbounded();
        let channel = EventChannel {
            pieces,
            recording: Arc::new(AtomicBool::new(true)),
            engine: Arc::new(Mutex::new(None)),
        };
        let (recording, engine) = (channel.recording.clone(), channel.engine.clone());
        std::thread::Builder::new()
            .name("event-channel".into())
            .spawn(move || accept(listener, &to_kernel, &recording, &engine))
            .ok()?;
        Some(channel)
    }

    /// Forgets events still queued from before (the startup snippets, a cell whose events
    /// came too late): called as a cell starts.
    pub fn forget_queued(&self) {
        while self.pieces.try_recv().is_ok() {}
    }

    /// Adds what arrives to `cell` until `deadline`, or until `stop` has a message or is
    /// dropped; returns at the first piece that came.
    pub fn receive(
        &self,
        cell: &mut CellEvents,
        deadline: Instant,
        stop: &Receiver<()>,
    ) -> Received {
        let timeout = deadline.saturating_duration_since(Instant::now());
        crossbeam_channel::select! {
            recv(self.pieces) -> piece => match piece {
                Ok(piece) => {
                    cell.absorb(piece);
                    // Take what else is queued now, so one call catches up.
                    while let Ok(piece) = self.pieces.try_recv() {
                        cell.absorb(piece);
                    }
                    Received::More
                }
                Err(_) => Received::Nothing,
            },
            recv(stop) -> _ => Received::Stopped,
            default(timeout) => Received::Nothing,
        }
    }

    /// Adds what arrives to `cell` until its end came or `deadline` passed.
    pub fn receive_until_ended(&self, cell: &mut CellEvents, deadline: Instant) {
        while !cell.ended {
            let timeout = deadline.saturating_duration_since(Instant::now());
            match self.pieces.recv_timeout(timeout) {
                Ok(piece) => cell.absorb(piece),
                Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => return,
            }
        }
    }

    /// `:timeline on|off`: whether the engine's process records cells from the next one on.
    pub fn set_recording(&self, on: bool) {
        if self.recording.swap(on, Ordering::SeqCst) == on {
            return;
        }
        let mut engine = self.engine.lock().unwrap_or_else(|p| p.into_inner());
        let told = engine
            .as_mut()
            .map(|stream| stream.write_all(&[switch_word(on)]));
        if let Some(Err(_)) = told {
            *engine = None;
        }
    }
}

fn switch_word(on: bool) -> u8 {
    if on {
        events::RECORD_ON
    } else {
        events::RECORD_OFF
    }
}

/// Takes the engine process's connections, one at a time (a restarted process connects
/// anew); a peer of another user is turned away. Each connection is told first whether
/// to record.
fn accept(
    listener: UnixListener,
    to_kernel: &Sender<Piece>,
    recording: &AtomicBool,
    engine: &Mutex<Option<UnixStream>>,
) {
    for stream in listener.incoming() {
        let Ok(mut stream) = stream else { continue };
        if !tandem_helpers::kernel_link::peer_is_this_user(&stream) {
            log::warn!("turned away a process of another user on the events channel");
            continue;
        }
        {
            let mut engine = engine.lock().unwrap_or_else(|p| p.into_inner());
            let word = switch_word(recording.load(Ordering::SeqCst));
            if stream.write_all(&[word]).is_err() {
                continue;
            }
            *engine = stream.try_clone().ok();
        }
        read_pieces(&stream, to_kernel);
        // Gone, or it sent what cannot be read: it is not waited for (its sends fail at once
        // instead of filling the socket), and reconnects at its next cell.
        *engine.lock().unwrap_or_else(|p| p.into_inner()) = None;
        let _ = stream.shutdown(std::net::Shutdown::Both);
    }
}

/// Decodes events and hands them on as they come, until the connection ends.
fn read_pieces(mut stream: &UnixStream, to_kernel: &Sender<Piece>) {
    let mut pending = Vec::new();
    let mut thread_names = HashMap::new();
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        let read = match stream.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(read) => read,
        };
        pending.extend_from_slice(&chunk[..read]);
        let mut used = 0;
        let mut piece = Vec::new();
        loop {
            match events::decode(&pending[used..]) {
                Ok(Some((event, size))) => {
                    used += size;
                    if let Event::ThreadNamed { thread, name } = &event {
                        thread_names.insert(*thread, name.clone());
                    }
                    let ended = matches!(event, Event::CellEnded { .. });
                    piece.push(event);
                    if ended && !hand_on(to_kernel, &mut piece, &thread_names) {
                        return;
                    }
                }
                Ok(None) => break,
                Err(error) => {
                    log::warn!("the events channel broke: {error}");
                    return;
                }
            }
        }
        if !piece.is_empty() && !hand_on(to_kernel, &mut piece, &thread_names) {
            return;
        }
        pending.drain(..used);
    }
}

fn hand_on(
    to_kernel: &Sender<Piece>,
    events: &mut Vec<Event>,
    thread_names: &HashMap<u32, String>,
) -> bool {
    let piece = Piece {
        events: std::mem::take(events),
        thread_names: thread_names.clone(),
    };
    to_kernel.send(piece).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn piece(events: Vec<Event>) -> Piece {
        Piece {
            events,
            thread_names: HashMap::new(),
        }
    }

    fn poll(task: u64, at_ns: u64) -> Event {
        Event::PollStarted {
            task,
            at_ns,
            thread: 1,
        }
    }

    #[test]
    fn only_what_follows_the_cells_start_is_the_cells() {
        let mut cell = CellEvents::asked_at(80);
        // An earlier cell's end, come late, and an event of this cell's from a worker's
        // ring, sent before the cell thread's ring that holds the start.
        cell.absorb(piece(vec![
            poll(3, 50),
            Event::CellEnded {
                at_ns: 60,
                dropped: 0,
            },
            poll(4, 120),
        ]));
        assert!(!cell.ended, "an earlier cell's end");
        cell.absorb(piece(vec![Event::CellStarted { at_ns: 100 }, poll(5, 90)]));
        cell.absorb(piece(vec![
            poll(6, 130),
            Event::CellEnded {
                at_ns: 200,
                dropped: 0,
            },
        ]));
        assert!(cell.ended);
        let tasks: Vec<u64> = (cell.events.iter())
            .filter_map(|event| match event {
                Event::PollStarted { task, .. } => Some(*task),
                _ => None,
            })
            .collect();
        assert_eq!(tasks, [4, 6], "before the start in time is between cells");

        // All of an earlier cell, come late: its start is before the kernel asked.
        let mut cell = CellEvents::asked_at(1_000);
        cell.absorb(piece(vec![
            Event::CellStarted { at_ns: 500 },
            poll(7, 600),
            Event::CellEnded {
                at_ns: 700,
                dropped: 0,
            },
        ]));
        assert!(!cell.started() && !cell.ended);
    }
}
