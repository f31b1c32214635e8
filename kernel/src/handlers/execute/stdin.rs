//! The bridge from a running cell's `read_line` to the client: an `input_request` on the
//! stdin channel, answered by the learner (or an empty line where stdin is not allowed).

use super::super::Request;
use crate::engine::{Interrupter, OutputSink, StreamName};
use crate::server::Outbox;
use crate::wire::content::{self, InputRequest};
use crate::wire::Message;
use std::cell::RefCell;
use std::sync::Arc;

/// What a cell reads from stdin, for the duration of one execute request.
pub struct StdinBridge<'a, 'b> {
    outbox: RefCell<&'a mut Outbox<'b>>,
    request: &'a Message,
    allowed: bool,
    /// Where the cell is told that it gets nothing, when the client allows no stdin.
    warnings: Arc<dyn OutputSink>,
    interrupter: Arc<Interrupter>,
}

impl<'a, 'b> StdinBridge<'a, 'b> {
    pub fn new(
        request: &'a mut Request<'_, 'b>,
        allowed: bool,
        warnings: Arc<dyn OutputSink>,
        interrupter: Arc<Interrupter>,
    ) -> StdinBridge<'a, 'b> {
        StdinBridge {
            outbox: RefCell::new(&mut *request.outbox),
            request: request.message,
            allowed,
            warnings,
            interrupter,
        }
    }

    /// Asks the client for a line (`password` hides what is typed); an interrupt or a
    /// client that allows no stdin gives an empty one.
    pub fn read(&self, prompt: &str, password: bool) -> String {
        if !self.allowed {
            self.warnings.stream(
                StreamName::Stderr,
                "tandem: the code asked for input, but this client does not allow stdin; \
                 it gets an empty string\n",
            );
            return String::new();
        }
        let ask = self.request.child(
            "input_request",
            content::to_value(&InputRequest {
                prompt: prompt.to_owned(),
                password,
            }),
        );
        let mut outbox = self.outbox.borrow_mut();
        let Some(stdin) = outbox.stdin() else {
            return String::new();
        };
        stdin
            .ask(&ask, &|| self.interrupter.requested())
            .unwrap_or_default()
    }
}
