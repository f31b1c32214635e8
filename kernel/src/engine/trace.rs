//! What the runtime did during one cell, assembled from the poll recorder's events: each
//! task with the place that spawned it and its polls (when, on which thread), the cell's
//! own future as task 0, times from the cell's first poll.

use std::collections::HashMap;
use std::time::Duration;
use tandem_helpers::kernel_link::events::Event;

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

#[derive(Debug, Clone, PartialEq)]
pub struct TaskTrace {
    /// tokio's task id; 0 is the cell's own future.
    pub id: u64,
    /// Where it was spawned (`file:line:column`), when it was spawned during the cell.
    pub spawned_at: Option<String>,
    pub polls: Vec<Poll>,
    /// Whether it finished (or was dropped) before the cell ended.
    pub ended: bool,
    /// Futures polled inside it (branches of `join!`), in the order first polled.
    pub branches: Vec<BranchTrace>,
}

/// A future inside a task: a branch of `join!`, `try_join!` or `select!`.
#[derive(Debug, Clone, PartialEq)]
pub struct BranchTrace {
    pub id: u64,
    /// Its source text (`fetch("orders", 2)`).
    pub name: String,
    pub polls: Vec<Poll>,
    /// When it was ready to be polled: when it was made, and each wake-up.
    pub ready: Vec<Duration>,
    /// When it was dropped before it finished (a `select!` branch that lost).
    pub cancelled: Option<Duration>,
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
        let mut branch_names: HashMap<u64, String> = HashMap::new();
        let mut branch_ready: HashMap<u64, Vec<Duration>> = HashMap::new();
        let mut branch_index: HashMap<u64, (usize, usize)> = HashMap::new();
        let mut ended = Vec::new();
        let mut cancelled: HashMap<u64, Duration> = HashMap::new();
        for event in ordered {
            match event {
                Event::Spawned { task, place, .. } => {
                    let index = trace.task(&mut task_index, *task);
                    trace.tasks[index].spawned_at = Some(place.clone());
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
                } => {
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
                } => {
                    branch_names.insert(*branch, name.clone());
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
                        branches.push(BranchTrace {
                            id: *branch,
                            name: branch_names
                                .get(branch)
                                .cloned()
                                .unwrap_or_else(|| format!("branch {branch}")),
                            polls: Vec::new(),
                            ready: Vec::new(),
                            cancelled: None,
                        });
                        (task_at, branches.len() - 1)
                    });
                    trace.tasks[task_at].branches[at].polls.push(Poll {
                        start: since(*start_ns),
                        end: since(*end_ns),
                        thread,
                    });
                }
                Event::ThreadNamed { .. } | Event::CellStarted { .. } => {}
            }
        }
        for task in ended {
            if let Some(&index) = task_index.get(&task) {
                trace.tasks[index].ended = true;
            }
        }
        for branch in trace
            .tasks
            .iter_mut()
            .flat_map(|task| task.branches.iter_mut())
        {
            branch.ready = branch_ready.remove(&branch.id).unwrap_or_default();
            branch.cancelled = cancelled.remove(&branch.id);
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
                spawned_at: None,
                polls: Vec::new(),
                ended: false,
                branches: Vec::new(),
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

/// A thread's label: the thread that runs cells, or a name with the recorder's number
/// (tokio's workers share one name).
fn thread_label(name: Option<&String>, number: u32) -> String {
    match name.map(String::as_str) {
        Some("cell thread") => "cell thread".to_owned(),
        Some(name) if !name.starts_with("ThreadId(") => format!("{name} #{number}"),
        _ => format!("thread #{number}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn polls_pair_up_per_task_and_thread_from_the_cells_first_poll() {
        let names = HashMap::from([(1, "cell thread".to_owned()), (2, "worker".to_owned())]);
        let events = [
            Event::PollStarted {
                task: 0,
                at_ns: 1_000,
                thread: 1,
            },
            Event::Spawned {
                task: 5,
                at_ns: 1_100,
                place: "src/lib.rs:9:5".into(),
            },
            Event::PollEnded {
                task: 0,
                at_ns: 1_200,
                thread: 1,
            },
            Event::PollEnded {
                task: 9,
                at_ns: 1_250,
                thread: 2,
            }, // started before the cell
            Event::PollStarted {
                task: 5,
                at_ns: 1_300,
                thread: 2,
            },
            Event::PollEnded {
                task: 5,
                at_ns: 2_300,
                thread: 2,
            },
            Event::Ended {
                task: 5,
                at_ns: 2_400,
                thread: 2,
            },
            // Of a task of the cell before: ignored.
            Event::Ended {
                task: 8,
                at_ns: 2_450,
                thread: 2,
            },
            // Its end comes in the next cell's events.
            Event::PollStarted {
                task: 6,
                at_ns: 2_500,
                thread: 2,
            },
            Event::BranchMade {
                branch: 11,
                at_ns: 1_005,
                name: "fetch(\"A\", 2)".into(),
            },
            Event::BranchPolled {
                branch: 11,
                task: 0,
                start_ns: 1_010,
                end_ns: 1_050,
                thread: 1,
            },
            Event::CellEnded {
                at_ns: 3_000,
                dropped: 4,
            },
        ];
        let trace = RuntimeTrace::assemble(&events, &names);
        assert_eq!(trace.threads, ["cell thread", "worker #2"]);
        assert_eq!(trace.dropped, 4);
        let task = trace.tasks.iter().find(|task| task.id == 5).unwrap();
        assert_eq!(task.spawned_at.as_deref(), Some("src/lib.rs:9:5"));
        assert!(task.ended);
        assert_eq!(
            task.polls,
            [Poll {
                start: Duration::from_nanos(300),
                end: Duration::from_nanos(1_300),
                thread: 1
            }]
        );
        assert!(trace.tasks.iter().all(|task| task.id != 8));
        let last = trace.tasks.iter().find(|task| task.id == 6).unwrap();
        assert_eq!(last.polls[0].end, Duration::from_nanos(2_000));
        let branches = &trace.tasks[0].branches;
        assert_eq!(branches.len(), 1);
        assert_eq!(branches[0].name, "fetch(\"A\", 2)");
        assert_eq!(branches[0].polls[0].start, Duration::from_nanos(10));
        assert_eq!(branches[0].ready, [Duration::from_nanos(5)]);
        assert!(trace.has_tasks());
        assert_eq!(trace.task_threads(), 1);
    }

    #[test]
    fn threads_events_concatenated_out_of_time_order_pair_up_and_an_early_end_counts() {
        let names = HashMap::from([(1, "cell thread".to_owned()), (2, "worker".to_owned())]);
        // The worker's ring first, then the cell thread's; the task's end took the time of
        // the terminating thread's last event, earlier than anything else of the task.
        let events = [
            Event::Ended {
                task: 5,
                at_ns: 950,
                thread: 2,
            },
            Event::PollStarted {
                task: 5,
                at_ns: 1_300,
                thread: 2,
            },
            Event::PollEnded {
                task: 5,
                at_ns: 1_500,
                thread: 2,
            },
            Event::PollStarted {
                task: 0,
                at_ns: 1_000,
                thread: 1,
            },
            Event::Spawned {
                task: 5,
                at_ns: 1_000,
                place: "src/lib.rs:2:1".into(),
            },
            Event::PollEnded {
                task: 0,
                at_ns: 1_100,
                thread: 1,
            },
            Event::CellEnded {
                at_ns: 2_000,
                dropped: 0,
            },
        ];
        let trace = RuntimeTrace::assemble(&events, &names);
        assert_eq!(trace.tasks[0].id, 0, "the cell's future first");
        let task = trace.tasks.iter().find(|task| task.id == 5).unwrap();
        assert!(task.ended);
        assert_eq!(task.spawned_at.as_deref(), Some("src/lib.rs:2:1"));
        assert_eq!(task.polls.len(), 1);
        assert_eq!(task.polls[0].start, Duration::from_nanos(300));
    }
}
