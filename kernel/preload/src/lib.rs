//! The crate every tandem cell sees as `tokio`: tokio itself, re-exported whole (its
//! `runtime` module with a cell-friendly `Runtime`), plus a hidden module with `futures` and
//! the helpers. One shared library for all cells.

pub use ::tokio::*;

mod poll_recorder;
pub mod runtime;

#[doc(hidden)]
pub mod __tandem {
    pub use ::futures;
    pub use ::tandem_helpers;
}
