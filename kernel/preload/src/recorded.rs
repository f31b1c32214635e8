//! The events the running cell recorded so far, encoded: a buffer per thread, so that no
//! worker waits for another to record a poll, counted against a limit per cell, and taken
//! (all threads' at once) to be sent to the kernel. Each thread is numbered and named once.

use std::cell::Cell;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use tandem_helpers::kernel_link::{events, monotonic_ns};

/// Events kept per cell; past this they are counted, not kept (give or take a few hundred:
/// threads add their counts in batches).
const MOST_EVENTS: u64 = 200_000;
/// A thread adds its count of events to the cell's this many at a time.
const COUNT_BATCH: u64 = 256;
/// The name the events give the thread that runs cells (the process's main thread).
const CELL_THREAD: &str = "cell thread";

/// Events kept in this cell (all threads, as they last added their batch), and dropped.
static KEPT: AtomicU64 = AtomicU64::new(0);
static DROPPED: AtomicU64 = AtomicU64::new(0);

/// Every thread's buffer (a thread that ended leaves its last events to be taken).
static BUFFERS: Mutex<Vec<Arc<Mutex<Vec<u8>>>>> = Mutex::new(Vec::new());

/// Every thread named so far: named again in each cell's events, so that no cell lacks a
/// name (the events of a cell can be cut short at the limit, or a connection lost).
static NAMES: Mutex<Vec<(u32, String)>> = Mutex::new(Vec::new());

/// What a thread keeps for recording (one thread-local: each is a lookup in a shared
/// library).
struct Local {
    buffer: Arc<Mutex<Vec<u8>>>,
    /// The thread's number in the events; 0 until it is named.
    number: Cell<u32>,
    /// Events kept that are not yet added to [`KEPT`].
    uncounted: Cell<u64>,
    /// When this thread's last event happened.
    last_at: Cell<u64>,
}

thread_local! {
    static LOCAL: Local = {
        let buffer = Arc::new(Mutex::new(Vec::new()));
        lock(&BUFFERS).push(buffer.clone());
        Local {
            buffer,
            number: Cell::new(0),
            uncounted: Cell::new(0),
            last_at: Cell::new(0),
        }
    };
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

/// When an event happened.
#[derive(Clone, Copy)]
pub(crate) enum At {
    /// Now (the clock is read: about 50 ns).
    Now,
    /// With this thread's last event: for one that follows another at once (a task's end
    /// after its last poll; a spawn, inside the poll that spawns).
    Last,
    /// At a time already read (it becomes the thread's last).
    Given(u64),
}

/// Records one event in this thread's buffer, unless the cell's limit is reached:
/// `encode(bytes, thread, at)` writes it.
pub(crate) fn record(at: At, encode: impl FnOnce(&mut Vec<u8>, u32, u64)) {
    if KEPT.load(Ordering::Relaxed) >= MOST_EVENTS {
        DROPPED.fetch_add(1, Ordering::Relaxed);
        return;
    }
    // A thread being torn down has no buffer any more: its last events are not kept.
    let _ = LOCAL.try_with(|local| {
        let at = match at {
            At::Now => monotonic_ns(),
            At::Last => local.last_at.get(),
            At::Given(at) => at,
        };
        local.last_at.set(at);
        let mut bytes = lock(&local.buffer);
        let thread = match local.number.get() {
            0 => name_this_thread(local, &mut bytes),
            known => known,
        };
        encode(&mut bytes, thread, at);
        drop(bytes);
        let uncounted = local.uncounted.get() + 1;
        if uncounted == COUNT_BATCH {
            KEPT.fetch_add(COUNT_BATCH, Ordering::Relaxed);
            local.uncounted.set(0);
        } else {
            local.uncounted.set(uncounted);
        }
    });
}

/// Numbers this thread and names it in its events (the number goes with every event).
fn name_this_thread(local: &Local, bytes: &mut Vec<u8>) -> u32 {
    static NEXT: AtomicU32 = AtomicU32::new(1);
    let number = NEXT.fetch_add(1, Ordering::Relaxed);
    local.number.set(number);
    let thread = std::thread::current();
    let name = match thread.name() {
        _ if crate::runtime::runs_cells() => CELL_THREAD.to_owned(),
        Some(name) => name.to_owned(),
        None => format!("{:?}", thread.id()),
    };
    events::encode_thread_named(bytes, number, &name);
    lock(&NAMES).push((number, name));
    number
}

/// Every thread's events so far, taken (threads that ended and left nothing are let go).
/// The threads' events follow one another, not interleaved: the kernel orders them by time.
pub(crate) fn take() -> Vec<u8> {
    let mut buffers = lock(&BUFFERS);
    let mut taken = Vec::new();
    buffers.retain(|buffer| {
        taken.append(&mut lock(buffer));
        Arc::strong_count(buffer) > 1
    });
    taken
}

/// As a cell starts: forgets what was recorded since the last cell, restarts the count,
/// and names every thread known again (the cell's events must name their threads).
pub(crate) fn forget() {
    drop(take());
    KEPT.store(0, Ordering::Relaxed);
    DROPPED.store(0, Ordering::Relaxed);
    let names = lock(&NAMES).clone();
    for (number, name) in &names {
        record(At::Last, |bytes, _, _| {
            events::encode_thread_named(bytes, *number, name)
        });
    }
}

/// How many events the cell did not keep, since it started (the count restarts).
pub(crate) fn take_dropped() -> u64 {
    DROPPED.swap(0, Ordering::Relaxed)
}
