//! Runs inside the evcxr child process: tells the helpers when each cell starts running
//! and relays the kernel's cooperative interrupt (SIGUSR1), through a `CellState` the
//! process exports by name (build.rs makes the symbol visible to the cells' libraries).
//! The process leads a process group of its own, which it ends when the kernel is gone.

use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use tandem_helpers::kernel_link::CellState;

/// Found by the helpers with `dlsym` under `tandem_helpers::kernel_link::CELL_STATE_SYMBOL`.
#[unsafe(no_mangle)]
pub static TANDEM_CELL_STATE: CellState = CellState::new();

/// The signal the kernel sends to ask the running cell to stop at its next helper wait.
pub const INTERRUPT_SIGNAL: libc::c_int = libc::SIGUSR1;

/// evcxr's command to the child that loads and runs a compiled cell.
const RUN_COMMAND: &str = "LOAD_AND_RUN ";

/// Installs the interrupt handler and a relay between the kernel's commands on stdin and
/// evcxr's runtime, which marks each cell's start. Call before `evcxr::runtime_hook`, only
/// in the child. On failure the child works as before, without cell starts.
pub fn install() {
    // Programs a cell starts (a `sleep`, a server) join this group, so the kernel can stop
    // them with the engine, and so can the relay below when the kernel is gone.
    // SAFETY: setpgid on this process; it fails only if it already leads a session.
    unsafe { libc::setpgid(0, 0) };
    // What leaves the group (`setsid`, a daemon's double fork) is still ours to end: its
    // orphans come to this process instead of init. (Those that end stay zombies until
    // this process does: reaping them could take a cell's own child's exit status.)
    // (Refused, they can outlive the kernel as before; nothing here can tell anyone.)
    let _ = crate::engine::process_tree::adopt_orphans();
    extern "C" fn on_interrupt(_: libc::c_int) {
        TANDEM_CELL_STATE.request_interrupt();
    }
    // SAFETY: the handler only performs an atomic store.
    unsafe {
        let handler: extern "C" fn(libc::c_int) = on_interrupt;
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = handler as usize;
        action.sa_flags = libc::SA_RESTART;
        libc::sigemptyset(&mut action.sa_mask);
        libc::sigaction(INTERRUPT_SIGNAL, &action, std::ptr::null_mut());
        // Ctrl-C in a terminal (`tandem run`) reaches this process too: it asks the cell
        // to stop, as the kernel's interrupt does, instead of ending the process. (A
        // handler, unlike an ignored signal, is reset for programs the cell starts.)
        libc::sigaction(libc::SIGINT, &action, std::ptr::null_mut());
    }
    if let Some(stdin) = super::pipes::interpose(0) {
        let _ = std::thread::Builder::new()
            .name("tandem-stdin".into())
            .spawn(move || relay(stdin.original, stdin.ours));
    }
}

/// Passes each command line on unchanged, noting when a cell is about to run. When the
/// kernel's end closes (the kernel stopped, or was killed with SIGKILL and could clean up
/// nothing), ends this process's group: the engine and every program its cells started.
fn relay(from_kernel: File, mut to_runtime: File) {
    for line in BufReader::new(from_kernel).lines() {
        let Ok(line) = line else { break };
        if line.starts_with(RUN_COMMAND) {
            TANDEM_CELL_STATE.cell_started();
        }
        if writeln!(to_runtime, "{line}").is_err() {
            break;
        }
    }
    // First every descendant, in this group or not (see `install`).
    // SAFETY: getpid cannot fail.
    crate::engine::process_tree::kill_descendants(unsafe { libc::getpid() });
    // SAFETY: getpgrp cannot fail; the group is this process's own (see `install`), so the
    // signal reaches only the engine and what its cells started.
    unsafe {
        let group = libc::getpgrp();
        if group == libc::getpid() {
            libc::killpg(group, libc::SIGKILL);
        }
    }
}
