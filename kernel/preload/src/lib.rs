//! The crate every tandem cell sees as `tokio`: tokio itself, re-exported whole, plus a
//! hidden module with `futures` and the helpers. One shared library for all cells.

pub use ::tokio::*;

#[doc(hidden)]
pub mod __tandem {
    pub use ::futures;
    pub use ::tandem_helpers;
}
