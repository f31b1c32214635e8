//! The kernel's end of the poll recorder's channel: an abstract Unix socket with a random
//! name, where the engine's process (each one, across restarts) sends what the runtime did
//! during each cell. Only a process of this user is read from.

use super::markers;
use crossbeam_channel::{Receiver, Sender};
use std::collections::HashMap;
use std::io::Read;
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixListener, UnixStream};
use std::time::Duration;
use tandem_helpers::kernel_link::events::{self, Event};

/// The events of one cell, up to and including its `CellEnded`, with the names of the
/// recorder's threads known so far.
pub struct CellEvents {
    pub events: Vec<Event>,
    pub thread_names: HashMap<u32, String>,
}

/// Receives the cells' events from the engine's process.
pub struct EventChannel {
    cells: Receiver<CellEvents>,
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
        let (to_kernel, cells) = crossbeam_channel::unbounded();
        std::thread::Builder::new()
            .name("event-channel".into())
            .spawn(move || accept(listener, to_kernel))
            .ok()?;
        Some(EventChannel { cells })
    }

    /// Forgets events still queued from before (the startup snippets, a cell whose events
    /// came too late): called as a cell starts.
    pub fn forget_queued(&self) {
        while self.cells.try_recv().is_ok() {}
    }

    /// The events of the cell that just ran, waiting at most `wait` for them.
    pub fn cell_events(&self, wait: Duration) -> Option<CellEvents> {
        self.cells.recv_timeout(wait).ok()
    }
}

/// Takes the engine process's connections, one at a time (a restarted process connects
/// anew); a peer of another user is turned away.
fn accept(listener: UnixListener, to_kernel: Sender<CellEvents>) {
    for stream in listener.incoming() {
        let Ok(stream) = stream else { continue };
        if !tandem_helpers::kernel_link::peer_is_this_user(&stream) {
            log::warn!("turned away a process of another user on the events channel");
            continue;
        }
        read_cells(stream, &to_kernel);
    }
}

/// Decodes events and hands them on a cell at a time, until the connection ends.
fn read_cells(mut stream: UnixStream, to_kernel: &Sender<CellEvents>) {
    let mut pending = Vec::new();
    let mut cell = Vec::new();
    let mut thread_names = HashMap::new();
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        let read = match stream.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(read) => read,
        };
        pending.extend_from_slice(&chunk[..read]);
        let mut used = 0;
        loop {
            match events::decode(&pending[used..]) {
                Ok(Some((event, size))) => {
                    used += size;
                    if let Event::ThreadNamed { thread, name } = &event {
                        thread_names.insert(*thread, name.clone());
                    }
                    let ended = matches!(event, Event::CellEnded { .. });
                    cell.push(event);
                    if ended {
                        let events = CellEvents {
                            events: std::mem::take(&mut cell),
                            thread_names: thread_names.clone(),
                        };
                        if to_kernel.send(events).is_err() {
                            return;
                        }
                    }
                }
                Ok(None) => break,
                Err(error) => {
                    log::warn!("the events channel broke: {error}");
                    return;
                }
            }
        }
        pending.drain(..used);
    }
}
