//! The pitfall caught in the learner's own code: a poll that holds its thread for 10 ms
//! or more while other tasks, or other futures of the same task, were ready and waiting for
//! it (a `std::thread::sleep`, blocking I/O or a long loop inside async code). Code that
//! blocks with nothing else waiting is not flagged: nothing was kept from running.
//!
//! Ready means: just spawned or made, woken (a branch, through the waker it is handed), or
//! due (a timer it set fell due and it ran as soon as the blocking poll let go: a timer
//! fires only when the runtime gets its thread back, so its wake-up comes too late to
//! see). A task's own wake-ups are not recorded (a waker per task costs too much).

use super::runtime_names::{branch_name, task_name};
use crate::engine::{BranchTrace, Poll, RuntimeTrace, TaskTrace, Timer};
use std::time::Duration;

/// A poll this long is long enough to be noticed.
const HOLDS_THE_LOOP: Duration = Duration::from_millis(10);
/// Long polls examined per picture, each against every other task or branch (10,000 tasks
/// that each block would otherwise cost 10⁸ looks at every redraw); the first ones found
/// are what the warning shows anyway.
const MOST_LONG_POLLS: usize = 200;

/// A row of the picture: a task (by tokio's id) or a branch inside one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Row {
    Task(u64),
    Branch(u64),
}

/// A task or branch that held its thread while others waited.
#[derive(Debug, Clone, PartialEq)]
pub struct Holding {
    pub row: Row,
    /// Its label, with its line in the cell where known.
    pub name: String,
    /// How long its flagged polls held the thread, in all.
    pub held: Duration,
    /// The tasks or branches that were ready and could not run meanwhile.
    pub waiting: Vec<String>,
    /// Start of each flagged poll, to mark it on the picture.
    pub polls: Vec<Duration>,
}

/// Every task and branch that held the event loop while another was ready, in the order
/// found: tasks first (a task kept waiting by another on its thread), then branches (a
/// future of a task kept waiting by another of the same task). Only long polls are looked
/// at, and each against the others' polls and readiness around it: 10,000 short tasks cost
/// next to nothing.
pub fn held_the_loop(trace: &RuntimeTrace) -> Vec<Holding> {
    let mut found = Vec::new();
    let mut budget = MOST_LONG_POLLS;
    let tasks: Vec<Waiter> = trace.tasks.iter().map(Waiter::Task).collect();
    for (at, task) in tasks.iter().enumerate() {
        let row = Row::Task(trace.tasks[at].id);
        found.extend(holding(row, *task, &tasks, true, &mut budget));
    }
    for task in &trace.tasks {
        let branches: Vec<Waiter> = task.branches.iter().map(Waiter::Branch).collect();
        for (at, branch) in branches.iter().enumerate() {
            let row = Row::Branch(task.branches[at].id);
            found.extend(holding(row, *branch, &branches, false, &mut budget));
        }
    }
    found
}

/// A task or a branch: one that may have held the loop, or have been kept waiting.
#[derive(Clone, Copy)]
enum Waiter<'a> {
    Task(&'a TaskTrace),
    Branch(&'a BranchTrace),
}

impl<'a> Waiter<'a> {
    fn name(self) -> String {
        match self {
            Waiter::Task(task) => task_name(task),
            Waiter::Branch(branch) => branch_name(branch),
        }
    }

    fn same(self, other: Waiter) -> bool {
        match (self, other) {
            (Waiter::Task(a), Waiter::Task(b)) => a.id == b.id,
            (Waiter::Branch(a), Waiter::Branch(b)) => a.id == b.id,
            _ => false,
        }
    }

    /// Its polls, in the order they started.
    fn polls(self) -> &'a [Poll] {
        match self {
            Waiter::Task(task) => &task.polls,
            Waiter::Branch(branch) => &branch.polls,
        }
    }

    /// When it was ready for certain (spawned or made, and woken), in time order.
    fn ready(self) -> &'a [Duration] {
        match self {
            Waiter::Task(task) => &task.ready,
            Waiter::Branch(branch) => &branch.ready,
        }
    }

    /// The timers it set (a task's: its own and its branches').
    fn any_timer(self, mut test: impl FnMut(&Timer) -> bool) -> bool {
        match self {
            Waiter::Task(task) => {
                task.timers.iter().any(&mut test)
                    || (task.branches.iter().flat_map(|b| &b.timers)).any(&mut test)
            }
            Waiter::Branch(branch) => branch.timers.iter().any(test),
        }
    }

    /// Its first poll that started at or after `at`.
    fn next_poll(self, at: Duration) -> Option<&'a Poll> {
        let polls = self.polls();
        polls.get(polls.partition_point(|poll| poll.start < at))
    }

    /// Whether it was ready and not polled for at least [`HOLDS_THE_LOOP`] of `poll`;
    /// `same_thread`: and its next poll then ran on `poll`'s thread (a task kept waiting
    /// there, not one that another worker was free to take).
    fn kept_waiting_by(self, poll: &Poll, same_thread: bool) -> bool {
        if self
            .next_poll(poll.start)
            .is_some_and(|inner| inner.end <= poll.end)
        {
            // Polled inside it (a `join!` within a branch): it ran rather than waited.
            return false;
        }
        let on_thread = |next: &Poll| !same_thread || next.thread == poll.thread;
        // The last time it became ready before the poll, and those during it.
        let ready = self.ready();
        let from = ready
            .partition_point(|&at| at < poll.start)
            .saturating_sub(1);
        let to = ready.partition_point(|&at| at < poll.end);
        let was_ready = ready[from..to].iter().any(|&ready| {
            let next = self.next_poll(ready);
            let until = next.map_or(poll.end, |next| next.start.min(poll.end));
            until.saturating_sub(ready.max(poll.start)) >= HOLDS_THE_LOOP
                && next.is_some_and(on_thread)
        });
        // A timer due during the poll, and the first poll after it as soon as the thread
        // was free again: it was kept waiting (a timer that was dropped, or had its future
        // woken by something else, has no poll there).
        was_ready
            || self.any_timer(|timer| {
                timer.set < poll.start
                    && poll.end.saturating_sub(timer.due.max(poll.start)) >= HOLDS_THE_LOOP
                    && self.next_poll(timer.due).is_some_and(|next| {
                        on_thread(next) && next.start.saturating_sub(poll.end) < HOLDS_THE_LOOP
                    })
            })
    }
}

/// The polls of `row` that held the loop while one of `others` waited; each long poll
/// looked at takes one from `budget`.
fn holding(
    row: Row,
    held: Waiter,
    others: &[Waiter],
    same_thread: bool,
    budget: &mut usize,
) -> Option<Holding> {
    let mut holding = Holding {
        row,
        name: String::new(),
        held: Duration::ZERO,
        waiting: Vec::new(),
        polls: Vec::new(),
    };
    for poll in held
        .polls()
        .iter()
        .filter(|poll| length(poll) >= HOLDS_THE_LOOP)
    {
        if *budget == 0 {
            break;
        }
        *budget -= 1;
        let mut kept = (others.iter())
            .filter(|other| !other.same(held) && other.kept_waiting_by(poll, same_thread))
            .peekable();
        if kept.peek().is_none() {
            continue;
        }
        holding.held += length(poll);
        holding.polls.push(poll.start);
        for other in kept {
            let name = other.name();
            if !holding.waiting.contains(&name) {
                holding.waiting.push(name);
            }
        }
    }
    if holding.polls.is_empty() {
        return None;
    }
    holding.name = held.name();
    Some(holding)
}

fn length(poll: &Poll) -> Duration {
    poll.end.saturating_sub(poll.start)
}

/// The line under the cell for one task or branch that held the loop.
pub fn warning(holding: &Holding) -> String {
    let others = match holding.row {
        Row::Task(_) => "every task waiting for its thread",
        Row::Branch(_) => "every other future of its task",
    };
    format!(
        "⚠ {} held the event loop for {:.2} s while {} waited to run: a blocking call in \
         async code (std::thread::sleep, blocking I/O, a long loop) keeps {others} \
         waiting. Use tokio::time::sleep or async I/O, or move the blocking work to \
         tokio::task::spawn_blocking.",
        holding.name,
        holding.held.as_secs_f64(),
        holding.waiting.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use tandem_helpers::kernel_link::events::TimerKind;

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
            ..BranchTrace::default()
        }
    }

    fn cell_with(branches: Vec<BranchTrace>) -> RuntimeTrace {
        RuntimeTrace {
            tasks: vec![TaskTrace {
                ended: true,
                branches,
                ..TaskTrace::default()
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

    fn task(id: u64, polls: &[(u64, u64, usize)], ready: &[u64]) -> TaskTrace {
        TaskTrace {
            id,
            polls: (polls.iter())
                .map(|&(start, end, thread)| Poll {
                    start: ms(start),
                    end: ms(end),
                    thread,
                })
                .collect(),
            ready: ready.iter().map(|&at| ms(at)).collect(),
            ended: true,
            ..TaskTrace::default()
        }
    }

    fn tasks(tasks: Vec<TaskTrace>) -> RuntimeTrace {
        RuntimeTrace {
            tasks,
            threads: vec!["worker #1".into(), "worker #2".into()],
            dropped: 0,
        }
    }

    #[test]
    fn a_task_is_flagged_when_a_task_ready_on_its_thread_waited_for_it() {
        // Task 1 blocks its thread 0–400 ms; task 2, spawned at 0, ran there only after.
        let kept = tasks(vec![
            task(1, &[(0, 400, 0)], &[0]),
            task(2, &[(400, 401, 0)], &[0]),
        ]);
        let found = held_the_loop(&kept);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].row, Row::Task(1));
        assert_eq!(found[0].waiting, ["task 2"]);
        assert!(warning(&found[0]).contains("every task waiting for its thread"));
        // Another worker was free and took task 2 at once: nobody waited.
        let stolen = tasks(vec![
            task(1, &[(0, 400, 0)], &[0]),
            task(2, &[(1, 2, 1)], &[0]),
        ]);
        assert!(held_the_loop(&stolen).is_empty());
        // Task 2 waited, but then ran on the other worker: busy workers, not this task.
        let elsewhere = tasks(vec![
            task(1, &[(0, 400, 0)], &[0]),
            task(2, &[(300, 301, 1)], &[0]),
        ]);
        assert!(held_the_loop(&elsewhere).is_empty());
    }

    #[test]
    fn a_timer_that_fell_due_during_a_blocking_poll_counts_as_waiting() {
        // Task 2 slept 100 ms from 0; task 1 blocked 5–400 ms; task 2 ran again at once.
        let mut sleeper = task(2, &[(0, 1, 0), (400, 401, 0)], &[0]);
        sleeper.timers.push(Timer {
            kind: TimerKind::Sleep,
            set: ms(0),
            due: ms(100),
        });
        let found = held_the_loop(&tasks(vec![task(1, &[(5, 400, 0)], &[0]), sleeper.clone()]));
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].waiting, ["task 2"]);
        // A timer that was dropped (its task ran next much later, for something else).
        sleeper.polls[1] = Poll {
            start: ms(900),
            end: ms(901),
            thread: 0,
        };
        assert!(held_the_loop(&tasks(vec![task(1, &[(5, 400, 0)], &[0]), sleeper])).is_empty());
    }
}
