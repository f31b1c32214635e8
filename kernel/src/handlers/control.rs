//! The control channel: `kernel_info`, `interrupt` and `shutdown`, answered on their own
//! thread so they never wait for a running cell.

use super::{dispatch, kernel_info, Reply, Route, Shutdown};
use crate::engine::Interrupter;
use crate::server::{self, Iopub, Outbox, ShutdownSignal};
use crate::wire::content::{InterruptReply, ReplyStatus};
use crate::wire::Message;
use std::sync::Arc;

pub struct ControlHandlers {
    iopub: Iopub,
    interrupter: Arc<Interrupter>,
    shutdown: Shutdown,
}

/// The control channel's dispatch table.
const CONTROL_TABLE: &[(&str, Route<ControlHandlers>)] = &[
    ("kernel_info_request", |_, _| kernel_info::reply()),
    ("interrupt_request", |control, _| {
        // Before: the cell may be held back by a slow client. After too: a cell that
        // began in between (and holds its output again) is the one interrupted.
        control.iopub.release_output();
        let stopped = control.interrupter.interrupt();
        control.iopub.release_output();
        log::info!("interrupt requested (a cell was running: {stopped})");
        Ok(Some(Reply::new(&InterruptReply {
            status: ReplyStatus::Ok,
        })))
    }),
    ("shutdown_request", |control, request| {
        control.shutdown.handle(request)
    }),
];

impl ControlHandlers {
    pub fn new(iopub: Iopub, interrupter: Arc<Interrupter>, shutdown: ShutdownSignal) -> Self {
        ControlHandlers {
            iopub,
            interrupter,
            shutdown: Shutdown::new(shutdown),
        }
    }
}

impl server::Handler for ControlHandlers {
    fn handle(&mut self, message: Message, outbox: &mut Outbox) {
        let iopub = self.iopub.clone();
        dispatch(self, CONTROL_TABLE, &message, outbox, &iopub);
        self.shutdown.carry_out();
    }
}
