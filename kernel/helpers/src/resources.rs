//! What a piece of code costs the process while it runs: time, CPU time, the most threads
//! it had at once and the memory it held (sampled from `/proc/self` every few milliseconds).

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

/// CPU time this thread has used.
fn thread_cpu_time() -> Duration {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes the timespec it is given; this thread's CPU clock is
    // always there on Linux.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut now) };
    Duration::new(
        now.tv_sec.max(0) as u64,
        now.tv_nsec.clamp(0, 999_999_999) as u32,
    )
}

/// CPU time the whole process has used so far (user + system), from `/proc/self/stat`.
fn cpu_time() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name (which may contain spaces) start at `state`; utime
    // and stime are the 12th and 13th of those.
    let after_name = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let ticks: u64 = after_name
        .split_whitespace()
        .skip(11)
        .take(2)
        .filter_map(|field| field.parse::<u64>().ok())
        .sum();
    // SAFETY: sysconf only reads a configuration value.
    let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    Duration::from_secs_f64(ticks as f64 / per_second)
}

/// What the measured code added at its peak, above the process as it was before.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Usage {
    /// How long the code ran.
    pub took: Duration,
    /// CPU time the process used meanwhile (the sampling adds a little): near zero while a
    /// thread only waits.
    pub cpu: Duration,
    /// CPU time of the thread that ran the code (its own, whatever other threads did).
    pub thread_cpu: Duration,
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
            "{:.2} s · CPU {:.2} s · {} extra thread{} · +{:.1} MiB in use · +{:.0} MiB reserved",
            self.took.as_secs_f64(),
            self.cpu.as_secs_f64(),
            self.extra_threads,
            if self.extra_threads == 1 { "" } else { "s" },
            self.extra_resident_mib,
            self.extra_reserved_mib
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
/// // The threads only slept: the process spent next to no CPU time meanwhile.
/// assert!(usage.cpu < usage.took);
/// ```
pub fn measure<T>(work: impl FnOnce() -> T) -> (T, Usage) {
    let stop = Arc::new(AtomicBool::new(false));
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    // The baseline is the sampler's own first sample: its thread, stack and buffers are
    // already there, so they do not count as the work's.
    let sampler = {
        let stop = stop.clone();
        std::thread::Builder::new()
            .name("resource-watch".into())
            .spawn(move || {
                let mut peak = sample();
                let _ = ready_tx.send(peak);
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
    let before = ready_rx.recv().unwrap_or_else(|_| sample());
    let started = std::time::Instant::now();
    let cpu_before = cpu_time();
    let thread_cpu_before = thread_cpu_time();
    let value = work();
    let took = started.elapsed();
    let thread_cpu = thread_cpu_time().saturating_sub(thread_cpu_before);
    let cpu = cpu_time().saturating_sub(cpu_before);
    stop.store(true, Ordering::Relaxed);
    let peak = sampler
        .ok()
        .and_then(|sampler| sampler.join().ok())
        .unwrap_or(before);
    let mib = |kib: u64, base: u64| kib.saturating_sub(base) as f64 / 1024.0;
    let usage = Usage {
        took,
        cpu,
        thread_cpu,
        extra_threads: peak.threads.saturating_sub(before.threads),
        extra_resident_mib: mib(peak.resident_kib, before.resident_kib),
        extra_reserved_mib: mib(peak.reserved_kib, before.reserved_kib),
    };
    (value, usage)
}
