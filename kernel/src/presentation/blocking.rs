//! The pitfall caught in the learner's own code: a poll that holds its thread for 10 ms
//! or more while other futures of the same task were ready and waiting for it (a
//! `std::thread::sleep`, blocking I/O or a long loop inside async code). Code that blocks
//! with nothing else waiting is not flagged: nothing was kept from running.

use crate::engine::{BranchTrace, Poll, RuntimeTrace};
use std::time::Duration;

/// A poll this long is long enough to be noticed.
const HOLDS_THE_LOOP: Duration = Duration::from_millis(10);

/// A branch that held its thread while others waited.
#[derive(Debug, Clone, PartialEq)]
pub struct Holding {
    /// The branch, and its source text.
    pub branch: u64,
    pub name: String,
    /// How long its flagged polls held the thread, in all.
    pub held: Duration,
    /// The branches that were ready and could not run meanwhile.
    pub waiting: Vec<String>,
    /// Start of each flagged poll, to mark it on the picture.
    pub polls: Vec<Duration>,
}

/// Every branch that held the event loop while another was ready, in the order found.
pub fn held_the_loop(trace: &RuntimeTrace) -> Vec<Holding> {
    let mut found = Vec::new();
    for task in &trace.tasks {
        for branch in &task.branches {
            let mut holding = Holding {
                branch: branch.id,
                name: branch.name.clone(),
                held: Duration::ZERO,
                waiting: Vec::new(),
                polls: Vec::new(),
            };
            for poll in branch
                .polls
                .iter()
                .filter(|poll| length(poll) >= HOLDS_THE_LOOP)
            {
                let kept_waiting: Vec<&BranchTrace> = task
                    .branches
                    .iter()
                    .filter(|other| {
                        other.id != branch.id
                            && !polled_within(other, poll)
                            && waited_through(other, poll)
                    })
                    .collect();
                if kept_waiting.is_empty() {
                    continue;
                }
                holding.held += length(poll);
                holding.polls.push(poll.start);
                for other in kept_waiting {
                    if !holding.waiting.contains(&other.name) {
                        holding.waiting.push(other.name.clone());
                    }
                }
            }
            if !holding.polls.is_empty() {
                found.push(holding);
            }
        }
    }
    found
}

fn length(poll: &Poll) -> Duration {
    poll.end.saturating_sub(poll.start)
}

/// Whether `branch` was polled during `poll`: then it is nested inside it (a `join!`
/// within the branch), and ran, rather than waited.
fn polled_within(branch: &BranchTrace, poll: &Poll) -> bool {
    branch
        .polls
        .iter()
        .any(|inner| inner.start >= poll.start && inner.end <= poll.end)
}

/// Whether `branch` was ready, and not polled, for at least [`HOLDS_THE_LOOP`] of `poll`.
fn waited_through(branch: &BranchTrace, poll: &Poll) -> bool {
    branch.ready.iter().any(|&ready| {
        let polled_next = branch
            .polls
            .iter()
            .map(|p| p.start)
            .filter(|&start| start >= ready)
            .min()
            .unwrap_or(Duration::MAX);
        let from = ready.max(poll.start);
        let to = polled_next.min(poll.end);
        to.saturating_sub(from) >= HOLDS_THE_LOOP
    })
}

/// The line under the cell for one branch that held the loop.
pub fn warning(holding: &Holding) -> String {
    format!(
        "⚠ {} held the event loop for {:.2} s while {} waited to run: a blocking call in \
         async code (std::thread::sleep, blocking I/O, a long loop) keeps every other \
         future of its task waiting. Use tokio::time::sleep or async I/O, or move the \
         blocking work to tokio::task::spawn_blocking.",
        holding.name,
        holding.held.as_secs_f64(),
        holding.waiting.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::TaskTrace;

    fn ms(millis: u64) -> Duration {
        Duration::from_millis(millis)
    }

    fn branch(id: u64, name: &str, polls: &[(u64, u64)], ready: &[u64]) -> BranchTrace {
        BranchTrace {
            id,
            name: name.into(),
            polls: polls
                .iter()
                .map(|&(start, end)| Poll {
                    start: ms(start),
                    end: ms(end),
                    thread: 0,
                })
                .collect(),
            ready: ready.iter().map(|&at| ms(at)).collect(),
            cancelled: None,
        }
    }

    fn cell_with(branches: Vec<BranchTrace>) -> RuntimeTrace {
        RuntimeTrace {
            tasks: vec![TaskTrace {
                id: 0,
                spawned_at: None,
                polls: Vec::new(),
                ended: true,
                branches,
            }],
            threads: vec!["cell thread".into()],
            dropped: 0,
        }
    }

    #[test]
    fn a_blocking_branch_is_flagged_only_when_another_was_ready() {
        // slow() blocks 300 ms in its first poll; quick() was made ready at 0 and first
        // polled only after it.
        let blocked = cell_with(vec![
            branch(1, "slow()", &[(0, 300)], &[0]),
            branch(2, "quick()", &[(300, 301), (400, 401)], &[0, 400]),
        ]);
        let found = held_the_loop(&blocked);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].name, "slow()");
        assert_eq!(found[0].held, ms(300));
        assert_eq!(found[0].waiting, ["quick()"]);
        assert!(warning(&found[0]).contains("slow() held the event loop for 0.30 s"));
        // The same long poll with nothing else ready: a sync wait, not flagged.
        let alone = cell_with(vec![
            branch(1, "slow()", &[(0, 300)], &[0]),
            branch(2, "later()", &[(300, 301)], &[299]),
        ]);
        assert!(held_the_loop(&alone).is_empty());
        // A join! nested inside a branch: its branches ran inside the outer one's poll, and
        // only the blocking inner branch is named.
        let nested = cell_with(vec![
            branch(1, "outer()", &[(0, 400)], &[0]),
            branch(2, "pause()", &[(1, 399)], &[1]),
            branch(3, "nap()", &[(399, 400), (450, 451)], &[1, 450]),
        ]);
        let found = held_the_loop(&nested);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(
            (found[0].name.as_str(), &found[0].waiting[..]),
            ("pause()", &["nap()".to_owned()][..])
        );
        // Short polls that hand the thread back are never flagged.
        let polite = cell_with(vec![
            branch(1, "a()", &[(0, 1), (300, 301)], &[0, 300]),
            branch(2, "b()", &[(1, 2), (100, 101)], &[0, 100]),
        ]);
        assert!(held_the_loop(&polite).is_empty());
    }
}
