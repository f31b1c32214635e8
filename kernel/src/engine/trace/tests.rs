//! The trace's assembly from events, tried on hand-made event lists.

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
        Event::PlaceNamed {
            place: 3,
            text: "src/lib.rs:9:5".into(),
        },
        Event::Spawned {
            task: 5,
            at_ns: 1_100,
            place: 3,
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
        // Its last poll: the task ended in it.
        Event::LastPollEnded {
            task: 5,
            at_ns: 2_300,
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
            place: "src/lib.rs:20:5".into(),
        },
        Event::TimerSet {
            task: 0,
            branch: 11,
            at_ns: 1_020,
            deadline_ns: 1_520,
            kind: TimerKind::Sleep,
        },
        Event::TaskCancelled {
            task: 5,
            at_ns: 2_350,
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
            dropped: 0,
        },
    ];
    let trace = RuntimeTrace::assemble(&events, &names);
    assert_eq!(trace.threads, ["cell thread", "worker #2"]);
    assert_eq!(trace.dropped, 0);
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
    // Past the recorder's limit, a poll's end may be among the events not kept: an open
    // poll is then not drawn as if it had lasted to the cell's end.
    let mut cut = events.clone();
    if let Some(Event::CellEnded { dropped, .. }) = cut.last_mut() {
        *dropped = 4;
    }
    let trace = RuntimeTrace::assemble(&cut, &names);
    assert_eq!(trace.dropped, 4);
    let last = trace.tasks.iter().find(|task| task.id == 6).unwrap();
    assert!(last.polls.is_empty(), "{last:?}");
    let trace = RuntimeTrace::assemble(&events, &names);
    let branches = &trace.tasks[0].branches;
    assert_eq!(branches.len(), 1);
    assert_eq!(branches[0].name, "fetch(\"A\", 2)");
    assert_eq!(branches[0].polls[0].start, Duration::from_nanos(10));
    assert_eq!(branches[0].ready, [Duration::from_nanos(5)]);
    assert_eq!(branches[0].place.as_deref(), Some("src/lib.rs:20:5"));
    assert_eq!(
        branches[0].timers,
        [Timer {
            kind: TimerKind::Sleep,
            set: Duration::from_nanos(20),
            due: Duration::from_nanos(520)
        }]
    );
    assert_eq!(task.ready, [Duration::from_nanos(100)]);
    assert_eq!(task.cancelled, Some(Duration::from_nanos(1_350)));
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
        Event::PlaceNamed {
            place: 1,
            text: "src/lib.rs:2:1".into(),
        },
        Event::Spawned {
            task: 5,
            at_ns: 1_000,
            place: 1,
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
