//! `tokio::runtime` as cells see it: tokio's module, except that `Runtime` (and the `Builder`
//! that makes one) wrap tokio's so that `block_on` is compiled once, here, not in every cell.
//!
//! evcxr runs each async cell through `Runtime::block_on(async { .. })`. That method is
//! generic over the future, and every cell's future is a new type, so each cell used to
//! compile tokio's whole `block_on` path again (about a third of a trivial cell's rustc
//! time). Here `block_on` only wraps the future in a small adapter and hands it, type-erased,
//! to a function compiled once with this library. Everything else is tokio's own: the
//! wrapper derefs to tokio's runtime, and the builder passes its stable settings through.
//!
//! A runtime a cell makes and runs itself (`#[tokio::main]`) would meet tokio's refusal to
//! block inside a runtime; its `block_on` and its drop lend it the cell's thread with
//! `block_in_place` instead.
//!
//! tokio's own two types stay reachable as `TokioRuntime` and `TokioBuilder`, with `From`
//! both ways and `into_inner`, for a crate whose API asks for exactly them.

use std::fmt;
use std::future::Future;
use std::io;
use std::ops::{Deref, DerefMut};
use std::pin::{pin, Pin};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::poll_recorder;

pub use ::tokio::runtime::*;
pub use ::tokio::runtime::{Builder as TokioBuilder, Runtime as TokioRuntime};

/// Futures larger than this are moved to the heap before they run, as tokio's `block_on`
/// does with builds that have debug assertions (the preloaded crates do).
const BOX_FUTURES_OVER: usize = 2048;

/// tokio's `Runtime`, with a `block_on` compiled once for every cell. Derefs to
/// [`tokio::runtime::Runtime`](::tokio::runtime::Runtime) for `spawn`, `handle`, `enter`...
pub struct Runtime(Option<::tokio::runtime::Runtime>);

impl Runtime {
    /// A multi-threaded runtime with all of tokio's drivers, as `tokio::runtime::Runtime::new`.
    pub fn new() -> io::Result<Runtime> {
        Builder::new_multi_thread().enable_all().build()
    }

    /// Runs `future` to completion on the current thread, as tokio's `block_on` does.
    #[track_caller]
    pub fn block_on<F: Future>(&self, future: F) -> F::Output {
        let mut output = None;
        let task = async {
            output = Some(future.await);
        };
        if const { std::mem::size_of::<F>() > BOX_FUTURES_OVER } {
            self.block_on_erased(Box::pin(task).as_mut());
        } else {
            self.block_on_erased(pin!(task));
        }
        match output {
            Some(output) => output,
            None => unreachable!("block_on returned before its future finished"),
        }
    }

    /// The one instance of tokio's `block_on` that every cell shares.
    #[track_caller]
    #[inline(never)]
    fn block_on_erased(&self, task: Pin<&mut dyn Future<Output = ()>>) {
        if !runs_cells() || CELL_RUNNING.load(Ordering::Relaxed) {
            return self.block_on_nested(task);
        }
        // The cell's own future: its polls are recorded (as task 0), and the events go to
        // the kernel once it is done, whether it finished or panicked.
        struct CellEnds;
        impl Drop for CellEnds {
            fn drop(&mut self) {
                // Text the cell `print!`ed without a newline waits in the standard library
                // the cells link (not the engine's own, which writes evcxr's end-of-cell
                // line): flushed now, it is shown with this cell, not the next one.
                let _ = std::io::Write::flush(&mut std::io::stdout());
                CELL_RUNNING.store(false, Ordering::Relaxed);
                poll_recorder::cell_ended();
            }
        }
        CELL_RUNNING.store(true, Ordering::Relaxed);
        let _ends = CellEnds;
        poll_recorder::cell_started();
        self.inner().block_on(poll_recorder::Recording::cell(task))
    }

    /// tokio's runtime (there until it is dropped or handed out).
    fn inner(&self) -> &::tokio::runtime::Runtime {
        match &self.0 {
            Some(runtime) => runtime,
            None => unreachable!("a Runtime holds tokio's until it is dropped"),
        }
    }

    fn take(mut self) -> ::tokio::runtime::Runtime {
        match self.0.take() {
            Some(runtime) => runtime,
            None => unreachable!("a Runtime holds tokio's until it is dropped"),
        }
    }

    /// A runtime a cell made and runs (`#[tokio::main]`, `Runtime::new()?.block_on(..)`):
    /// inside the cells' own runtime, tokio refuses to block the thread, so the cell's part
    /// in that runtime is handed over first (`block_in_place`), as a worker's would be.
    #[track_caller]
    fn block_on_nested(&self, task: Pin<&mut dyn Future<Output = ()>>) {
        if inside_a_multi_thread_runtime() {
            ::tokio::task::block_in_place(|| self.inner().block_on(task))
        } else {
            self.inner().block_on(task)
        }
    }

    /// Shuts the runtime down, waiting at most `duration` for its blocking tasks.
    pub fn shutdown_timeout(self, duration: Duration) {
        let runtime = self.take();
        if inside_a_multi_thread_runtime() {
            // It waits for the runtime's threads: lend it the cell's thread, as `drop`.
            ::tokio::task::block_in_place(|| runtime.shutdown_timeout(duration))
        } else {
            runtime.shutdown_timeout(duration)
        }
    }

    /// Shuts the runtime down without waiting for its blocking tasks.
    pub fn shutdown_background(self) {
        self.take().shutdown_background()
    }

    /// tokio's own runtime, for an API that asks for exactly that type.
    pub fn into_inner(self) -> ::tokio::runtime::Runtime {
        self.take()
    }
}

impl Drop for Runtime {
    /// Dropped inside the cells' runtime (the end of a `#[tokio::main]` function), tokio's
    /// runtime waits for its threads with the cell's part handed over, as in `block_on`.
    fn drop(&mut self) {
        if let Some(runtime) = self.0.take() {
            if inside_a_multi_thread_runtime() {
                ::tokio::task::block_in_place(|| drop(runtime));
            }
        }
    }
}

/// Whether this thread runs inside a multi-thread runtime, where `block_in_place` may hand
/// its part over so that it can block.
fn inside_a_multi_thread_runtime() -> bool {
    ::tokio::runtime::Handle::try_current()
        .is_ok_and(|handle| handle.runtime_flavor() == RuntimeFlavor::MultiThread)
}

impl Deref for Runtime {
    type Target = ::tokio::runtime::Runtime;

    fn deref(&self) -> &Self::Target {
        self.inner()
    }
}

impl From<::tokio::runtime::Runtime> for Runtime {
    fn from(runtime: ::tokio::runtime::Runtime) -> Self {
        Runtime(Some(runtime))
    }
}

impl From<Runtime> for ::tokio::runtime::Runtime {
    fn from(runtime: Runtime) -> Self {
        runtime.take()
    }
}

impl fmt::Debug for Runtime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.inner().fmt(f)
    }
}

/// tokio's `runtime::Builder`, whose `build` makes the [`Runtime`] above. A setting not
/// listed here (an unstable one) is reachable through `DerefMut`, which then builds tokio's
/// own type.
pub struct Builder(::tokio::runtime::Builder);

/// Builder settings that take a value and return the builder, passed straight to tokio's.
macro_rules! pass_settings {
    ($($(#[$doc:meta])* $name:ident($($arg:ident: $ty:ty),*);)*) => {
        $(
            $(#[$doc])*
            #[track_caller]
            pub fn $name(&mut self, $($arg: $ty),*) -> &mut Self {
                self.0.$name($($arg),*);
                self
            }
        )*
    };
}

/// Builder settings that take a callback, passed straight to tokio's.
macro_rules! pass_callbacks {
    ($($(#[$doc:meta])* $name:ident: $callback:path;)*) => {
        $(
            $(#[$doc])*
            pub fn $name<F>(&mut self, f: F) -> &mut Self
            where
                F: $callback + Send + Sync + 'static,
            {
                self.0.$name(f);
                self
            }
        )*
    };
}

impl Builder {
    /// A builder for a runtime on the current thread only.
    pub fn new_current_thread() -> Builder {
        Builder(::tokio::runtime::Builder::new_current_thread())
    }

    /// A builder for a runtime with a pool of worker threads.
    pub fn new_multi_thread() -> Builder {
        Builder(::tokio::runtime::Builder::new_multi_thread())
    }

    /// Makes the runtime, as tokio's `Builder::build`, with the poll recorder's hooks.
    pub fn build(&mut self) -> io::Result<Runtime> {
        poll_recorder::attach(&mut self.0);
        self.0.build().map(Runtime::from)
    }

    /// tokio's own builder, for an API that asks for exactly that type.
    pub fn into_inner(self) -> ::tokio::runtime::Builder {
        self.0
    }

    pass_settings! {
        /// Enables the I/O and time drivers.
        enable_all();
        /// Enables the I/O driver.
        enable_io();
        /// Enables the time driver.
        enable_time();
        /// How many worker threads a multi-thread runtime starts.
        worker_threads(val: usize);
        /// The most threads the blocking pool may start.
        max_blocking_threads(val: usize);
        /// The stack size of the runtime's threads.
        thread_stack_size(val: usize);
        /// How long an idle blocking thread is kept.
        thread_keep_alive(duration: Duration);
        /// Scheduler ticks between checks of the global queue.
        global_queue_interval(val: u32);
        /// Scheduler ticks between polls for external events.
        event_interval(val: u32);
        /// How many I/O events are handled per tick.
        max_io_events_per_tick(capacity: usize);
        /// How many I/O events are handled per tick while tasks are ready to run.
        max_io_events_per_busy_tick(capacity: usize);
    }

    /// The name of the runtime's threads.
    pub fn thread_name(&mut self, val: impl Into<String>) -> &mut Self {
        self.0.thread_name(val);
        self
    }

    /// The runtime's name.
    #[track_caller]
    pub fn name(&mut self, val: impl Into<String>) -> &mut Self {
        self.0.name(val);
        self
    }

    pass_callbacks! {
        /// A function that names each new thread.
        thread_name_fn: Fn() -> String;
        /// Runs on each new thread before it starts work.
        on_thread_start: Fn();
        /// Runs on each thread before it stops.
        on_thread_stop: Fn();
        /// Runs on a worker thread before it parks.
        on_thread_park: Fn();
        /// Runs on a worker thread after it unparks.
        on_thread_unpark: Fn();
    }
}

impl From<::tokio::runtime::Builder> for Builder {
    fn from(builder: ::tokio::runtime::Builder) -> Self {
        Builder(builder)
    }
}

impl From<Builder> for ::tokio::runtime::Builder {
    fn from(builder: Builder) -> Self {
        builder.0
    }
}

impl Deref for Builder {
    type Target = ::tokio::runtime::Builder;

    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl DerefMut for Builder {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.0
    }
}

impl fmt::Debug for Builder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Whether a cell's future is running (a `block_on` inside it is a runtime the cell made).
static CELL_RUNNING: AtomicBool = AtomicBool::new(false);

/// Whether this thread is the one evcxr runs cells on (the process's main thread).
pub(crate) fn runs_cells() -> bool {
    // SAFETY: getpid and gettid cannot fail.
    unsafe { libc::gettid() == libc::getpid() }
}
