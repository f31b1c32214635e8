//! The kernel core, between the server and the engine: one dispatch table per channel from
//! `msg_type` to a function, with busy/idle and the reply envelope done here, once, for all.

mod comm;
mod commands;
mod control;
mod execute;
mod history;
mod introspect;
mod kernel;
mod kernel_info;
mod stop_on_error;

pub use control::ControlHandlers;
pub use kernel::serve;

use crate::engine::{self, Engine, Interrupter, OutputSink};
use crate::server::{self, Iopub, Outbox, ShutdownSignal};
use crate::wire::content::{
    self, ErrorContent, ErrorReply, ReplyStatus, ShutdownReply, ShutdownRequest, Status,
};
use crate::wire::Message;
use history::History;
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::sync::Arc;

/// What a handler produces: a reply, nothing (comm messages have no reply), or an error
/// that becomes a `status: error` reply.
pub type Handled = Result<Option<Reply>, ErrorContent>;

/// A handler for one message type, on the state of its channel.
pub type Route<S> = fn(&mut S, &mut Request) -> Handled;

/// A reply's content and metadata.
pub struct Reply {
    pub content: Value,
    pub metadata: serde_json::Map<String, Value>,
}

impl Reply {
    pub fn new<T: serde::Serialize>(content: &T) -> Reply {
        Reply::from_value(content::to_value(content))
    }

    pub fn from_value(content: Value) -> Reply {
        Reply {
            content,
            metadata: serde_json::Map::new(),
        }
    }
}

/// One request being handled: the message, the socket it came on, and iopub.
pub struct Request<'a, 'b> {
    pub message: &'a Message,
    pub outbox: &'a mut Outbox<'b>,
    pub iopub: &'a Iopub,
}

impl Request<'_, '_> {
    /// Publishes a message on iopub with this request as its parent.
    pub fn publish(&self, msg_type: &str, content: Value) {
        self.iopub.publish(self.message.child(msg_type, content));
    }

    /// The request's content as its typed form, or an error reply saying what is wrong.
    pub fn content<T: DeserializeOwned>(&self) -> Result<T, ErrorContent> {
        serde_json::from_value(self.message.content.clone()).map_err(|error| ErrorContent {
            ename: "InvalidRequest".to_owned(),
            evalue: format!(
                "{} has malformed content: {error}",
                self.message.header.msg_type
            ),
            traceback: Vec::new(),
        })
    }
}

/// Runs one handler inside the protocol's envelope: busy, handler, reply, idle.
fn serve_request<S>(
    state: &mut S,
    handler: Route<S>,
    message: &Message,
    outbox: &mut Outbox,
    iopub: &Iopub,
) {
    let publish_status = |execution_state| {
        iopub.publish(message.child("status", content::to_value(&Status { execution_state })))
    };
    publish_status("busy");
    let mut request = Request {
        message,
        outbox,
        iopub,
    };
    // A bug in a handler (or in evcxr under it) must not take the channel down: the
    // request gets an error reply and the kernel goes on.
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        handler(state, &mut request)
    }))
    .unwrap_or_else(|panic| {
        let what = panic
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".to_owned());
        log::error!("handler for {} panicked: {what}", message.header.msg_type);
        Err(ErrorContent {
            ename: "InternalError".to_owned(),
            evalue: format!("tandem hit an internal error: {what}"),
            traceback: Vec::new(),
        })
    });
    let reply = match outcome {
        Ok(reply) => reply,
        Err(error) => {
            log::warn!("{}: {}", message.header.msg_type, error.evalue);
            Some(Reply::new(&ErrorReply::new(error)))
        }
    };
    if let Some(reply) = reply {
        let reply_type = reply_type(&message.header.msg_type);
        let mut reply_message = message.child(&reply_type, reply.content);
        reply_message.metadata = reply.metadata;
        // Everything a shell request published goes out before its reply. Control replies
        // (interrupt, shutdown) never wait for a cell's output.
        if request.outbox.is_shell() {
            iopub.flush_all();
        }
        request.outbox.send(&reply_message);
    }
    publish_status("idle");
}

/// Looks the message up in a channel's dispatch table and serves it, or reports it unknown.
fn dispatch<S>(
    state: &mut S,
    table: &[(&str, Route<S>)],
    message: &Message,
    outbox: &mut Outbox,
    iopub: &Iopub,
) {
    let msg_type = message.header.msg_type.as_str();
    let started = std::time::Instant::now();
    log::debug!("{msg_type} received");
    match table.iter().find(|(name, _)| *name == msg_type) {
        Some((_, handler)) => serve_request(state, *handler, message, outbox, iopub),
        None => unknown(message, outbox),
    }
    log::debug!("{msg_type} answered in {:?}", started.elapsed());
}

/// A shutdown asked for by a request (on shell or control), carried out only once its
/// reply and `idle` are on their way.
pub struct Shutdown {
    signal: ShutdownSignal,
    pending: Option<bool>,
    /// Whether the kernel was told to stop (or restart): nothing new starts after that.
    under_way: bool,
}

impl Shutdown {
    pub fn new(signal: ShutdownSignal) -> Shutdown {
        Shutdown {
            signal,
            pending: None,
            under_way: false,
        }
    }

    /// Answers a `shutdown_request` and schedules the shutdown.
    fn handle(&mut self, request: &Request) -> Handled {
        let wanted: ShutdownRequest = request.content()?;
        self.pending = Some(wanted.restart);
        Ok(Some(Reply::new(&ShutdownReply {
            status: ReplyStatus::Ok,
            restart: wanted.restart,
        })))
    }

    /// Called after each request: stops the kernel if a shutdown was asked for.
    fn carry_out(&mut self) {
        if let Some(restart) = self.pending.take() {
            self.signal.request(restart);
            self.under_way = true;
        }
    }
}

/// `foo_request` is answered by `foo_reply`.
fn reply_type(request_type: &str) -> String {
    match request_type.strip_suffix("_request") {
        Some(stem) => format!("{stem}_reply"),
        None => format!("{request_type}_reply"),
    }
}

/// A request type nobody handles: logged, and answered with an error when it is a request.
fn unknown(message: &Message, outbox: &mut Outbox) {
    let msg_type = &message.header.msg_type;
    log::warn!("ignoring unknown message type {msg_type:?}");
    if msg_type.ends_with("_request") {
        let error = ErrorReply::new(ErrorContent {
            ename: "UnknownMessageType".to_owned(),
            evalue: format!("tandem does not handle {msg_type}"),
            traceback: Vec::new(),
        });
        outbox.send(&message.child(&reply_type(msg_type), content::to_value(&error)));
    }
}

/// The engine, which starts in the background so `kernel_info` is answered at once.
enum EngineSlot {
    Starting(engine::Starting),
    Ready(Box<Engine>),
    Failed(String),
}

impl From<anyhow::Result<Engine>> for EngineSlot {
    fn from(started: anyhow::Result<Engine>) -> EngineSlot {
        match started {
            Ok(engine) => EngineSlot::Ready(Box::new(engine)),
            Err(error) => EngineSlot::Failed(format!("{error:#}")),
        }
    }
}

/// State of the shell channel: the engine, the execution counter and the history.
pub struct ShellHandlers {
    iopub: Iopub,
    engine: EngineSlot,
    interrupter: Arc<Interrupter>,
    execution_count: u64,
    history: History,
    /// What waited behind a cell that failed with `stop_on_error`.
    waiting: stop_on_error::Waiting,
    shutdown: Shutdown,
    /// What the kernel's own commands set (`:timing`, `:timeline`).
    settings: commands::Settings,
    /// The last cell that drew an event-loop picture: its count and its trace (`:trace save`).
    last_trace: Option<(u64, engine::RuntimeTrace)>,
}

/// How long the shell must stay without requests before idle work starts.
const QUIET_BEFORE_IDLE_WORK: std::time::Duration = std::time::Duration::from_secs(1);

/// The shell channel's dispatch table.
const SHELL_TABLE: &[(&str, Route<ShellHandlers>)] = &[
    ("kernel_info_request", |_, _| kernel_info::reply()),
    ("execute_request", execute::handle),
    ("complete_request", introspect::complete),
    ("inspect_request", introspect::inspect),
    ("is_complete_request", introspect::is_complete),
    ("history_request", |shell, request| {
        shell.history.handle(request)
    }),
    ("comm_info_request", comm::info),
    ("comm_open", comm::open),
    ("comm_msg", comm::message),
    ("comm_close", comm::close),
    ("shutdown_request", |shell, request| {
        shell.shutdown.handle(request)
    }),
];

impl ShellHandlers {
    /// `engine` is starting in the background, and `interrupter` is attached to it.
    fn new(
        iopub: Iopub,
        shutdown: ShutdownSignal,
        engine: anyhow::Result<engine::Starting>,
        interrupter: Arc<Interrupter>,
    ) -> ShellHandlers {
        let engine = match engine {
            Ok(starting) => EngineSlot::Starting(starting),
            Err(error) => {
                log::error!("cannot start the engine thread: {error}");
                EngineSlot::Failed(format!("cannot start the engine thread: {error}"))
            }
        };
        ShellHandlers {
            iopub,
            engine,
            interrupter,
            execution_count: 0,
            history: History::default(),
            waiting: Default::default(),
            shutdown: Shutdown::new(shutdown),
            settings: commands::Settings::default(),
            last_trace: None,
        }
    }

    /// The engine, waiting for it to finish starting if need be; while it waits, `sink`
    /// shows what the engine is doing (taken away once it is ready).
    fn engine(&mut self, sink: &dyn OutputSink) -> Result<&mut Engine, ErrorContent> {
        if let EngineSlot::Starting(starting) = &self.engine {
            let mut shown = false;
            let outcome = starting.wait(|line| {
                sink.progress(line);
                shown = true;
            });
            if shown {
                // The cell has printed nothing yet: clearing takes only the progress line
                // away, when the cell's first output arrives.
                sink.clear_output(true);
            }
            self.engine = EngineSlot::from(outcome);
        }
        self.started_engine()
    }

    /// The engine if it has finished starting; never waits (for completion and inspection,
    /// which answer from what they have while the engine starts).
    fn ready_engine(&mut self) -> Option<&mut Engine> {
        if let EngineSlot::Starting(starting) = &self.engine {
            self.engine = EngineSlot::from(starting.try_finish()?);
        }
        self.started_engine().ok()
    }

    fn started_engine(&mut self) -> Result<&mut Engine, ErrorContent> {
        match &mut self.engine {
            EngineSlot::Ready(engine) => Ok(engine),
            EngineSlot::Failed(reason) => Err(ErrorContent {
                ename: "EngineUnavailable".to_owned(),
                evalue: format!("the Rust engine could not start: {reason}"),
                traceback: vec![format!("the Rust engine could not start: {reason}")],
            }),
            EngineSlot::Starting(_) => unreachable!("resolved above"),
        }
    }

    /// Work put off until the shell has been quiet for [`QUIET_BEFORE_IDLE_WORK`]: the
    /// engine's first analysis query (1.2-3.7 s), when a cell was already waiting as the
    /// engine started (then the learner's first Tab would wait for it). The quiet
    /// spell keeps it from delaying a request sent right after a reply (the next cell
    /// of a quick Shift+Enter, a client's follow-up); it runs once.
    fn while_idle(&mut self, outbox: &Outbox) {
        if self.shutdown.under_way {
            return;
        }
        let EngineSlot::Ready(engine) = &mut self.engine else {
            return;
        };
        if !engine.needs_analysis_warm_up() || !outbox.stays_quiet_for(QUIET_BEFORE_IDLE_WORK) {
            return;
        }
        if engine.warm_up_analysis() {
            log::debug!("rust-analyzer warmed up while idle");
        }
    }

    /// One request through the dispatch table, then the shutdown it may have asked for.
    fn serve(&mut self, message: &Message, outbox: &mut Outbox, iopub: &Iopub) {
        dispatch(self, SHELL_TABLE, message, outbox, iopub);
        self.shutdown.carry_out();
    }
}

impl server::Handler for ShellHandlers {
    /// Entry point for every message on the shell socket.
    fn handle(&mut self, message: Message, outbox: &mut Outbox) {
        let iopub = self.iopub.clone();
        self.serve(&message, outbox, &iopub);
        stop_on_error::answer_waiting(self, outbox, &iopub, ShellHandlers::serve);
        self.while_idle(outbox);
    }
}
