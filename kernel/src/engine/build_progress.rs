//! Watches evcxr's target directory while a cell compiles. When dependencies are being
//! built (a cold cache, a new `:dep`), it reports which and how many, so the cell shows
//! progress instead of silence, and measures how long that part of the compile took.

use super::OutputSink;
use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How often the target directory is looked at.
const POLL: Duration = Duration::from_millis(250);

/// A running watch; [`Watch::finish`] stops it (at once: the watcher waits on a channel).
pub struct Watch {
    stop: Option<Sender<()>>,
    thread: Option<std::thread::JoinHandle<Option<Duration>>>,
}

impl Watch {
    /// Starts watching `build_dir` (evcxr's crate directory), reporting to `sink`.
    pub fn start(build_dir: &Path, sink: Arc<dyn OutputSink>) -> Watch {
        let (stop, stopped) = crossbeam_channel::bounded(1);
        let build_dir = build_dir.to_path_buf();
        let thread = std::thread::Builder::new()
            .name("build-progress".into())
            .spawn(move || watch(&build_dir, sink.as_ref(), &stopped))
            .ok();
        Watch {
            stop: Some(stop),
            thread,
        }
    }

    /// Stops watching; returns how long dependencies took to build, if any were built.
    pub fn finish(mut self) -> Option<Duration> {
        self.stop.take();
        self.thread
            .take()
            .and_then(|thread| thread.join().ok())
            .flatten()
    }
}

fn watch(build_dir: &Path, sink: &dyn OutputSink, stop: &Receiver<()>) -> Option<Duration> {
    let before = units(build_dir);
    // The new units and the state each is in.
    let survey = || -> Vec<(String, Unit)> {
        units(build_dir)
            .difference(&before)
            .filter(|unit| package_of(unit) != CELL_CRATE)
            .map(|unit| (package_of(unit), unit_state(build_dir, unit)))
            .collect()
    };
    let mut first_seen: Option<Instant> = None;
    let mut shown = String::new();
    // Dropping the sender ends the wait at once.
    while let Err(RecvTimeoutError::Timeout) = stop.recv_timeout(POLL) {
        let new = survey();
        if new.is_empty() {
            continue;
        }
        let since = *first_seen.get_or_insert_with(|| Instant::now() - POLL / 2);
        let done = new
            .iter()
            .filter(|(_, state)| *state == Unit::Built)
            .count();
        let compiling: Vec<&str> = new
            .iter()
            .filter(|(_, state)| *state == Unit::Compiling)
            .map(|(name, _)| name.as_str())
            .collect();
        let now = if compiling.is_empty() {
            String::new()
        } else {
            format!(" · compiling {}", compiling.join(", "))
        };
        let text = format!(
            "⚙ building dependencies: {done} of {} crates done{now} · {:.0} s",
            new.len(),
            since.elapsed().as_secs_f64()
        );
        if text != shown {
            sink.progress(&text);
            shown = text;
        }
    }
    let took = first_seen?.elapsed();
    let new = survey();
    let done = new
        .iter()
        .filter(|(_, state)| *state == Unit::Built)
        .count();
    sink.progress(&format!(
        "⚙ built {done} of {} dependency crates in {:.1} s",
        new.len(),
        took.as_secs_f64()
    ));
    Some(took)
}

/// Where cargo is with a unit: it makes the unit's fingerprint directory when it plans
/// it, writes `invoked.timestamp` when it starts rustc, and the fingerprint (any file
/// besides `dep-*`, the timestamp and the `.json`) when the unit is built.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Unit {
    Planned,
    Compiling,
    Built,
}

fn unit_state(build_dir: &Path, unit: &str) -> Unit {
    let mut state = Unit::Planned;
    for dir in fingerprint_dirs(build_dir) {
        for file in std::fs::read_dir(dir.join(unit))
            .into_iter()
            .flatten()
            .flatten()
        {
            let name = file.file_name();
            let name = name.to_string_lossy();
            if name == "invoked.timestamp" {
                state = Unit::Compiling;
            } else if !name.starts_with("dep-") && !name.ends_with(".json") {
                return Unit::Built;
            }
        }
    }
    state
}

/// evcxr's own crate, rebuilt for every cell.
const CELL_CRATE: &str = "ctx";

/// The build units cargo has fingerprinted (`<package>-<hash>`), for the target and the
/// host (build scripts, proc macros).
fn units(build_dir: &Path) -> BTreeSet<String> {
    fingerprint_dirs(build_dir)
        .flat_map(|dir| std::fs::read_dir(dir).into_iter().flatten().flatten())
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .collect()
}

fn fingerprint_dirs(build_dir: &Path) -> impl Iterator<Item = PathBuf> {
    let target = build_dir.join("target");
    let mut dirs = vec![target.join("debug/.fingerprint")];
    if let Ok(entries) = std::fs::read_dir(&target) {
        for entry in entries.flatten() {
            dirs.push(entry.path().join("debug/.fingerprint"));
        }
    }
    dirs.into_iter()
}

/// `tokio-9a58e3fda2e3a509` → `tokio`.
fn package_of(unit: &str) -> String {
    match unit.rsplit_once('-') {
        Some((name, hash)) if hash.chars().all(|c| c.is_ascii_hexdigit()) => name.to_owned(),
        _ => unit.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_name_their_package() {
        assert_eq!(package_of("tokio-9a58e3fda2e3a509"), "tokio");
        assert_eq!(package_of("futures-util-d3ace29868d76f9a"), "futures-util");
        assert_eq!(package_of("odd-name"), "odd-name");
    }
}
