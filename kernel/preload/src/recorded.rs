//! The events the running cell recorded so far, encoded: a ring of bytes per thread, which
//! only that thread writes and which is read without stopping it, so recording a poll takes
//! no lock; counted against a limit per cell; taken, all threads' at once, to be sent.

use std::cell::Cell;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use tandem_helpers::kernel_link::ring::Ring;
use tandem_helpers::kernel_link::{events, monotonic_ns};

/// Events kept per cell; past this they are counted, not kept (give or take a few hundred:
/// threads add their counts in batches).
const MOST_EVENTS: u64 = 200_000;
/// A thread adds its count of events to the cell's this many at a time.
const COUNT_BATCH: u64 = 256;
/// The name the events give the thread that runs cells (the process's main thread).
const CELL_THREAD: &str = "cell thread";
/// Bytes in each thread's ring (about 12,000 poll events); a full ring is emptied by its
/// own thread.
const RING_BYTES: usize = 256 * 1024;

/// Events kept in this cell (all threads, as they last added their batch). Read by every
/// event and written once a batch: threads that count what they drop write their own.
static KEPT: AtomicU64 = AtomicU64::new(0);
/// When the running cell started (its `CellStarted`).
static CELL_START: AtomicU64 = AtomicU64::new(0);

/// Every thread's ring, and the bytes taken out of rings that filled up: read by whoever
/// holds the lock (one reader at a time).
struct Registry {
    rings: Vec<Arc<ThreadRing>>,
    emptied: Vec<u8>,
}

/// A thread's ring, and the events it did not keep since the cell started.
struct ThreadRing {
    ring: Ring,
    dropped: AtomicU64,
}

static REGISTRY: Mutex<Registry> = Mutex::new(Registry {
    rings: Vec::new(),
    emptied: Vec::new(),
});

/// Every thread named so far: named again in each cell's events, so that no cell lacks a
/// name (the events of a cell can be cut short at the limit, or a connection lost).
static NAMES: Mutex<Vec<(u32, String)>> = Mutex::new(Vec::new());

/// What a thread keeps for recording (one thread-local: each is a lookup in a shared
/// library).
struct Local {
    ring: Arc<ThreadRing>,
    /// Where an event is encoded before it goes into the ring.
    scratch: Cell<Vec<u8>>,
    /// The thread's number in the events; 0 until it is named.
    number: Cell<u32>,
    /// Events kept that are not yet added to [`KEPT`].
    uncounted: Cell<u64>,
    /// When this thread's last event happened.
    last_at: Cell<u64>,
    /// The task this thread is polling ([`NO_TASK`]: none), and whether tokio reported
    /// its end during the poll (sent with the poll's end).
    polling: Cell<u64>,
    ended_in_poll: Cell<bool>,
}

/// No task: tokio's ids count up from 1, and 0 is the cell's future.
const NO_TASK: u64 = u64::MAX;

thread_local! {
    static LOCAL: Local = {
        let ring = Arc::new(ThreadRing {
            ring: Ring::new(RING_BYTES),
            dropped: AtomicU64::new(0),
        });
        lock(&REGISTRY).rings.push(ring.clone());
        Local {
            ring,
            scratch: Cell::new(Vec::with_capacity(256)),
            number: Cell::new(0),
            uncounted: Cell::new(0),
            last_at: Cell::new(0),
            polling: Cell::new(NO_TASK),
            ended_in_poll: Cell::new(false),
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

/// Records one event, unless the cell's limit is reached: `encode(bytes, thread, at)`
/// writes it.
pub(crate) fn record(at: At, encode: impl FnOnce(&mut Vec<u8>, u32, u64)) {
    with_local(at, |local, thread, at| {
        let mut scratch = local.scratch.take();
        scratch.clear();
        encode(&mut scratch, thread, at);
        let kept = keep(local, &scratch);
        local.scratch.set(scratch);
        kept
    });
}

/// Records a poll's start or end, or a task's end (the events there are most of: written
/// straight into the ring). tokio reports a task's end inside its last poll: that end is
/// held back and goes with the poll's end, as one event.
pub(crate) fn record_task_event(what: events::TaskEvent, task: u64) {
    use events::TaskEvent::{Ended, LastPollEnded, PollEnded, PollStarted};
    let _ = LOCAL.try_with(|local| {
        let (what, at) = match what {
            PollStarted => {
                local.polling.set(task);
                local.ended_in_poll.set(false);
                (PollStarted, At::Now)
            }
            Ended if local.polling.get() == task => {
                local.ended_in_poll.set(true);
                return;
            }
            // Its time is that of the thread's last event (its last poll's end, mostly).
            Ended => (Ended, At::Last),
            PollEnded | LastPollEnded => {
                // A task's end comes at the very end of its poll, after any poll nested in
                // it (a runtime the task runs): `ended` can only be this task's.
                let polling = local.polling.replace(NO_TASK);
                let ended = local.ended_in_poll.replace(false) && polling == task;
                let last = ended || what == LastPollEnded;
                (if last { LastPollEnded } else { PollEnded }, At::Now)
            }
        };
        write_local(local, at, |local, thread, at| {
            keep(local, &events::task_event(what, task, at, thread))
        });
    });
}

/// Records a task's spawn from the place numbered `place` (fixed size, like polls).
pub(crate) fn record_spawned(task: u64, place: u32) {
    // Its own time: a poll that blocks before it spawns must not look as if the new task
    // had been waiting all along.
    with_local(At::Now, |local, _, at| {
        keep(local, &events::spawned(task, at, place))
    });
}

/// When the running cell started: places are named again in each cell's events.
pub(crate) fn cell_start() -> u64 {
    CELL_START.load(Ordering::Relaxed)
}

/// Hands `write(local, thread, at)` this thread's recording state, the thread's number and
/// the event's time, unless the cell's limit is reached; `write` says whether it kept it.
#[inline]
fn with_local(at: At, write: impl FnOnce(&Local, u32, u64) -> bool) {
    // A thread being torn down has no ring any more: its last events are not kept.
    let _ = LOCAL.try_with(|local| write_local(local, at, write));
}

/// [`with_local`], with the thread's state at hand.
#[inline]
fn write_local(local: &Local, at: At, write: impl FnOnce(&Local, u32, u64) -> bool) {
    {
        if KEPT.load(Ordering::Relaxed) >= MOST_EVENTS {
            local.ring.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let at = match at {
            At::Now => monotonic_ns(),
            // Not before the cell's start (a thread with no event in this cell yet).
            At::Last => local.last_at.get().max(CELL_START.load(Ordering::Relaxed)),
            At::Given(at) => at,
        };
        local.last_at.set(at);
        let thread = match local.number.get() {
            0 => name_this_thread(local),
            known => known,
        };
        if !write(local, thread, at) {
            local.ring.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let uncounted = local.uncounted.get() + 1;
        if uncounted == COUNT_BATCH {
            KEPT.fetch_add(COUNT_BATCH, Ordering::Relaxed);
            local.uncounted.set(0);
        } else {
            local.uncounted.set(uncounted);
        }
    }
}

/// Puts `event` in this thread's ring; when it is full, the thread empties it first (a
/// lock once per ring-full, ~12,000 events). `false` if it still does not fit.
#[inline]
fn keep(local: &Local, event: &[u8]) -> bool {
    let ring = &local.ring.ring;
    // SAFETY: only this thread writes its ring (it is reached through its thread-local).
    let kept = unsafe { ring.push(event) };
    kept || {
        let mut registry = lock(&REGISTRY);
        let Registry { emptied, .. } = &mut *registry;
        // SAFETY: reads happen under REGISTRY's lock, held here; this thread writes it.
        unsafe {
            ring.drain_into(emptied);
            ring.push(event)
        }
    }
}

/// Numbers this thread and names it in its events (the number goes with every event).
fn name_this_thread(local: &Local) -> u32 {
    static NEXT: AtomicU32 = AtomicU32::new(1);
    let number = NEXT.fetch_add(1, Ordering::Relaxed);
    local.number.set(number);
    // Named as the helpers' timeline names it (`tokio worker #7`, `tokio blocking pool
    // #9`), so that one thread has one name in both pictures.
    let name = match crate::runtime::runs_cells() {
        true => CELL_THREAD.to_owned(),
        false => tandem_helpers::spans::thread_label(),
    };
    let mut named = Vec::new();
    events::encode_thread_named(&mut named, number, &name);
    keep(local, &named);
    lock(&NAMES).push((number, name));
    number
}

/// Every thread's events so far, taken (threads that ended are let go once read). The
/// threads' events follow one another, not interleaved: the kernel orders them by time.
pub(crate) fn take() -> Vec<u8> {
    let mut registry = lock(&REGISTRY);
    let Registry { rings, emptied } = &mut *registry;
    let mut taken = std::mem::take(emptied);
    rings.retain(|thread| {
        // Whether its thread is alive, before the last read: a thread that pushes after the
        // read and then ends is read next time.
        let alive = Arc::strong_count(thread) > 1;
        // SAFETY: reads happen under REGISTRY's lock, held here.
        unsafe { thread.ring.drain_into(&mut taken) };
        alive
    });
    taken
}

/// As a cell starts: forgets what was recorded since the last cell, restarts the count,
/// and names every thread known again (the cell's events must name their threads).
pub(crate) fn forget() {
    drop(take());
    KEPT.store(0, Ordering::Relaxed);
    take_dropped();
    // The kernel keeps nothing it received before this.
    let start = monotonic_ns();
    CELL_START.store(start, Ordering::Relaxed);
    record(At::Given(start), |bytes, _, at| {
        events::encode_cell_started(bytes, at)
    });
    let names = lock(&NAMES).clone();
    for (number, name) in &names {
        record(At::Last, |bytes, _, _| {
            events::encode_thread_named(bytes, *number, name)
        });
    }
}

/// How many events the cell did not keep, since it started (the count restarts).
pub(crate) fn take_dropped() -> u64 {
    let registry = lock(&REGISTRY);
    let rings = registry.rings.iter();
    rings
        .map(|ring| ring.dropped.swap(0, Ordering::Relaxed))
        .sum()
}
