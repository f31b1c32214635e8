//! The engine's other half: code that runs inside evcxr's child process, where the cells
//! run. It sits between the cells and the kernel: their stdout, the cells' starts and the
//! kernel's interrupts pass through it. Nothing here runs in the kernel's own process.

mod cell;
mod filter;
mod loader;
mod pipes;

pub use cell::INTERRUPT_SIGNAL;

/// Sets the child up before evcxr's runtime takes over. Runs only in the child.
///
/// # Safety
/// It changes the environment: call it first thing in `main`, while the process has one
/// thread.
pub unsafe fn set_up() {
    // Panic reports stay short: the message is what the learner needs, not a backtrace of
    // generated code. Set TANDEM_BACKTRACE=1 to see backtraces anyway.
    let backtrace = std::env::var("TANDEM_BACKTRACE").unwrap_or_else(|_| "0".into());
    // SAFETY: the caller guarantees a single thread; nothing else reads the environment.
    unsafe { std::env::set_var("RUST_BACKTRACE", backtrace) };
    // SAFETY: as above.
    let key = unsafe { super::markers::take_key_from_environment() };
    cell::TANDEM_CELL_STATE.set_marker_key(key);
    super::limits::apply_to_this_process();
    loader::load_standard_library();
    filter::install();
    cell::install();
}
