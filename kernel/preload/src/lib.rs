//! The crate every tandem cell sees as `tokio`: tokio itself, re-exported whole (its
//! `runtime` module with a cell-friendly `Runtime`), plus a hidden module with `futures` and
//! the helpers. One shared library for all cells.

pub use ::tokio::*;

mod events_sender;
mod poll_recorder;
mod recorded;
pub mod runtime;

#[doc(hidden)]
pub mod __tandem {
    pub use crate::poll_recorder::branch;
    pub use ::futures;
    pub use ::tandem_helpers;
    /// tokio itself, for the macros below, which hand it each branch wrapped.
    pub use ::tokio as real_tokio;
}

/// tokio's `join!`, with each branch's polls recorded for the cell's event-loop picture
/// (named by its source text). Everything else is tokio's own.
#[macro_export]
macro_rules! join {
    (biased; $($future:expr),* $(,)?) => {
        $crate::__tandem::real_tokio::join!(biased; $(
            $crate::__tandem::branch(stringify!($future), $future)
        ),*)
    };
    ($($future:expr),* $(,)?) => {
        $crate::__tandem::real_tokio::join!($(
            $crate::__tandem::branch(stringify!($future), $future)
        ),*)
    };
}

/// tokio's `try_join!`, with each branch's polls recorded, as [`join!`](crate::join).
#[macro_export]
macro_rules! try_join {
    (biased; $($future:expr),* $(,)?) => {
        $crate::__tandem::real_tokio::try_join!(biased; $(
            $crate::__tandem::branch(stringify!($future), $future)
        ),*)
    };
    ($($future:expr),* $(,)?) => {
        $crate::__tandem::real_tokio::try_join!($(
            $crate::__tandem::branch(stringify!($future), $future)
        ),*)
    };
}
