//! The control channel: `kernel_info`, `interrupt` and `shutdown`, answered on their own
//! thread so they never wait for a running cell.

use super::{kernel_info, serve_request, unknown, Handled, Reply, Request};
use crate::engine::Interrupter;
use crate::server::{Iopub, Outbox, ShutdownSignal};
use crate::wire::content::{self, InterruptReply, ShutdownReply, ShutdownRequest};
use crate::wire::Message;
use std::sync::Arc;

pub struct ControlHandlers {
    iopub: Iopub,
    interrupter: Arc<Interrupter>,
    shutdown: ShutdownSignal,
    /// Set by a shutdown request; acted on after its reply and `idle` are out.
    pending_shutdown: Option<bool>,
}

type ControlHandler = fn(&mut ControlHandlers, &mut Request) -> Handled;

/// The control channel's dispatch table.
const CONTROL_TABLE: &[(&str, ControlHandler)] = &[
    ("kernel_info_request", |_, _| kernel_info::reply()),
    ("interrupt_request", |control, _| {
        let stopped = control.interrupter.interrupt();
        log::info!("interrupt requested (a cell was running: {stopped})");
        Ok(Some(Reply::new(&InterruptReply { status: "ok" })))
    }),
    ("shutdown_request", |control, request| {
        let reply = shutdown_reply(request)?;
        control.pending_shutdown = Some(reply.restart);
        Ok(Some(Reply::new(&reply)))
    }),
];

pub fn shutdown_reply(request: &Request) -> Result<ShutdownReply, content::ErrorContent> {
    let wanted: ShutdownRequest = request.content()?;
    Ok(ShutdownReply {
        status: "ok",
        restart: wanted.restart,
    })
}

impl ControlHandlers {
    pub fn new(iopub: Iopub, interrupter: Arc<Interrupter>, shutdown: ShutdownSignal) -> Self {
        ControlHandlers {
            iopub,
            interrupter,
            shutdown,
            pending_shutdown: None,
        }
    }

    pub fn handle(&mut self, message: Message, outbox: &mut Outbox) {
        let msg_type = message.header.msg_type.as_str();
        match CONTROL_TABLE.iter().find(|(name, _)| *name == msg_type) {
            Some((_, handler)) => {
                let iopub = self.iopub.clone();
                serve_request(self, *handler, &message, outbox, &iopub);
            }
            None => unknown(&message, outbox),
        }
        if let Some(restart) = self.pending_shutdown.take() {
            self.shutdown.request(restart);
        }
    }
}
