//! Plumbing: reading the poll recorder's events back from their binary form, in the kernel
//! (an unknown kind is an error: the stream is broken).

use super::*;

/// Reads the next event from `bytes`: the event and how many bytes it took; `None` when
/// `bytes` holds no whole event yet. An unknown kind is an error: the stream is broken.
pub fn decode(bytes: &[u8]) -> Result<Option<(Event, usize)>, String> {
    let mut reader = Reader { bytes, at: 0 };
    let Some(kind) = reader.u8() else {
        return Ok(None);
    };
    let event = match kind {
        SPAWNED => (|| {
            Some(Event::Spawned {
                task: reader.u64()?,
                at_ns: reader.u64()?,
                place: reader.u32()?,
            })
        })(),
        TASK_NAMED => (|| {
            Some(Event::TaskNamed {
                task: reader.u64()?,
                name: reader.text()?,
            })
        })(),
        PLACE_NAMED => (|| {
            Some(Event::PlaceNamed {
                place: reader.u32()?,
                text: reader.text()?,
            })
        })(),
        POLL_STARTED | POLL_ENDED | ENDED | LAST_POLL_ENDED => (|| {
            let (task, at_ns, thread) = (reader.u64()?, reader.u64()?, reader.u32()?);
            Some(match kind {
                POLL_STARTED => Event::PollStarted {
                    task,
                    at_ns,
                    thread,
                },
                POLL_ENDED => Event::PollEnded {
                    task,
                    at_ns,
                    thread,
                },
                LAST_POLL_ENDED => Event::LastPollEnded {
                    task,
                    at_ns,
                    thread,
                },
                _ => Event::Ended {
                    task,
                    at_ns,
                    thread,
                },
            })
        })(),
        THREAD_NAMED => (|| {
            Some(Event::ThreadNamed {
                thread: reader.u32()?,
                name: reader.text()?,
            })
        })(),
        CELL_STARTED => reader.u64().map(|at_ns| Event::CellStarted { at_ns }),
        BRANCH_CANCELLED => (|| {
            Some(Event::BranchCancelled {
                branch: reader.u64()?,
                at_ns: reader.u64()?,
            })
        })(),
        CELL_ENDED => (|| {
            Some(Event::CellEnded {
                at_ns: reader.u64()?,
                dropped: reader.u64()?,
            })
        })(),
        BRANCH_MADE => (|| {
            Some(Event::BranchMade {
                branch: reader.u64()?,
                at_ns: reader.u64()?,
                name: reader.text()?,
                place: reader.text()?,
            })
        })(),
        TASK_CANCELLED => (|| {
            Some(Event::TaskCancelled {
                task: reader.u64()?,
                at_ns: reader.u64()?,
            })
        })(),
        TIMER_SET => (|| {
            let (task, branch) = (reader.u64()?, reader.u64()?);
            let (at_ns, deadline_ns) = (reader.u64()?, reader.u64()?);
            let kind = match reader.u8()? {
                0 => TimerKind::Sleep,
                _ => TimerKind::Timeout,
            };
            Some(Event::TimerSet {
                task,
                branch,
                at_ns,
                deadline_ns,
                kind,
            })
        })(),
        BRANCH_WOKEN => (|| {
            Some(Event::BranchWoken {
                branch: reader.u64()?,
                at_ns: reader.u64()?,
            })
        })(),
        BRANCH_POLLED => (|| {
            Some(Event::BranchPolled {
                branch: reader.u64()?,
                task: reader.u64()?,
                start_ns: reader.u64()?,
                end_ns: reader.u64()?,
                thread: reader.u32()?,
            })
        })(),
        other => return Err(format!("unknown event kind {other}")),
    };
    Ok(event.map(|event| (event, reader.at)))
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn take<const N: usize>(&mut self) -> Option<[u8; N]> {
        let bytes = self.bytes.get(self.at..self.at + N)?;
        self.at += N;
        bytes.try_into().ok()
    }

    fn u8(&mut self) -> Option<u8> {
        self.take::<1>().map(|[byte]| byte)
    }

    fn u32(&mut self) -> Option<u32> {
        self.take().map(u32::from_le_bytes)
    }

    fn u64(&mut self) -> Option<u64> {
        self.take().map(u64::from_le_bytes)
    }

    fn text(&mut self) -> Option<String> {
        let len = usize::from(u16::from_le_bytes(self.take()?));
        let bytes = self.bytes.get(self.at..self.at + len)?;
        self.at += len;
        Some(String::from_utf8_lossy(bytes).into_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_round_trip_and_a_part_is_not_an_event() {
        let mut bytes = Vec::new();
        encode_cell_started(&mut bytes, 90);
        encode_place_named(&mut bytes, 4, "cell:3:5");
        encode_spawned(&mut bytes, 7, 100, 4);
        encode_task_event(&mut bytes, TaskEvent::LastPollEnded, 7, 105, 2);
        encode_task_event(&mut bytes, TaskEvent::PollStarted, 7, 110, 2);
        encode_thread_named(&mut bytes, 2, "tokio-runtime-worker");
        encode_branch_made(&mut bytes, 9, 115, "fetch(\"A\", 2)", "cell:4:1");
        encode_branch_polled(&mut bytes, 9, 0, (120, 130), 1);
        encode_branch_woken(&mut bytes, 9, 150);
        encode_branch_cancelled(&mut bytes, 9, 160);
        encode_task_cancelled(&mut bytes, 7, 180);
        encode_task_named(&mut bytes, 7, "orders");
        encode_timer_set(&mut bytes, (7, 9), (185, 1_185), TimerKind::Timeout);
        encode_cell_ended(&mut bytes, 200, 3);
        let mut events = Vec::new();
        let mut at = 0;
        while let Some((event, used)) = decode(&bytes[at..]).unwrap() {
            events.push(event);
            at += used;
        }
        assert_eq!(at, bytes.len());
        assert_eq!(
            events,
            [
                Event::CellStarted { at_ns: 90 },
                Event::PlaceNamed {
                    place: 4,
                    text: "cell:3:5".into()
                },
                Event::Spawned {
                    task: 7,
                    at_ns: 100,
                    place: 4
                },
                Event::LastPollEnded {
                    task: 7,
                    at_ns: 105,
                    thread: 2
                },
                Event::PollStarted {
                    task: 7,
                    at_ns: 110,
                    thread: 2
                },
                Event::ThreadNamed {
                    thread: 2,
                    name: "tokio-runtime-worker".into()
                },
                Event::BranchMade {
                    branch: 9,
                    at_ns: 115,
                    name: "fetch(\"A\", 2)".into(),
                    place: "cell:4:1".into()
                },
                Event::BranchPolled {
                    branch: 9,
                    task: 0,
                    start_ns: 120,
                    end_ns: 130,
                    thread: 1
                },
                Event::BranchWoken {
                    branch: 9,
                    at_ns: 150
                },
                Event::BranchCancelled {
                    branch: 9,
                    at_ns: 160
                },
                Event::TaskCancelled {
                    task: 7,
                    at_ns: 180
                },
                Event::TaskNamed {
                    task: 7,
                    name: "orders".into()
                },
                Event::TimerSet {
                    task: 7,
                    branch: 9,
                    at_ns: 185,
                    deadline_ns: 1_185,
                    kind: TimerKind::Timeout
                },
                Event::CellEnded {
                    at_ns: 200,
                    dropped: 3
                },
            ]
        );
        assert_eq!(
            decode(&bytes[..5]).unwrap(),
            None,
            "half an event waits for the rest"
        );
        assert!(decode(&[99]).is_err());
    }
}
