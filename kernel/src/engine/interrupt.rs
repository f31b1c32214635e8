//! Stopping a running cell from another thread (the control channel). Today a running
//! cell is stopped by ending the engine's child process; evcxr then starts a fresh one.

use std::process::Child;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// Shared between the thread that runs cells and the one that receives interrupts.
#[derive(Default)]
pub struct Interrupter {
    child: Mutex<Option<Arc<Mutex<Child>>>>,
    running: AtomicBool,
    requested: AtomicBool,
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

    /// Stops the running cell, if any. Returns whether a cell was running.
    pub fn interrupt(&self) -> bool {
        if !self.running.load(Ordering::SeqCst) {
            return false;
        }
        self.requested.store(true, Ordering::SeqCst);
        self.kill_engine();
        true
    }

    /// Ends the engine's child process (used by interrupts and at shutdown).
    pub fn kill_engine(&self) {
        let child = self.child.lock().ok().and_then(|slot| slot.clone());
        if let Some(child) = child {
            if let Ok(mut child) = child.lock() {
                if let Err(error) = child.kill() {
                    log::warn!("could not stop the engine process: {error}");
                }
            }
        }
    }
}
