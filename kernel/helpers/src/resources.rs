//! What a piece of code costs the process while it runs: the most threads it had at once
//! and the memory it held, sampled from `/proc/self/status` (Linux) every few milliseconds.

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// The process's figures at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct Sample {
    threads: usize,
    resident_kib: u64,
    reserved_kib: u64,
}

fn sample() -> Sample {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| -> u64 {
        status
            .lines()
            .find_map(|line| line.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|number| number.parse().ok())
            .unwrap_or(0)
    };
    Sample {
        threads: field("Threads:") as usize,
        resident_kib: field("VmRSS:"),
        reserved_kib: field("VmSize:"),
    }
}

/// What the measured code added at its peak, above the process as it was before.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Usage {
    /// Threads running at once, beyond those that were there already.
    pub extra_threads: usize,
    /// Memory actually in use (resident), in MiB.
    pub extra_resident_mib: f64,
    /// Address space reserved (thread stacks count here in full), in MiB.
    pub extra_reserved_mib: f64,
}

impl fmt::Display for Usage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} extra threads · +{:.1} MiB in use · +{:.0} MiB reserved",
            self.extra_threads, self.extra_resident_mib, self.extra_reserved_mib
        )
    }
}

/// Runs `work` and returns its value with the peak [`Usage`] seen while it ran.
///
/// ```
/// let (_, usage) = tandem_helpers::resources::measure(|| {
///     let threads: Vec<_> = (0..8)
///         .map(|_| std::thread::spawn(|| std::thread::sleep(std::time::Duration::from_millis(200))))
///         .collect();
///     threads.into_iter().for_each(|t| t.join().unwrap());
/// });
/// assert!(usage.extra_threads >= 8);
/// ```
pub fn measure<T>(work: impl FnOnce() -> T) -> (T, Usage) {
    let before = sample();
    let stop = Arc::new(AtomicBool::new(false));
    let sampler = {
        let stop = stop.clone();
        std::thread::Builder::new()
            .name("resource-watch".into())
            .spawn(move || {
                let mut peak = sample();
                while !stop.load(Ordering::Relaxed) {
                    std::thread::sleep(Duration::from_millis(2));
                    let now = sample();
                    peak.threads = peak.threads.max(now.threads);
                    peak.resident_kib = peak.resident_kib.max(now.resident_kib);
                    peak.reserved_kib = peak.reserved_kib.max(now.reserved_kib);
                }
                peak
            })
    };
    let value = work();
    stop.store(true, Ordering::Relaxed);
    let peak = sampler
        .ok()
        .and_then(|sampler| sampler.join().ok())
        .unwrap_or(before);
    let mib = |kib: u64, base: u64| kib.saturating_sub(base) as f64 / 1024.0;
    let usage = Usage {
        // The sampler is a thread of ours, not of the work.
        extra_threads: peak.threads.saturating_sub(before.threads + 1),
        extra_resident_mib: mib(peak.resident_kib, before.resident_kib),
        extra_reserved_mib: mib(peak.reserved_kib, before.reserved_kib),
    };
    (value, usage)
}
