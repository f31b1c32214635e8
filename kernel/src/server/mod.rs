//! The server: binds the five ZeroMQ sockets of a connection file and runs one thread per
//! socket (libzmq sockets never cross threads). Messages are decoded by `wire` and handed
//! to the [`Handler`]s it is given; the server itself knows nothing of what a message means.

mod backlog;
mod heartbeat;
mod iopub;
mod outgoing;
mod parent;
mod publisher;
mod router;

pub use iopub::Iopub;
pub use parent::{ended as process_ended, jupyter_server, watch as watch_parent, Parent};
pub use router::Outbox;

use crate::wire::{ConnectionInfo, Message, Signer};
use anyhow::{Context, Result};
use std::time::{Duration, Instant};

/// How long sockets may keep flushing queued messages when the kernel exits.
const LINGER_MS: i32 = 1000;

/// The shell thread's stack. Parsing a cell (is_complete, evcxr's own parse, completions)
/// recurses once per level of nesting; code nested a few thousand levels deep would
/// overflow the default 2 MiB and abort the process. Brackets are refused past
/// `engine::syntax::MAX_NESTING`; this makes room for other kinds (a run of 20,000 unary
/// minus parses, tested), though not for any depth at all. Only the pages a deep parse
/// touches are used; where address space is limited (`ulimit -v`), the shell thread
/// starts with the default stack instead.
const SHELL_STACK: usize = 512 << 20;

/// The largest frame a client may send, in MiB, unless `TANDEM_MAX_MESSAGE_MB` says
/// otherwise: far above any cell or comm message, far below what would exhaust memory.
const MAX_MESSAGE_MB: i64 = 256;

fn max_message_bytes() -> i64 {
    let mb = std::env::var("TANDEM_MAX_MESSAGE_MB")
        .ok()
        .and_then(|mb| mb.trim().parse::<i64>().ok())
        .filter(|&mb| mb > 0)
        .unwrap_or(MAX_MESSAGE_MB);
    mb.saturating_mul(1 << 20)
}

/// How long a port still held by a kernel that is stopping is waited for.
const PORTS_FREED_WITHIN: Duration = Duration::from_secs(3);

/// Everything the sockets need, bound and ready before any thread starts.
pub struct Sockets {
    context: zmq::Context,
    shell: zmq::Socket,
    control: zmq::Socket,
    stdin: zmq::Socket,
    iopub: zmq::Socket,
    heartbeat: zmq::Socket,
}

impl Sockets {
    /// Binds all five sockets; fails early (with the endpoint) if a port is taken.
    pub fn bind(info: &ConnectionInfo) -> Result<Sockets> {
        let context = zmq::Context::new();
        let bind = |kind: zmq::SocketType, port: u16, name: &str| -> Result<zmq::Socket> {
            let socket = context
                .socket(kind)
                .with_context(|| format!("creating {name} socket"))?;
            socket.set_linger(LINGER_MS)?;
            // libzmq reads a frame's size before the frame: a larger one is refused (its
            // sender disconnected) before any memory is taken for it.
            socket.set_maxmsgsize(max_message_bytes())?;
            let endpoint = info.endpoint(port);
            // A restart reuses the ports; the kernel before may still be letting go of them.
            let deadline = Instant::now() + PORTS_FREED_WITHIN;
            loop {
                match socket.bind(&endpoint) {
                    Err(zmq::Error::EADDRINUSE) if Instant::now() < deadline => {
                        std::thread::sleep(Duration::from_millis(50));
                    }
                    bound => {
                        bound.with_context(|| format!("binding {name} socket to {endpoint}"))?;
                        return Ok(socket);
                    }
                }
            }
        };
        Ok(Sockets {
            shell: bind(zmq::ROUTER, info.shell_port, "shell")?,
            control: bind(zmq::ROUTER, info.control_port, "control")?,
            stdin: bind(zmq::ROUTER, info.stdin_port, "stdin")?,
            iopub: {
                let socket = bind(zmq::XPUB, info.iopub_port, "iopub")?;
                // Greet every subscriber, not only the first one to a topic.
                socket.set_xpub_verbose(true)?;
                socket
            },
            heartbeat: bind(zmq::REP, info.hb_port, "heartbeat")?,
            context: context.clone(),
        })
    }
}

/// What the handlers are given to talk back to the kernel's owner.
#[derive(Clone)]
pub struct ShutdownSignal(crossbeam_channel::Sender<bool>);

impl ShutdownSignal {
    /// Ask the kernel process to stop (the client restarts it when `restart` is true).
    pub fn request(&self, restart: bool) {
        let _ = self.0.send(restart);
    }
}

/// What the messages of one socket are handed to, one at a time, on that socket's thread.
pub trait Handler: Send + 'static {
    fn handle(&mut self, message: Message, outbox: &mut Outbox);
}

/// What the server serves: a handler for shell (with stdin) and one for control.
pub struct Handlers<S, C> {
    pub shell: S,
    pub control: C,
    /// Called once at shutdown, before the last output is flushed: stops what runs cells.
    pub stop: Box<dyn FnOnce() + Send>,
}

/// Runs the kernel until a shutdown request arrives. `make_handlers` builds the handlers
/// once the iopub publisher exists.
pub fn serve<S: Handler, C: Handler>(
    sockets: Sockets,
    signer: Signer,
    parent: Parent,
    make_handlers: impl FnOnce(Iopub, ShutdownSignal) -> Handlers<S, C>,
) -> Result<()> {
    let Sockets {
        mut context,
        shell,
        control,
        stdin,
        iopub,
        heartbeat,
    } = sockets;
    let (shutdown_tx, shutdown_rx) = crossbeam_channel::unbounded();
    let orphaned = ShutdownSignal(shutdown_tx.clone());
    parent::watch(parent, move || orphaned.request(false))?;
    let iopub = Iopub::start(iopub, signer.clone())?;
    let Handlers {
        shell: mut shell_handler,
        control: mut control_handler,
        stop,
    } = make_handlers(iopub.clone(), ShutdownSignal(shutdown_tx));

    std::thread::Builder::new()
        .name("heartbeat".into())
        .spawn(move || heartbeat::run(heartbeat))?;
    let control_signer = signer.clone();
    std::thread::Builder::new()
        .name("control".into())
        .spawn(move || {
            router::run(control, None, &control_signer, "control", |msg, outbox| {
                control_handler.handle(msg, outbox)
            })
        })?;
    let serve_shell = move || {
        router::run(shell, Some(stdin), &signer, "shell", |msg, outbox| {
            shell_handler.handle(msg, outbox)
        })
    };
    // The thread gets its work once it exists: a failed spawn would drop the work with it.
    let (hand_over, work) = crossbeam_channel::bounded::<Box<dyn FnOnce() + Send>>(1);
    let spawn_shell = |stack: Option<usize>| {
        let work = work.clone();
        let builder = std::thread::Builder::new().name("shell".into());
        let builder = match stack {
            Some(bytes) => builder.stack_size(bytes),
            None => builder,
        };
        builder.spawn(move || {
            if let Ok(serve) = work.recv() {
                serve();
            }
        })
    };
    if let Err(error) = spawn_shell(Some(SHELL_STACK)) {
        log::warn!("shell thread on the default stack ({error}): deep code may not parse");
        spawn_shell(None)?;
    }
    let _ = hand_over.send(Box::new(serve_shell));

    let restart = shutdown_rx.recv().unwrap_or(false);
    log::info!("shutting down (restart: {restart})");
    iopub.release_output();
    stop();
    iopub.flush(Duration::from_millis(500));
    // Terminating the context wakes every socket thread with ETERM so they close their
    // sockets and queued replies are flushed; a thread stuck in a compile cannot hold us.
    let (done_tx, done_rx) = crossbeam_channel::bounded::<()>(1);
    std::thread::spawn(move || {
        let _ = context.destroy();
        let _ = done_tx.send(());
    });
    let _ = done_rx.recv_timeout(Duration::from_millis(LINGER_MS as u64 + 500));
    Ok(())
}
