//! Whether the machine has memory to spare for a standby: on a server shared by a class,
//! each learner's standby holds about 600 MB that nobody uses until their next notebook.
//! Under memory pressure standbys are not started; kernels then start their own engine.

/// What a standby takes, about (its kernel and engine, resident, measured under a hub).
const STANDBY_BYTES: u64 = 700 << 20;
/// The share of the machine's memory that must stay available once the standby runs.
const KEEP_AVAILABLE: f64 = 0.15;

/// Why no standby should start now, or `None` when one may.
pub fn too_little_memory() -> Option<String> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok()?;
    let (total, available) = (
        field(&meminfo, "MemTotal:")?,
        field(&meminfo, "MemAvailable:")?,
    );
    short_of_memory(total, available)
}

fn short_of_memory(total: u64, available: u64) -> Option<String> {
    let keep = (total as f64 * KEEP_AVAILABLE) as u64;
    (available < keep + STANDBY_BYTES).then(|| {
        format!(
            "no standby kernel: {} MB of memory available, and a standby takes about {} MB \
             of what should stay free ({} MB, 15% of the machine's)",
            available >> 20,
            STANDBY_BYTES >> 20,
            keep >> 20
        )
    })
}

/// A `/proc/meminfo` field, in bytes (the file gives kB).
fn field(meminfo: &str, name: &str) -> Option<u64> {
    let line = meminfo.lines().find(|line| line.starts_with(name))?;
    let kilobytes: u64 = line[name.len()..]
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kilobytes * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_standby_starts_only_with_memory_to_spare() {
        let gib = 1u64 << 30;
        assert_eq!(short_of_memory(24 * gib, 20 * gib), None);
        let refused = short_of_memory(24 * gib, 3 * gib).unwrap();
        assert!(refused.contains("3072 MB of memory available"), "{refused}");
        let meminfo = "MemTotal:       24546196 kB\nMemFree:  1 kB\nMemAvailable:   20000000 kB\n";
        assert_eq!(field(meminfo, "MemTotal:"), Some(24546196 * 1024));
        assert_eq!(field(meminfo, "MemAvailable:"), Some(20000000 * 1024));
        assert_eq!(field(meminfo, "Swap:"), None);
    }
}
