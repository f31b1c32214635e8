//! What the runtime did during one cell, assembled from the poll recorder's events: each
//! task with the place that spawned it, its polls (when, on which thread), wake-ups, timers
//! and cancellation, the cell's own future as task 0, times from the cell's first poll.

use std::collections::HashMap;
use std::time::Duration;
use tandem_helpers::kernel_link::events::{Event, TimerKind};

/// The tasks of one cell and the threads their polls ran on.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RuntimeTrace {
    /// In the order they were first seen; the cell's own future (id 0) first.
    pub tasks: Vec<TaskTrace>,
    /// Thread names, indexed by `Poll::thread`.
    pub threads: Vec<String>,
    /// Events the recorder did not keep (it keeps a bounded number per cell).
    pub dropped: u64,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct TaskTrace {
    /// tokio's task id; 0 is the cell's own future.
    pub id: u64,
    /// Where it was spawned (`file:line:column`), when it was spawned during the cell.
    pub spawned_at: Option<String>,
    /// What that place's code spawned, and its line in the cell (see `Sites`).
    pub site: Site,
    /// The name it was given (`tokio::task::Builder::name`).
    pub name: Option<String>,
    pub polls: Vec<Poll>,
    /// Whether it finished (or was dropped) before the cell ended.
    pub ended: bool,
    /// When it was ready to be polled: when it was spawned (its wake-ups are not seen;
    /// the timers it set say when it was due).
    pub ready: Vec<Duration>,
    /// When it was dropped before it finished (aborted, or its runtime shut down).
    pub cancelled: Option<Duration>,
    /// Timers its own code set (not its branches').
    pub timers: Vec<Timer>,
    /// Futures polled inside it (branches of `join!`), in the order first polled.
    pub branches: Vec<BranchTrace>,
}

/// A future inside a task: a branch of `join!`, `try_join!` or `select!`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BranchTrace {
    pub id: u64,
    /// Its source text (`fetch("orders", 2)`).
    pub name: String,
    /// Where the macro (or `join_all`) that made it was (`file:line:column`).
    pub place: Option<String>,
    /// That place's line in the cell (see `Sites`).
    pub cell_line: Option<usize>,
    pub polls: Vec<Poll>,
    /// When it was ready to be polled: when it was made, and each wake-up.
    pub ready: Vec<Duration>,
    /// When it was dropped before it finished (a `select!` branch that lost).
    pub cancelled: Option<Duration>,
    /// Timers it set (`sleep`, `timeout`).
    pub timers: Vec<Timer>,
}

/// A spawn's place read in the cell's code: what was spawned, and on which cell line.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Site {
    /// The spawned expression's source text (`fetch("a", 2)`), cut short.
    pub what: Option<String>,
    pub cell_line: Option<usize>,
}

/// A timer a task or branch set, which it then waited for (unless woken sooner).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Timer {
    pub kind: TimerKind,
    pub set: Duration,
    pub due: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Poll {
    pub start: Duration,
    pub end: Duration,
    /// Index into `RuntimeTrace::threads`.
    pub thread: usize,
}

impl RuntimeTrace {
    /// Builds the trace of one cell from its events; `names` names the recorder's thread
    /// numbers (a thread is named once per process, in whichever cell first used it).
    pub fn assemble(events: &[Event], names: &HashMap<u32, String>) -> RuntimeTrace {
        // Each thread's events come in order, and the threads' one after another: in time
        // order, a task's spawn comes before its first poll on a worker (ties keep their
        // order, which is each thread's).
        let mut ordered: Vec<&Event> = events.iter().collect();
        ordered.sort_by_key(|event| event.at_ns().unwrap_or(0));
        let origin = ordered
            .iter()
            .find_map(|event| match event {
                Event::PollStarted { task: 0, at_ns, .. } => Some(*at_ns),
                _ => None,
            })
            .or_else(|| ordered.iter().find_map(|event| event.at_ns()))
            .unwrap_or(0);
        let since = |at: u64| Duration::from_nanos(at.saturating_sub(origin));
        let mut trace = RuntimeTrace::default();
        let mut task_index: HashMap<u64, usize> = HashMap::new();
        let mut thread_index: HashMap<u32, usize> = HashMap::new();
        // Open polls, by (task, thread): a task woken during its poll can start its next poll
        // on another worker before this one reports its end.
        let mut open_polls: HashMap<(u64, u32), u64> = HashMap::new();
        let mut branch_names: HashMap<u64, (String, String)> = HashMap::new();
        let mut branch_ready: HashMap<u64, Vec<Duration>> = HashMap::new();
        let mut branch_index: HashMap<u64, (usize, usize)> = HashMap::new();
        let mut ended = Vec::new();
        let mut cancelled: HashMap<u64, Duration> = HashMap::new();
        let mut branch_timers: HashMap<u64, Vec<Timer>> = HashMap::new();
        let mut task_timers: Vec<(u64, Timer)> = Vec::new();
        let places: HashMap<u32, &str> = (events.iter())
            .filter_map(|event| match event {
                Event::PlaceNamed { place, text } => Some((*place, text.as_str())),
                _ => None,
            })
            .collect();
        for event in ordered {
            match event {
                Event::Spawned { task, place, at_ns } => {
                    let index = trace.task(&mut task_index, *task);
                    trace.tasks[index].spawned_at = places.get(place).map(|text| text.to_string());
                    trace.tasks[index].ready.push(since(*at_ns));
                }
                Event::TaskCancelled { task, at_ns } => {
                    let index = trace.task(&mut task_index, *task);
                    trace.tasks[index].cancelled = Some(since(*at_ns));
                }
                Event::TimerSet {
                    task,
                    branch,
                    at_ns,
                    deadline_ns,
                    kind,
                } => {
                    let timer = Timer {
                        kind: *kind,
                        set: since(*at_ns),
                        due: since(*deadline_ns),
                    };
                    match branch {
                        0 => task_timers.push((*task, timer)),
                        branch => branch_timers.entry(*branch).or_default().push(timer),
                    }
                }
                Event::PollStarted {
                    task,
                    at_ns,
                    thread,
                } => {
                    trace.task(&mut task_index, *task);
                    open_polls.insert((*task, *thread), *at_ns);
                }
                Event::PollEnded {
                    task,
                    at_ns,
                    thread,
                }
                | Event::LastPollEnded {
                    task,
                    at_ns,
                    thread,
                } => {
                    if matches!(event, Event::LastPollEnded { .. }) {
                        ended.push(*task);
                    }
                    let Some(started) = open_polls.remove(&(*task, *thread)) else {
                        continue; // its start came before the cell: not part of it
                    };
                    let thread = trace.thread_index(&mut thread_index, names, *thread);
                    let index = trace.task(&mut task_index, *task);
                    trace.tasks[index].polls.push(Poll {
                        start: since(started),
                        end: since(*at_ns),
                        thread,
                    });
                }
                // Its time may be another thread's last event's: applied after the loop.
                Event::Ended { task, .. } => ended.push(*task),
                Event::CellEnded { at_ns, dropped } => {
                    trace.dropped = *dropped;
                    if *dropped > 0 {
                        // Past the limit, the ends of polls were not kept: an open poll
                        // may have ended long ago, and is not drawn.
                        open_polls.clear();
                    }
                    // A task's last poll wakes the cell before tokio's hook reports its end:
                    // polls still open end with the cell (their reports come after the
                    // cell's events were sent, and are forgotten).
                    for ((task, thread), started) in open_polls.drain() {
                        let thread = trace.thread_index(&mut thread_index, names, thread);
                        let index = trace.task(&mut task_index, task);
                        trace.tasks[index].ended = true;
                        trace.tasks[index].polls.push(Poll {
                            start: since(started),
                            end: since(*at_ns),
                            thread,
                        });
                    }
                }
                Event::BranchMade {
                    branch,
                    at_ns,
                    name,
                    place,
                } => {
                    branch_names.insert(*branch, (name.clone(), place.clone()));
                    branch_ready.entry(*branch).or_default().push(since(*at_ns));
                }
                Event::BranchCancelled { branch, at_ns } => {
                    cancelled.insert(*branch, since(*at_ns));
                }
                Event::BranchWoken { branch, at_ns } => {
                    branch_ready.entry(*branch).or_default().push(since(*at_ns));
                }
                Event::BranchPolled {
                    branch,
                    task,
                    start_ns,
                    end_ns,
                    thread,
                } => {
                    let thread = trace.thread_index(&mut thread_index, names, *thread);
                    let task_at = trace.task(&mut task_index, *task);
                    let (task_at, at) = *branch_index.entry(*branch).or_insert_with(|| {
                        let branches = &mut trace.tasks[task_at].branches;
                        let (name, place) = match branch_names.get(branch) {
                            Some((name, place)) => (name.clone(), Some(place.clone())),
                            None => (format!("branch {branch}"), None),
                        };
                        branches.push(BranchTrace {
                            id: *branch,
                            name,
                            place,
                            ..BranchTrace::default()
                        });
                        (task_at, branches.len() - 1)
                    });
                    trace.tasks[task_at].branches[at].polls.push(Poll {
                        start: since(*start_ns),
                        end: since(*end_ns),
                        thread,
                    });
                }
                // Timeless: applied after the loop, to the tasks that ran.
                Event::ThreadNamed { .. }
                | Event::PlaceNamed { .. }
                | Event::TaskNamed { .. }
                | Event::CellStarted { .. } => {}
            }
        }
        for task in ended {
            if let Some(&index) = task_index.get(&task) {
                trace.tasks[index].ended = true;
            }
        }
        for task in &mut trace.tasks {
            // By when they started (a task's polls are reported as they end).
            task.polls.sort_by_key(|poll| poll.start);
        }
        for event in events {
            if let Event::TaskNamed { task, name } = event {
                if let Some(&index) = task_index.get(task) {
                    trace.tasks[index].name = Some(name.clone());
                }
            }
        }
        for (task, timer) in task_timers {
            // A timer set between a task's polls (none) is not drawn.
            if let Some(&index) = task_index.get(&task) {
                trace.tasks[index].timers.push(timer);
            }
        }
        for branch in trace
            .tasks
            .iter_mut()
            .flat_map(|task| task.branches.iter_mut())
        {
            branch.ready = branch_ready.remove(&branch.id).unwrap_or_default();
            branch.cancelled = cancelled.remove(&branch.id);
            branch.timers = branch_timers.remove(&branch.id).unwrap_or_default();
        }
        trace
    }

    fn thread_index(
        &mut self,
        index: &mut HashMap<u32, usize>,
        names: &HashMap<u32, String>,
        number: u32,
    ) -> usize {
        *index.entry(number).or_insert_with(|| {
            self.threads.push(thread_label(names.get(&number), number));
            self.threads.len() - 1
        })
    }

    fn task(&mut self, index: &mut HashMap<u64, usize>, id: u64) -> usize {
        *index.entry(id).or_insert_with(|| {
            self.tasks.push(TaskTrace {
                id,
                ..TaskTrace::default()
            });
            self.tasks.len() - 1
        })
    }

    /// Whether there is something to draw: tokio's tasks (not only the cell's own future)
    /// ran during the cell, or futures inside a task (branches of `join!`).
    pub fn has_tasks(&self) -> bool {
        self.tasks
            .iter()
            .any(|task| (task.id != 0 && !task.polls.is_empty()) || !task.branches.is_empty())
    }

    /// The threads that polled tasks other than the cell's own future.
    pub fn task_threads(&self) -> usize {
        let mut used: Vec<usize> = self
            .tasks
            .iter()
            .filter(|task| task.id != 0)
            .flat_map(|task| task.polls.iter().map(|poll| poll.thread))
            .collect();
        used.sort_unstable();
        used.dedup();
        used.len()
    }
}

/// A thread's label: the thread that runs cells, a name that has its thread's number
/// (`tokio worker #7`, as the helpers' timeline calls it), or a name with the recorder's.
fn thread_label(name: Option<&String>, number: u32) -> String {
    let numbered = |name: &str| {
        name.rsplit_once(" #").is_some_and(|(_, digits)| {
            !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
        })
    };
    match name.map(String::as_str) {
        Some("cell thread") => "cell thread".to_owned(),
        Some(name) if numbered(name) => name.to_owned(),
        Some(name) if !name.starts_with("ThreadId(") => format!("{name} #{number}"),
        _ => format!("thread #{number}"),
    }
}

#[cfg(test)]
mod tests;
