//! Where a cell's time went: the figures the engine measures (compile apart from run),
//! the one-line footer shown under each cell, the machine-readable reply metadata, and
//! (in `timeline`) the picture of which helper task ran when.

pub mod timeline;

use serde_json::{json, Map, Value};
use std::time::Duration;

/// The time of one cell, split the way the lesson needs it.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct CellTimings {
    /// Waiting for the engine to finish starting (only the first cell of a kernel).
    pub engine_wait: Duration,
    /// Building dependencies the cell needed first (a new `:dep`, a cold cache).
    pub dependencies: Duration,
    /// Everything else before the code started running: analysis, rustc, linking, loading.
    pub compile: Duration,
    /// The part of `compile` spent asking rust-analyzer for the types of the variables the
    /// cell defines (only cells with a `let`).
    pub analysis: Duration,
    /// The code itself, from load to return.
    pub run: Duration,
    /// Whether the code ran at all (a cell of `:commands` compiles and runs nothing).
    pub ran: bool,
}

/// A mime bundle and its metadata: one display under a cell.
pub type Bundle = (Map<String, Value>, Map<String, Value>);

/// What tandem shows under a cell, after the cell's own output and value, in order: the
/// timeline when helper tasks ran, then the footer (when it is on, and the cell completed
/// and ran code). The kernel and `tandem run` both lay cells out this way.
pub fn under_cell(
    spans: &[tandem_helpers::spans::Span],
    timings: &CellTimings,
    completed: bool,
    footer_on: bool,
) -> Vec<Bundle> {
    let mut shown: Vec<Bundle> = timeline::picture(spans).into_iter().collect();
    if completed && footer_on && timings.ran {
        shown.push(timings.footer());
    }
    shown
}

/// Marks the footer among a cell's outputs (`metadata.tandem.role`).
pub const FOOTER_ROLE: &str = "timing";

fn seconds(duration: Duration) -> String {
    format!("{:.2} s", duration.as_secs_f64())
}

impl CellTimings {
    /// The footer's words: `compile 0.23 s · run 1.50 s`.
    pub fn summary(&self) -> String {
        let mut parts = Vec::new();
        if self.engine_wait >= Duration::from_millis(10) {
            parts.push(format!("engine start {}", seconds(self.engine_wait)));
        }
        if !self.dependencies.is_zero() {
            parts.push(format!("dependencies {}", seconds(self.dependencies)));
        }
        parts.push(format!("compile {}", seconds(self.compile)));
        parts.push(format!("run {}", seconds(self.run)));
        parts.join(" · ")
    }

    /// The footer as a `display_data` mime bundle and its metadata.
    pub fn footer(&self) -> Bundle {
        let text = self.summary();
        let html = format!(
            "<div class=\"tandem-timing\" style=\"font-family: var(--jp-code-font-family, \
             monospace); font-size: 0.85em; opacity: 0.65;\">⏱ {text}</div>"
        );
        let mut data = Map::new();
        data.insert("text/plain".into(), json!(format!("⏱ {text}")));
        data.insert("text/html".into(), json!(html));
        let mut metadata = Map::new();
        metadata.insert("tandem".into(), json!({ "role": FOOTER_ROLE }));
        (data, metadata)
    }

    /// The figures for `execute_reply` metadata, under `tandem`.
    pub fn metadata(&self) -> Value {
        json!({
            "engine_wait_seconds": self.engine_wait.as_secs_f64(),
            "dependencies_seconds": self.dependencies.as_secs_f64(),
            "compile_seconds": self.compile.as_secs_f64(),
            "analysis_seconds": self.analysis.as_secs_f64(),
            "run_seconds": self.run.as_secs_f64(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn footer_shows_compile_and_run_apart() {
        let mut timings = CellTimings {
            engine_wait: Duration::ZERO,
            dependencies: Duration::ZERO,
            compile: Duration::from_millis(230),
            analysis: Duration::ZERO,
            run: Duration::from_millis(1500),
            ran: true,
        };
        assert_eq!(timings.summary(), "compile 0.23 s · run 1.50 s");
        timings.dependencies = Duration::from_secs(31);
        assert_eq!(
            timings.summary(),
            "dependencies 31.00 s · compile 0.23 s · run 1.50 s"
        );
        timings.dependencies = Duration::ZERO;
        let (data, metadata) = timings.footer();
        assert!(data["text/html"].as_str().unwrap().contains("run 1.50 s"));
        assert_eq!(metadata["tandem"]["role"], FOOTER_ROLE);
        assert_eq!(timings.metadata()["run_seconds"], 1.5);
    }

    #[test]
    fn engine_wait_is_shown_when_there_was_one() {
        let timings = CellTimings {
            engine_wait: Duration::from_millis(2100),
            ..Default::default()
        };
        assert!(timings.summary().starts_with("engine start 2.10 s · "));
    }
}
