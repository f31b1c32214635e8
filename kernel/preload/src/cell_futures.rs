//! `futures` as cells see it: the futures crate, re-exported whole, except that
//! `future::join_all` and `join!` record each future as a branch of the task that awaits
//! them (named `join_all[3]`, or by its source text), as tokio's `join!` does; and the
//! helpers' `gather`, which cells see as this one.

pub use ::futures::*;

/// `futures::future`, with a `join_all` that records its futures.
pub mod future {
    pub use ::futures::future::*;

    use crate::branch::{branch_at, Branch};

    /// Waits for every future of `futures`, as `futures::future::join_all`; the event-loop
    /// picture draws each one as a branch, by its place in the list (`join_all[3]`).
    #[track_caller]
    pub fn join_all<I>(futures: I) -> JoinAll<Branch<I::Item>>
    where
        I: IntoIterator,
        I::Item: Future,
    {
        named_join_all("join_all", futures)
    }

    /// `join_all`, its futures named `{what}[0]`, `{what}[1]`...
    #[track_caller]
    pub(crate) fn named_join_all<I>(what: &'static str, futures: I) -> JoinAll<Branch<I::Item>>
    where
        I: IntoIterator,
        I::Item: Future,
    {
        let place = std::panic::Location::caller();
        let named = (futures.into_iter().enumerate())
            .map(|(at, future)| branch_at(|| format!("{what}[{at}]"), place, future));
        ::futures::future::join_all(named)
    }
}

/// The helpers' `gather`: waits for every future and gives their outputs in order, as
/// `join_all`; the picture draws each future as a branch (`gather[2]`).
#[track_caller]
pub fn gather<F: std::future::Future>(
    futures: impl IntoIterator<Item = F>,
) -> future::JoinAll<crate::branch::Branch<F>> {
    future::named_join_all("gather", futures)
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
