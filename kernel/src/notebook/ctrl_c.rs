//! Ctrl-C in `tandem run`: the first press stops the running cell, a second one quits.

use crate::engine::Interrupter;
use anyhow::{Context, Result};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// Ctrl-C during a run: the first stops the running cell as the kernel's interrupt does
/// (a helper's wait at once, other code after 0.2 s) and ends the run after it, so the
/// executed notebook is still written; a second one quits at once.
pub struct CtrlC {
    pub(super) interrupter: Arc<Interrupter>,
    pressed: Arc<AtomicBool>,
}

impl CtrlC {
    /// Takes SIGINT over. Call before any other thread starts: the threads started later
    /// inherit the blocked signal, and only the `ctrl-c` thread receives it. A second
    /// Ctrl-C ends the engine (and what its cells started) and removes `scratch` before
    /// it quits.
    pub fn install(scratch: Option<PathBuf>) -> Result<CtrlC> {
        // SAFETY: plain signal-set calls on a set owned here.
        let set = unsafe {
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            libc::sigaddset(&mut set, libc::SIGINT);
            libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
            set
        };
        let interrupter = Arc::new(Interrupter::default());
        let pressed = Arc::new(AtomicBool::new(false));
        let (to_interrupt, seen) = (interrupter.clone(), pressed.clone());
        std::thread::Builder::new()
            .name("ctrl-c".into())
            .spawn(move || loop {
                let mut signal = 0;
                // SAFETY: waits for a signal of the set blocked above.
                if unsafe { libc::sigwait(&set, &mut signal) } != 0 {
                    return;
                }
                if seen.swap(true, Ordering::SeqCst) {
                    eprintln!("\ntandem: stopped");
                    to_interrupt.kill_engine();
                    if let Some(scratch) = &scratch {
                        let _ = std::fs::remove_dir_all(scratch);
                    }
                    std::process::exit(130);
                }
                eprintln!("\ntandem: interrupting the cell (Ctrl-C again to quit at once)");
                to_interrupt.interrupt();
            })
            .context("starting the Ctrl-C thread")?;
        Ok(CtrlC {
            interrupter,
            pressed,
        })
    }

    pub(super) fn pressed(&self) -> bool {
        self.pressed.load(Ordering::SeqCst)
    }
}
