//! `futures` as cells see it: the futures crate, re-exported whole, except that
//! `future::join_all` and `join!` record each future as a branch of the task that awaits
//! them (named `join_all[3]`, or by its source text), as tokio's `join!` does.

pub use ::futures::*;

/// `futures::future`, with a `join_all` that records its futures.
pub mod future {
    pub use ::futures::future::*;

    use crate::poll_recorder::{branch, Branch};

    /// Waits for every future of `futures`, as `futures::future::join_all`; the event-loop
    /// picture draws each one as a branch, by its place in the list (`join_all[3]`).
    pub fn join_all<I>(futures: I) -> JoinAll<Branch<I::Item>>
    where
        I: IntoIterator,
        I::Item: Future,
    {
        let named = (futures.into_iter().enumerate())
            .map(|(at, future)| branch(&format!("join_all[{at}]"), future));
        ::futures::future::join_all(named)
    }
}

/// futures' `join!`, with each branch recorded as in tokio's (named by its source text).
#[doc(hidden)]
#[macro_export]
macro_rules! __tandem_futures_join {
    ($($future:expr),* $(,)?) => {
        $crate::__tandem::real_futures::join!($(
            $crate::__tandem::branch(stringify!($future), $future)
        ),*)
    };
}

pub use crate::__tandem_futures_join as join;
