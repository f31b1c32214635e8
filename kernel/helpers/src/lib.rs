//! Helpers for learning synchronous versus asynchronous Rust by watching the clock.
//!
//! Every helper task records a *span* (its name, kind, thread, start and end) so a cell can
//! end with a [`Timeline`] picture of which task ran when. Times are seconds since the
//! start of the running cell (or the last [`clock::restart`]).
//!
//! ```
//! use tandem_helpers::prelude::*;
//!
//! clock::restart();
//! let (_, took) = timed(|| {
//!     blocking_task("A", 0.2);
//!     blocking_task("B", 0.1);
//! });
//! // One after the other: the total is the sum of the waits.
//! assert!(took.as_secs_f64() >= 0.3);
//! assert_eq!(spans::recorded().len(), 2);
//! ```

pub mod asynchronous;
pub mod clock;
pub mod cpu;
pub mod database;
pub mod display;
pub mod exercise;
pub mod files;
pub mod http;
pub mod interrupt;
/// Plumbing between the helpers and the kernel: nothing a lesson needs to read.
pub mod kernel_link;
pub mod resources;
pub mod spans;
pub mod sync;
mod task_run;
pub mod timeline;

pub use asynchronous::{async_task, gather, run_on_one_thread, run_on_threads};
pub use clock::timed;
pub use cpu::count_primes;
pub use sync::blocking_task;
pub use timeline::Timeline;

/// Everything a notebook cell needs, in one `use`.
pub mod prelude {
    pub use crate::asynchronous::{
        async_task, gather, run_on_one_thread, run_on_threads, spawn, spawn_blocking,
    };
    pub use crate::clock::{self, timed, timed_async};
    pub use crate::cpu::count_primes;
    pub use crate::database::Database;
    pub use crate::display;
    pub use crate::exercise;
    pub use crate::files::{read_file, read_file_async, write_file, write_file_async};
    pub use crate::http::{http_get, http_get_async, LocalServer};
    pub use crate::interrupt::stop_if_interrupted;
    pub use crate::resources;
    pub use crate::spans::{self, Kind};
    pub use crate::sync::blocking_task;
    pub use crate::timeline::{timeline, Timeline};
}
