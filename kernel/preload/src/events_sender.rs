//! The poll recorder's line to the kernel: what the running cell recorded so far goes there
//! every 100 ms (the kernel draws it live) and the rest as the cell ends. The kernel answers
//! on the same line whether to record at all (`:timeline off|on`).

use std::io::{ErrorKind, Read, Write};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard, Once};
use std::time::Duration;
use tandem_helpers::kernel_link::{self, events};

/// How often a running cell's events so far are sent.
const SEND_EVERY: Duration = Duration::from_millis(100);
/// The longest a send waits for a kernel that stopped reading.
const SEND_WITHIN: Duration = Duration::from_secs(2);
/// How long a new connection waits for the kernel's first word: whether to record.
const SWITCH_WITHIN: Duration = Duration::from_millis(500);

/// The connection to the kernel, once made; held while events are taken and sent, so that
/// the sending thread and the cell's end keep the events in order.
static CHANNEL: Mutex<Option<UnixStream>> = Mutex::new(None);
/// Whether a cell's future is running (the sending thread sends only then).
static CELL_RUNNING: AtomicBool = AtomicBool::new(false);
/// Whether the kernel wants the cells' events (`:timeline on`, the default).
static RECORDING: AtomicBool = AtomicBool::new(true);

/// Whether events are recorded at all.
pub(crate) fn recording() -> bool {
    RECORDING.load(Ordering::Relaxed)
}

/// As a cell's future starts: learns whether the kernel wants it recorded.
pub(crate) fn learn_switch() {
    let mut channel = connected();
    if let Some(stream) = channel.as_mut() {
        if !read_switch(stream, false) {
            *channel = None;
        }
    }
}

/// Sends what `take` gives (the events so far) every [`SEND_EVERY`] until the cell ends.
pub(crate) fn start_sending(take: fn() -> Vec<u8>) {
    CELL_RUNNING.store(true, Ordering::SeqCst);
    static SENDER: Once = Once::new();
    SENDER.call_once(|| {
        let sender = std::thread::Builder::new()
            .name("tandem-events".into())
            .spawn(move || loop {
                std::thread::sleep(SEND_EVERY);
                send_while_running(take);
            });
        // Without it the picture is drawn once, at the cell's end.
        drop(sender);
    });
}

/// As the cell's future ends: sends what `take` gives (the rest, and the cell's end).
pub(crate) fn cell_ended(take: impl FnOnce() -> Vec<u8>) {
    CELL_RUNNING.store(false, Ordering::SeqCst);
    send(take);
}

/// The sending thread's send: only while the cell runs (checked under the lock, so that
/// nothing follows the cell's end).
fn send_while_running(take: fn() -> Vec<u8>) {
    if CELL_RUNNING.load(Ordering::SeqCst) {
        let channel = connected();
        if CELL_RUNNING.load(Ordering::SeqCst) {
            send_on(channel, take);
        }
    }
}

fn send(take: impl FnOnce() -> Vec<u8>) {
    send_on(connected(), take);
}

fn send_on(mut channel: MutexGuard<'static, Option<UnixStream>>, take: impl FnOnce() -> Vec<u8>) {
    let bytes = take();
    if bytes.is_empty() {
        return;
    }
    let failed = channel
        .as_mut()
        .is_some_and(|stream| stream.write_all(&bytes).is_err());
    if failed {
        *channel = None; // the kernel went away or restarted its reader: try again next time
    }
}

/// The connection, made now if there is none (and none if this process runs outside a
/// kernel, or the process listening is not this user's).
fn connected() -> MutexGuard<'static, Option<UnixStream>> {
    let mut channel = CHANNEL.lock().unwrap_or_else(|p| p.into_inner());
    if channel.is_none() {
        *channel = connect();
    }
    channel
}

fn connect() -> Option<UnixStream> {
    use std::os::linux::net::SocketAddrExt;
    let name = kernel_link::events_channel_name()?;
    let address = std::os::unix::net::SocketAddr::from_abstract_name(name).ok()?;
    let mut stream = UnixStream::connect_addr(&address).ok()?;
    stream.set_write_timeout(Some(SEND_WITHIN)).ok()?;
    if !kernel_link::peer_is_this_user(&stream) {
        return None;
    }
    // The kernel's first word on a connection says whether to record.
    read_switch(&mut stream, true).then_some(stream)
}

/// Reads the kernel's words on the connection (each [`events::RECORD_ON`] or
/// [`events::RECORD_OFF`]; the last one counts): those waiting, or (`wait`) at least one.
/// `false` if the kernel closed its end.
fn read_switch(stream: &mut UnixStream, wait: bool) -> bool {
    let ready = if wait {
        stream.set_read_timeout(Some(SWITCH_WITHIN))
    } else {
        stream.set_nonblocking(true)
    };
    if ready.is_err() {
        return false;
    }
    let mut words = [0u8; 64];
    let open = loop {
        match stream.read(&mut words) {
            Ok(0) => break false,
            Ok(read) => {
                match words[..read].last() {
                    Some(&events::RECORD_OFF) => RECORDING.store(false, Ordering::Relaxed),
                    Some(&events::RECORD_ON) => RECORDING.store(true, Ordering::Relaxed),
                    _ => {}
                }
                // More may wait; the words after the first are never waited for.
                if stream.set_nonblocking(true).is_err() {
                    break false;
                }
            }
            Err(error) if error.kind() == ErrorKind::Interrupted => {}
            Err(error) => {
                break matches!(error.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut);
            }
        }
    };
    open && stream.set_nonblocking(false).is_ok()
}
