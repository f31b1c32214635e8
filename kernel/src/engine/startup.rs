//! An engine's start: the scratch directory seeded from the prebuilt template, evcxr and
//! its child process, the output forwarder, the session's prelude, and rust-analyzer's
//! first (slow) query, warmed up when nothing waits for it.

use super::event_channel::EventChannel;
use super::output::Forwarder;
use super::{artifacts, prelude, split_timings, Engine, Interrupter, StartStatus, Startup};
use anyhow::{anyhow, Result};
use evcxr::CommandContext;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

impl Engine {
    /// Starts evcxr (this compiles a first snippet: seconds, so callers do it in the
    /// background) and attaches the interrupter to its child process.
    pub fn start(
        interrupter: Arc<Interrupter>,
        startup: Startup,
        status: &StartStatus,
    ) -> Result<Engine> {
        let build_dir = std::env::var_os("EVCXR_TMPDIR")
            .map(PathBuf::from)
            .ok_or_else(|| anyhow!("EVCXR_TMPDIR is not set"))?;
        artifacts::write_profile_overrides(&build_dir)?;
        super::limits::log_settings();
        if startup == Startup::FromTemplate {
            status.set("copying the prebuilt crates");
            if let Err(error) = artifacts::prepare(&build_dir, status) {
                log::warn!("starting without prebuilt dependencies: {error:#}");
            }
        }
        // Listening before the engine's process starts, which connects when it first sends.
        let events = EventChannel::listen();
        status.set("starting evcxr");
        let (mut context, outputs) =
            CommandContext::new().map_err(|e| anyhow!("starting the evcxr engine: {e}"))?;
        interrupter.attach(context.process_handle());
        // Read from the start: evcxr's output channels are bounded (patches/README.md), so
        // a startup step that printed much would otherwise wait for a reader.
        let forwarder = Forwarder::start(outputs.stdout, outputs.stderr);
        // evcxr has run one snippet; each startup step below that runs code adds one more.
        let mut runs = 1;
        // Starting evcxr pruned Cargo.lock to an empty crate's; restore the versions the
        // template was built with before the first `:dep`.
        artifacts::seed_lockfile(&build_dir)?;
        for (step, code) in prelude::steps() {
            status.set(step);
            let step_started = Instant::now();
            let outputs = context.execute(&code).map_err(|e| anyhow!("{step}: {e}"))?;
            runs += u64::from(split_timings(&outputs, Duration::ZERO).ran);
            log::debug!("{step}: {:?}", step_started.elapsed());
        }
        // Take the startup snippets' output (and their stderr sync markers) out of the way
        // of the first cell.
        forwarder.finish_cell(runs);
        let mut engine = Engine {
            context,
            forwarder,
            events,
            interrupter,
            build_dir,
            analysis_warm: startup == Startup::InPlace,
        };
        // Skipped when a cell is already waiting: it would wait longer, for something only
        // a `let` or a completion needs. The kernel does it later, after 1 s without requests.
        if !engine.analysis_warm && !status.awaited() {
            status.set("warming up rust-analyzer");
            engine.warm_up_analysis();
        }
        Ok(engine)
    }

    /// Whether [`Engine::warm_up_analysis`] has work left to do.
    pub fn needs_analysis_warm_up(&self) -> bool {
        !self.analysis_warm
    }

    /// rust-analyzer's first query of a session costs seconds (the first `let` took 2.4 s,
    /// the first completion 1.3 s, later ones 0.1–0.3 s; JupyterLab gives up on a
    /// completion after 1 s). Asks one throwaway query, once; it changes nothing in the
    /// session. Returns whether it ran.
    pub fn warm_up_analysis(&mut self) -> bool {
        if std::mem::replace(&mut self.analysis_warm, true) {
            return false;
        }
        let warm_up = "let tandem_warm_up = 1;\ntandem_warm_up";
        let analysed = Instant::now();
        // rust-analyzer can panic on some sessions' code ("failed to unify type owners",
        // seen after a cell defined a fn): a warm-up must never take the kernel with it.
        let context = &mut self.context;
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            context.completions(warm_up, warm_up.len()).map(drop)
        }));
        match outcome {
            Ok(Ok(())) => log::debug!("warm-up analysis took {:?}", analysed.elapsed()),
            Ok(Err(error)) => log::debug!("warm-up analysis failed: {error}"),
            Err(_) => log::warn!("rust-analyzer panicked during the warm-up; going on"),
        }
        true
    }
}
