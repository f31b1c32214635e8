//! `stop_on_error`, in one place: when a cell fails (an interrupt counts, as in
//! ipykernel), the execute requests already waiting behind it are aborted once it has been
//! answered; anything else that was waiting is served as usual. A request sent after the
//! failed cell's reply runs as usual too. Silent cells never abort anything.

use super::{serve_request, Handled, Reply, Request, ShellHandlers};
use crate::server::{Iopub, Outbox};
use crate::wire::content::{ExecuteOutcome, ExecuteReply, ExecuteRequest};
use crate::wire::Message;

/// The requests that were waiting when a cell failed with `stop_on_error`.
#[derive(Default)]
pub struct Waiting(Vec<Message>);

impl Waiting {
    /// Called as an execute request is answered: if its cell failed and it asked to stop
    /// on error, takes what waits on the shell socket behind it.
    pub fn after_cell(&mut self, wanted: &ExecuteRequest, failed: bool, outbox: &mut Outbox) {
        if failed && wanted.stop_on_error && !wanted.silent {
            self.0 = outbox.take_queued();
        }
    }
}

/// Answers, in order, what was waiting behind a failed cell: executes are aborted,
/// anything else is served by `serve`.
pub fn answer_waiting(
    shell: &mut ShellHandlers,
    outbox: &mut Outbox,
    iopub: &Iopub,
    serve: fn(&mut ShellHandlers, &Message, &mut Outbox, &Iopub),
) {
    for waiting in std::mem::take(&mut shell.waiting.0) {
        if waiting.header.msg_type == "execute_request" {
            serve_request(shell, aborted, &waiting, outbox, iopub);
        } else {
            serve(shell, &waiting, outbox, iopub);
        }
    }
}

/// The reply to an execute request that waited behind a failed cell.
fn aborted(shell: &mut ShellHandlers, _: &mut Request) -> Handled {
    Ok(Some(Reply::new(&ExecuteReply {
        outcome: ExecuteOutcome::Aborted,
        execution_count: shell.execution_count,
        user_expressions: None,
    })))
}
