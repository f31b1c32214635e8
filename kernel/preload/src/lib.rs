//! The crate every tandem cell sees as `tokio`: tokio itself, re-exported whole (its
//! `runtime` module with a cell-friendly `Runtime`), plus a hidden module with `futures` and
//! the helpers. One shared library for all cells.

pub use ::tokio::*;

mod branch;
#[doc(hidden)]
pub mod cell_futures;
#[doc(hidden)]
pub mod cell_store;
mod events_sender;
mod poll_recorder;
mod recorded;
pub mod runtime;
mod spawned;
pub mod task;
pub mod time;

pub use spawned::spawn;

#[doc(hidden)]
pub mod __tandem {
    pub use crate::branch::{branch, Named};
    pub use crate::cell_futures as futures;
    /// The helpers' `gather`, with its futures recorded (cells see this one).
    pub use crate::cell_futures::gather;
    /// What evcxr's code around each cell calls (its variable store, the cells' runtime).
    pub use crate::cell_store;
    /// The futures crate itself, for the `join!` cells see as `futures::join!`.
    pub use ::futures as real_futures;
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

/// tokio's `select!`, with each branch's future recorded as in [`join!`](crate::join) (named
/// by its source text). Everything else (patterns, `if` preconditions, handlers, `biased;`,
/// `else`) goes to tokio's own `select!` as written, so it accepts and rejects what tokio's
/// does. An expression handler is handed on in parentheses: tokio tries a `block` first,
/// and an `expr` handed on bare would stop it with "expected `{`".
#[macro_export]
macro_rules! select {
    // Every branch wrapped: tokio's `select!` takes it from here.
    (@tandem ($($biased:tt)*) ($($done:tt)*)) => {
        $crate::__tandem::real_tokio::select! { $($biased)* $($done)* }
    };
    (@tandem ($($biased:tt)*) ($($done:tt)*) else => $else:expr $(,)?) => {
        $crate::__tandem::real_tokio::select! { $($biased)* $($done)* else => $else }
    };
    // A future borrowed for this `select!` (`&mut sleep` in a loop): it lives on after.
    // Block handlers, then expression handlers, as below.
    (@tandem $biased:tt ($($done:tt)*)
        $p:pat = &mut $f:expr $(, if $c:expr)? => $h:block, $($rest:tt)*) => {
        $crate::select!(@tandem $biased ($($done)*
            $p = $crate::__tandem::Named { name: concat!("&mut ", stringify!($f)), future: &mut $f, borrowed: true } $(, if $c)? => $h,
        ) $($rest)*)
    };
    (@tandem $biased:tt ($($done:tt)*)
        $p:pat = &mut $f:expr $(, if $c:expr)? => $h:block $($rest:tt)*) => {
        $crate::select!(@tandem $biased ($($done)*
            $p = $crate::__tandem::Named { name: concat!("&mut ", stringify!($f)), future: &mut $f, borrowed: true } $(, if $c)? => $h,
        ) $($rest)*)
    };
    (@tandem $biased:tt ($($done:tt)*)
        $p:pat = &mut $f:expr $(, if $c:expr)? => $h:expr) => {
        $crate::select!(@tandem $biased ($($done)*
            $p = $crate::__tandem::Named { name: concat!("&mut ", stringify!($f)), future: &mut $f, borrowed: true } $(, if $c)? => ($h),
        ))
    };
    (@tandem $biased:tt ($($done:tt)*)
        $p:pat = &mut $f:expr $(, if $c:expr)? => $h:expr, $($rest:tt)*) => {
        $crate::select!(@tandem $biased ($($done)*
            $p = $crate::__tandem::Named { name: concat!("&mut ", stringify!($f)), future: &mut $f, borrowed: true } $(, if $c)? => ($h),
        ) $($rest)*)
    };
    // A block handler, with its comma or without.
    (@tandem $biased:tt ($($done:tt)*)
        $p:pat = $f:expr $(, if $c:expr)? => $h:block, $($rest:tt)*) => {
        $crate::select!(@tandem $biased ($($done)*
            $p = $crate::__tandem::Named { name: stringify!($f), future: $f, borrowed: false } $(, if $c)? => $h,
        ) $($rest)*)
    };
    (@tandem $biased:tt ($($done:tt)*)
        $p:pat = $f:expr $(, if $c:expr)? => $h:block $($rest:tt)*) => {
        $crate::select!(@tandem $biased ($($done)*
            $p = $crate::__tandem::Named { name: stringify!($f), future: $f, borrowed: false } $(, if $c)? => $h,
        ) $($rest)*)
    };
    // An expression handler: the last branch's needs no comma.
    (@tandem $biased:tt ($($done:tt)*)
        $p:pat = $f:expr $(, if $c:expr)? => $h:expr) => {
        $crate::select!(@tandem $biased ($($done)*
            $p = $crate::__tandem::Named { name: stringify!($f), future: $f, borrowed: false } $(, if $c)? => ($h),
        ))
    };
    (@tandem $biased:tt ($($done:tt)*)
        $p:pat = $f:expr $(, if $c:expr)? => $h:expr, $($rest:tt)*) => {
        $crate::select!(@tandem $biased ($($done)*
            $p = $crate::__tandem::Named { name: stringify!($f), future: $f, borrowed: false } $(, if $c)? => ($h),
        ) $($rest)*)
    };
    // A branch none of the above takes: tokio's `select!` reports it.
    (@tandem ($($biased:tt)*) ($($done:tt)*) $($rest:tt)*) => {
        $crate::__tandem::real_tokio::select! { $($biased)* $($done)* $($rest)* }
    };
    // Entry.
    (biased; $($branches:tt)*) => {
        $crate::select!(@tandem (biased;) () $($branches)*)
    };
    ($($branches:tt)*) => {
        $crate::select!(@tandem () () $($branches)*)
    };
}
