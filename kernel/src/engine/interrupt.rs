//! Stopping a running cell from another thread (the control channel). First politely: a
//! signal asks the helpers' waits (and `stop_if_interrupted`) to stop the cell, which keeps
//! the session's variables. Code that does not stop within [`GRACE`] is stopped by ending
//! the engine's child process; evcxr then starts a fresh one and the variables are lost.

use super::child::INTERRUPT_SIGNAL;
use std::process::Child;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long a cell has to stop by itself before its process is ended.
pub const GRACE: Duration = Duration::from_millis(200);

/// Shared between the thread that runs cells and the one that receives interrupts.
#[derive(Default)]
pub struct Interrupter {
    child: Mutex<Option<Arc<Mutex<Child>>>>,
    running: AtomicBool,
    requested: AtomicBool,
    /// Counts cells, so a late escalation never hits the next cell.
    cell: AtomicU64,
}

impl Interrupter {
    /// Called once the engine exists: the handle stays valid across child restarts.
    pub(super) fn attach(&self, child: Arc<Mutex<Child>>) {
        if let Ok(mut slot) = self.child.lock() {
            *slot = Some(child);
        }
    }

    pub(super) fn cell_started(&self) {
        self.requested.store(false, Ordering::SeqCst);
        self.cell.fetch_add(1, Ordering::SeqCst);
        self.running.store(true, Ordering::SeqCst);
    }

    /// Marks the cell finished; returns whether an interrupt was asked for during it.
    pub(super) fn cell_finished(&self) -> bool {
        self.running.store(false, Ordering::SeqCst);
        self.requested.swap(false, Ordering::SeqCst)
    }

    /// Whether an interrupt has been asked for while the current cell runs.
    pub fn requested(&self) -> bool {
        self.requested.load(Ordering::SeqCst)
    }

    /// Asks the running cell, if any, to stop; ends the engine's process if it has not
    /// stopped after [`GRACE`]. Returns whether a cell was running.
    pub fn interrupt(self: &Arc<Self>) -> bool {
        if !self.running.load(Ordering::SeqCst) {
            return false;
        }
        self.requested.store(true, Ordering::SeqCst);
        let cell = self.cell.load(Ordering::SeqCst);
        if !self.signal_engine() {
            self.kill_engine();
            return true;
        }
        let this = Arc::clone(self);
        let escalate = move || {
            let asked = Instant::now();
            while asked.elapsed() < GRACE {
                if !this.is_running(cell) {
                    return;
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            if this.is_running(cell) {
                log::info!("the cell did not stop within {GRACE:?}: ending the engine process");
                this.kill_engine();
            }
        };
        if std::thread::Builder::new()
            .name("interrupt".into())
            .spawn(escalate)
            .is_err()
        {
            self.kill_engine();
        }
        true
    }

    fn is_running(&self, cell: u64) -> bool {
        self.running.load(Ordering::SeqCst) && self.cell.load(Ordering::SeqCst) == cell
    }

    /// Sends the cooperative interrupt signal; false when there is no process to signal.
    fn signal_engine(&self) -> bool {
        self.with_child(|child| {
            let Some(pid) = unreaped_pid(child) else {
                return false;
            };
            // SAFETY: the child is not reaped (and cannot be while its lock is held), so
            // the pid is still its own; the handler only sets a flag.
            unsafe { libc::kill(pid, INTERRUPT_SIGNAL) == 0 }
        })
        .unwrap_or(false)
    }

    /// Ends the engine's child process and every program its cells started: those that
    /// share its process group, and those that left it but still descend from it (used by
    /// interrupts and at shutdown).
    pub fn kill_engine(&self) {
        self.with_child(|child| {
            if let Some(pid) = unreaped_pid(child) {
                // Stopped first, the group forks no more while its tree is walked.
                // SAFETY: while the child is unreaped its pid, and so the group it leads,
                // cannot be given to another process.
                unsafe { libc::killpg(pid, libc::SIGSTOP) };
                super::process_tree::kill_descendants(pid);
                // SAFETY: while the child is unreaped its pid, and so the group it leads,
                // cannot be given to another process.
                unsafe { libc::killpg(pid, libc::SIGKILL) };
            }
            if let Err(error) = child.kill() {
                log::warn!("could not stop the engine process: {error}");
            }
        });
    }

    /// Runs `act` on the engine's child with its lock held: evcxr reaps the child only
    /// through the same lock, so its pid cannot change hands meanwhile.
    fn with_child<T>(&self, act: impl FnOnce(&mut Child) -> T) -> Option<T> {
        let child = self.child.lock().ok().and_then(|slot| slot.clone())?;
        let mut child = child.lock().ok()?;
        Some(act(&mut child))
    }
}

/// The child's pid while it has not been reaped (running, or ended but not waited for):
/// only then is a signal to it sure to reach no other process.
fn unreaped_pid(child: &mut Child) -> Option<libc::pid_t> {
    match child.try_wait() {
        Ok(None) => libc::pid_t::try_from(child.id()).ok(),
        _ => None,
    }
}
