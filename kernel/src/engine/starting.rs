//! An engine starting on a thread of its own (evcxr takes seconds), so the kernel can
//! answer `kernel_info` at once; whoever needs the engine waits here, with progress lines.

use super::{Engine, Interrupter, Startup};
use anyhow::{anyhow, Result};
use crossbeam_channel::{Receiver, RecvTimeoutError, TryRecvError};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How often a waiting caller hears what the engine is doing.
const PROGRESS_EVERY: Duration = Duration::from_millis(500);

/// The engine being started from the prebuilt template.
pub struct Starting {
    ready: Receiver<Result<Engine>>,
    status: StartStatus,
}

impl Starting {
    /// Starts the engine on the `engine-start` thread.
    pub fn spawn(interrupter: Arc<Interrupter>) -> Result<Starting> {
        Starting::spawn_then(interrupter, || {})
    }

    /// Starts the engine on the `engine-start` thread; `started` runs there once it is up.
    pub fn spawn_then(
        interrupter: Arc<Interrupter>,
        started: impl FnOnce() + Send + 'static,
    ) -> Result<Starting> {
        Starting::on_thread(StartStatus::default(), move |status| {
            let engine = Engine::start(interrupter, Startup::FromTemplate, status);
            if engine.is_ok() {
                started();
            }
            engine
        })
    }

    /// An engine that is already running (a standby kernel's).
    pub fn running(engine: Engine) -> Starting {
        let (ready_tx, ready) = crossbeam_channel::bounded(1);
        let _ = ready_tx.send(Ok(engine));
        Starting {
            ready,
            status: StartStatus::default(),
        }
    }

    /// This engine once it has started (a standby's, taken over by a kernel, perhaps before
    /// it is up): moved into `directory` first when that is given. `start_over` runs when
    /// the start is over, whether the engine came up or not.
    pub fn handed_over(
        self,
        directory: Option<PathBuf>,
        start_over: impl FnOnce() + Send + 'static,
    ) -> Result<Starting> {
        let Starting { ready, status } = self;
        Starting::on_thread(status, move |status| {
            let started = ready
                .recv()
                .map_err(|_| thread_ended())
                .and_then(|started| {
                    let mut engine = started?;
                    if let Some(directory) = directory {
                        status.set("moving to the notebook's folder");
                        // Cells still run, from the standby's folder, if this fails.
                        if let Err(error) = engine.change_directory(&directory) {
                            log::warn!("{error:#}");
                        }
                    }
                    Ok(engine)
                });
            start_over();
            started
        })
    }

    fn on_thread(
        status: StartStatus,
        start: impl FnOnce(&StartStatus) -> Result<Engine> + Send + 'static,
    ) -> Result<Starting> {
        let (ready_tx, ready) = crossbeam_channel::bounded(1);
        let for_engine = status.clone();
        std::thread::Builder::new()
            .name("engine-start".into())
            .spawn(move || {
                let _ = ready_tx.send(start(&for_engine));
            })?;
        Ok(Starting { ready, status })
    }

    /// Waits for the engine. Every half second until it is ready, `progress` gets a line
    /// such as `⚙ starting the Rust engine: starting evcxr · 3 s`.
    pub fn wait(&self, mut progress: impl FnMut(&str)) -> Result<Engine> {
        let waiting = Instant::now();
        loop {
            match self.ready.recv_timeout(PROGRESS_EVERY) {
                Ok(started) => return started,
                Err(RecvTimeoutError::Timeout) => progress(&format!(
                    "⚙ starting the Rust engine: {} · {:.0} s",
                    self.status.get(),
                    waiting.elapsed().as_secs_f64()
                )),
                Err(RecvTimeoutError::Disconnected) => return Err(thread_ended()),
            }
        }
    }

    /// The engine if it has finished starting (or failed to); `None` while it starts.
    pub fn try_finish(&self) -> Option<Result<Engine>> {
        match self.ready.try_recv() {
            Ok(started) => Some(started),
            Err(TryRecvError::Empty) => None,
            Err(TryRecvError::Disconnected) => Some(Err(thread_ended())),
        }
    }
}

fn thread_ended() -> anyhow::Error {
    anyhow!("the engine thread ended")
}

/// What the engine is doing while it starts, for the cells that wait for it, and whether
/// one does.
#[derive(Clone, Default)]
pub struct StartStatus {
    doing: Arc<std::sync::Mutex<String>>,
    awaited: Arc<std::sync::atomic::AtomicBool>,
}

impl StartStatus {
    pub fn set(&self, what: &str) {
        if let Ok(mut doing) = self.doing.lock() {
            what.clone_into(&mut doing);
        }
    }

    /// What the engine is doing; a caller asking is taken to be waiting for it.
    pub fn get(&self) -> String {
        self.awaited
            .store(true, std::sync::atomic::Ordering::SeqCst);
        self.doing
            .lock()
            .map(|doing| doing.clone())
            .unwrap_or_default()
    }

    pub(super) fn awaited(&self) -> bool {
        self.awaited.load(std::sync::atomic::Ordering::SeqCst)
    }
}
