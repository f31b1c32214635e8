//! Plumbing, not part of the lesson: how the helpers reach the tandem kernel that runs
//! them. It depends on nothing else in the crate; the files learners read call it.
//!
//! The kernel's child process (where cells run) exports a [`CellState`] by name; the
//! helpers find it with `dlsym` and read from it when the running cell started and whether
//! the learner pressed interrupt. What the helpers tell the kernel (a finished task, for
//! the timeline) goes out as a marker line on stdout, keyed with the kernel's secret so
//! that printed data cannot forge one. Outside tandem (doctests, a plain program) there is
//! no link: every function here then says so, and nothing is printed.

pub mod events;
pub mod ring;

use std::ffi::CStr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::OnceLock;

/// State the kernel's child process shares with the helpers. The child exports one under
/// [`CELL_STATE_SYMBOL`].
#[repr(C)]
pub struct CellState {
    /// CLOCK_MONOTONIC nanoseconds at which the running cell started.
    started_at_ns: AtomicU64,
    /// How many cells this process has started.
    cells: AtomicU64,
    /// Set when the kernel asks the running cell to stop; cleared when a cell starts.
    interrupt: AtomicBool,
    /// How many cells' futures the preloaded runtime has run (a cell of items only, a
    /// `fn` or a `struct`, runs none: the kernel then waits for no runtime events).
    futures_run: AtomicU64,
    /// Whether a cell's future is running now: a helper task that ends when none is (one
    /// spawned and never awaited, still going after its cell's code returned) is no
    /// cell's.
    future_running: AtomicBool,
    /// The kernel's secret for this process's marker lines (see [`marker_prefix_for`]),
    /// set before any cell runs.
    marker_key: [AtomicU64; 2],
}

impl CellState {
    pub const fn new() -> CellState {
        CellState {
            started_at_ns: AtomicU64::new(0),
            cells: AtomicU64::new(0),
            interrupt: AtomicBool::new(false),
            futures_run: AtomicU64::new(0),
            future_running: AtomicBool::new(false),
            marker_key: [AtomicU64::new(0), AtomicU64::new(0)],
        }
    }

    /// The child calls this once, before any cell runs, with the kernel's marker key.
    pub fn set_marker_key(&self, key: u128) {
        self.marker_key[0].store((key >> 64) as u64, Ordering::SeqCst);
        self.marker_key[1].store(key as u64, Ordering::SeqCst);
    }

    fn marker_key(&self) -> u128 {
        (u128::from(self.marker_key[0].load(Ordering::SeqCst)) << 64)
            | u128::from(self.marker_key[1].load(Ordering::SeqCst))
    }

    /// The child calls this as a cell starts running.
    pub fn cell_started(&self) {
        self.interrupt.store(false, Ordering::SeqCst);
        self.started_at_ns.store(monotonic_ns(), Ordering::SeqCst);
        self.cells.fetch_add(1, Ordering::SeqCst);
    }

    /// How many cells' futures have run so far (see [`cell_future_started`]).
    pub fn futures_run(&self) -> u64 {
        self.futures_run.load(Ordering::SeqCst)
    }

    /// The child's signal handler calls this: one atomic store, async-signal-safe.
    pub fn request_interrupt(&self) {
        self.interrupt.store(true, Ordering::SeqCst);
    }
}

impl Default for CellState {
    fn default() -> Self {
        CellState::new()
    }
}

/// The name under which the kernel's child process exports its [`CellState`].
pub const CELL_STATE_SYMBOL: &CStr = c"TANDEM_CELL_STATE";

fn linked() -> Option<&'static CellState> {
    static LINK: OnceLock<usize> = OnceLock::new();
    let address = *LINK.get_or_init(|| {
        // SAFETY: dlsym with a NUL-terminated name; the default scope is always valid.
        unsafe { libc::dlsym(libc::RTLD_DEFAULT, CELL_STATE_SYMBOL.as_ptr()) as usize }
    });
    // SAFETY: when present, the symbol is the kernel's `static TANDEM_CELL_STATE:
    // CellState`, which lives as long as the process; the layout is `repr(C)`.
    (address != 0).then(|| unsafe { &*(address as *const CellState) })
}

/// The preloaded runtime calls this as it starts a cell's future.
pub fn cell_future_started() {
    if let Some(state) = linked() {
        state.futures_run.fetch_add(1, Ordering::SeqCst);
        state.future_running.store(true, Ordering::SeqCst);
    }
}

/// The preloaded runtime calls this as a cell's future ends (returned or panicked).
pub fn cell_future_ended() {
    if let Some(state) = linked() {
        state.future_running.store(false, Ordering::SeqCst);
    }
}

/// Inside tandem, whether the running cell's code has returned (its future ended), so
/// that what ends now is left over from it.
pub(crate) fn cell_code_returned() -> bool {
    linked().is_some_and(|state| !state.future_running.load(Ordering::SeqCst))
}

/// Whether the helpers run inside a tandem kernel.
pub fn in_tandem() -> bool {
    linked().is_some()
}

/// Whether the kernel asked the running cell to stop.
pub fn interrupt_requested() -> bool {
    linked().is_some_and(|state| state.interrupt.load(Ordering::SeqCst))
}

/// The running cell's number and start (monotonic ns), inside tandem.
pub(crate) fn current_cell() -> Option<(u64, u64)> {
    let state = linked()?;
    let started = state.started_at_ns.load(Ordering::SeqCst);
    (started != 0).then(|| (state.cells.load(Ordering::SeqCst), started))
}

/// Which cell is running (0 outside tandem).
pub(crate) fn cell_number() -> u64 {
    current_cell().map_or(0, |(cell, _)| cell)
}

/// CLOCK_MONOTONIC in nanoseconds (the clock `std::time::Instant` uses on Linux), so the
/// kernel's child and the helpers agree on it.
pub fn monotonic_ns() -> u64 {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes into the timespec we pass.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut now) };
    now.tv_sec as u64 * 1_000_000_000 + now.tv_nsec as u64
}

/// Lines printed for the kernel start with this, the kernel's secret `key` for the process
/// in it, which printed data cannot know: a scraped page or a file that holds such a line
/// stays text. The kernel takes marked lines out of the cell's output.
pub fn marker_prefix_for(key: u128) -> String {
    format!("\u{1f}TANDEM-{key:032x} ")
}

/// The prefix of this process's marker lines, inside tandem.
fn marker_prefix() -> Option<&'static str> {
    static PREFIX: OnceLock<String> = OnceLock::new();
    let state = linked()?;
    Some(PREFIX.get_or_init(|| marker_prefix_for(state.marker_key())))
}

/// The variable that names the kernel's channel for the poll recorder's events, set by the
/// kernel for the engine's process.
pub const EVENTS_CHANNEL_VARIABLE: &str = "TANDEM_EVENTS_CHANNEL";

/// The name of the kernel's channel for the poll recorder's events, inside tandem: an
/// abstract Unix socket with a random name of its own. Abstract names are public (any
/// user can list them), so the name is no secret, and nothing else is derived from it:
/// the two sides check that the other is the same user.
pub fn events_channel_name() -> Option<String> {
    linked()?;
    std::env::var(EVENTS_CHANNEL_VARIABLE).ok()
}

/// The process at the other end of a Unix socket and its user, as the kernel reports them
/// (`SO_PEERCRED`; for a listener: the process that made it listen).
pub fn peer_credentials(stream: &std::os::unix::net::UnixStream) -> Option<libc::ucred> {
    use std::os::fd::AsRawFd;
    let mut credentials = libc::ucred {
        pid: 0,
        uid: 0,
        gid: 0,
    };
    let mut size = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
    // SAFETY: getsockopt writes at most `size` bytes into `credentials`.
    let read = unsafe {
        libc::getsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            (&mut credentials as *mut libc::ucred).cast(),
            &mut size,
        )
    };
    (read == 0 && credentials.pid > 0).then_some(credentials)
}

/// Whether the process at the other end of `stream` runs as this process's user.
pub fn peer_is_this_user(stream: &std::os::unix::net::UnixStream) -> bool {
    // SAFETY: getuid cannot fail.
    peer_credentials(stream).is_some_and(|peer| peer.uid == unsafe { libc::getuid() })
}

/// How the preloaded crate puts the poll recorder's hooks on a runtime (it depends on the
/// helpers, so they cannot name it): given once, used by the runtimes the helpers build.
static RUNTIME_HOOKS: std::sync::OnceLock<fn(&mut tokio::runtime::Builder)> =
    std::sync::OnceLock::new();

/// The preloaded crate's poll recorder gives its hooks (once; later calls change nothing).
pub fn set_runtime_hooks(attach: fn(&mut tokio::runtime::Builder)) {
    let _ = RUNTIME_HOOKS.set(attach);
}

/// Puts the poll recorder's hooks on `builder`, if there is a recorder (inside tandem).
pub(crate) fn attach_runtime_hooks(builder: &mut tokio::runtime::Builder) {
    if let Some(attach) = RUNTIME_HOOKS.get() {
        attach(builder);
    }
}

/// `<marker prefix>span <json>`: a helper task finished (a `spans::Span`).
pub const SPAN_MARKER: &str = "span";

/// `<marker prefix>display-in-place <json>`: a display with an id, shown or updated; the
/// JSON is a [`DisplayInPlace`].
pub const DISPLAY_IN_PLACE_MARKER: &str = "display-in-place";

/// What a `display::Handle` asks the kernel to show.
#[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct DisplayInPlace {
    pub id: String,
    /// Whether it replaces what the id showed before (else it is shown anew).
    pub update: bool,
    /// Mime type to content.
    pub data: serde_json::Map<String, serde_json::Value>,
}

/// Tells the kernel something (`kind`, then `payload` on one line); false outside tandem.
pub(crate) fn tell_kernel(kind: &str, payload: &str) -> bool {
    let Some(prefix) = marker_prefix() else {
        return false;
    };
    println!("{prefix}{kind} {payload}");
    true
}

/// Shows `content` (of type `mime`) as the display `id`, or replaces what it showed;
/// false outside tandem.
pub(crate) fn show_in_place(id: &str, update: bool, mime: &str, content: &str) -> bool {
    let mut data = serde_json::Map::new();
    data.insert(mime.to_owned(), content.into());
    let display = DisplayInPlace {
        id: id.to_owned(),
        update,
        data,
    };
    match serde_json::to_string(&display) {
        Ok(json) => tell_kernel(DISPLAY_IN_PLACE_MARKER, &json),
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outside_tandem_there_is_no_link_and_no_interrupt() {
        assert!(!in_tandem());
        assert!(!interrupt_requested());
        assert_eq!(cell_number(), 0);
    }

    #[test]
    fn a_started_cell_clears_the_interrupt() {
        let state = CellState::new();
        state.request_interrupt();
        assert!(state.interrupt.load(Ordering::SeqCst));
        state.cell_started();
        assert!(!state.interrupt.load(Ordering::SeqCst));
        assert_eq!(state.cells.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn the_marker_key_is_kept_whole() {
        let state = CellState::new();
        let key = 0x0123_4567_89ab_cdef_fedc_ba98_7654_3210_u128;
        state.set_marker_key(key);
        assert_eq!(state.marker_key(), key);
        assert!(marker_prefix_for(key).contains("0123456789abcdeffedcba9876543210"));
    }
}
