//! Memory and process limits on the engine's process, the one that runs the cells, so that
//! a cell that allocates or forks without end by mistake meets its own limit instead of
//! the machine's.
//!
//! rlimits, set in that process before any cell runs (soft and hard, so a cell cannot
//! raise them again) and inherited by what its cells start: `RLIMIT_DATA` (memory the
//! process reserves: heap, anonymous mmaps and thread stacks, touched or not) and
//! `RLIMIT_NPROC` (processes and threads of the user, all of theirs: past it, fork and
//! thread spawns fail). The kernel's own process has neither, so it stays up and says
//! which limit a cell met. A restarted engine starts again from the kernel's limits.
//! An admin sets them with `TANDEM_MEMORY_LIMIT` and `TANDEM_PROCESS_LIMIT`. They guard
//! against accidents; a learner set on using the machine needs cgroups (systemd, k8s).

/// A limit as the admin gave it, or its default.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// No limit from tandem.
    Off,
    /// This many bytes, or processes.
    At(u64),
    /// The default (see [`memory_limit`]; no process limit).
    Default,
}

/// `TANDEM_MEMORY_LIMIT`: bytes, with an optional K, M, G or T suffix (powers of 1024; `KB`,
/// `KiB` alike), or `off`. Unset: half of the machine's memory.
pub fn memory_setting() -> Result<Limit, String> {
    parse("TANDEM_MEMORY_LIMIT", parse_bytes)
}

/// `TANDEM_PROCESS_LIMIT`: the most processes and threads the user may have for the
/// engine to start another, or `off`. Unset: none (in a container, every pod's user may
/// be the same uid on the node, and the count is the node's).
pub fn process_setting() -> Result<Limit, String> {
    parse("TANDEM_PROCESS_LIMIT", |value| value.parse().ok())
}

fn parse(name: &str, number: impl Fn(&str) -> Option<u64>) -> Result<Limit, String> {
    let Ok(value) = std::env::var(name) else {
        return Ok(Limit::Default);
    };
    let given = value.trim();
    if given.is_empty() {
        return Ok(Limit::Default);
    }
    if given.eq_ignore_ascii_case("off") {
        return Ok(Limit::Off);
    }
    match number(given) {
        Some(n) if n > 0 => Ok(Limit::At(n)),
        _ => Err(format!(
            "{name}={value:?} is neither a positive number nor `off`"
        )),
    }
}

fn parse_bytes(text: &str) -> Option<u64> {
    let (digits, unit) = match text.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        Some((at, _)) => text.split_at(at),
        None => (text, ""),
    };
    let unit = unit.trim().to_ascii_uppercase();
    let unit = unit.trim_end_matches('B').trim_end_matches('I');
    let scale: u64 = match unit {
        "" => 1,
        "K" => 1 << 10,
        "M" => 1 << 20,
        "G" => 1 << 30,
        "T" => 1 << 40,
        _ => return None,
    };
    digits.parse::<u64>().ok()?.checked_mul(scale)
}

/// The memory limit in bytes that `setting` stands for, on this machine.
pub fn memory_limit(setting: Limit) -> Option<u64> {
    match setting {
        Limit::Off => None,
        Limit::At(bytes) => Some(bytes),
        Limit::Default => {
            // SAFETY: sysconf only reads system constants.
            let (pages, size) = unsafe {
                (
                    libc::sysconf(libc::_SC_PHYS_PAGES),
                    libc::sysconf(libc::_SC_PAGESIZE),
                )
            };
            (pages > 0 && size > 0).then(|| pages as u64 * size as u64 / 2)
        }
    }
}

/// The process limit that `setting` stands for.
pub fn process_limit(setting: Limit) -> Option<u64> {
    match setting {
        Limit::At(count) => Some(count),
        Limit::Off | Limit::Default => None,
    }
}

/// Says in the kernel's log what the limits will be, or what is wrong with a setting (the
/// engine's process cannot: nothing reads its output before a cell runs).
pub fn log_settings() {
    match memory_setting() {
        Ok(setting) => match memory_limit(setting) {
            Some(bytes) => log::debug!("cells may reserve {} (memory limit)", human_bytes(bytes)),
            None => log::debug!("no memory limit on cells"),
        },
        Err(problem) => log::warn!("{problem}: cells get no memory limit"),
    }
    match process_setting() {
        Ok(setting) => {
            if let Some(count) = process_limit(setting) {
                log::debug!("cells may start processes while the user has fewer than {count}");
            }
        }
        Err(problem) => log::warn!("{problem}: cells get no process limit"),
    }
}

/// Sets both limits on this process (the engine's, before any cell runs), never above a
/// limit already there. A setting that does not parse sets nothing (`log_settings` has
/// said so in the kernel's log).
pub fn apply_to_this_process() {
    let memory = memory_setting().ok().and_then(memory_limit);
    let processes = process_setting().ok().and_then(process_limit);
    let limits = [
        (libc::RLIMIT_DATA as libc::c_int, memory),
        (libc::RLIMIT_NPROC as libc::c_int, processes),
    ];
    for (resource, limit) in limits {
        if let Some(value) = limit {
            // Failing leaves the process as it was: nothing to undo.
            let _ = lower(resource, value);
        }
    }
}

/// Lowers both the soft and the hard limit to `value` (or keeps a lower one). Lowering a
/// hard limit needs no privilege, and no process of this user can raise it again.
fn lower(resource: libc::c_int, value: u64) -> std::io::Result<()> {
    let mut current = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one rlimit into the struct it is given. (The casts: glibc
    // types the resource as an enum of the same values.)
    if unsafe { libc::getrlimit(resource as _, &mut current) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    let wanted = value.min(current.rlim_max).min(current.rlim_cur);
    let limit = libc::rlimit {
        rlim_cur: wanted,
        rlim_max: wanted,
    };
    // SAFETY: setrlimit reads one rlimit.
    if unsafe { libc::setrlimit(resource as _, &limit) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Processes and threads of this process's real user, from /proc (what RLIMIT_NPROC counts;
/// zombies included, as the kernel counts them).
fn tasks_of_this_user() -> u64 {
    let uid = crate::private_dirs::my_uid().to_string();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return 0;
    };
    let mut tasks = 0;
    for entry in entries.flatten() {
        if !entry
            .file_name()
            .to_string_lossy()
            .bytes()
            .all(|b| b.is_ascii_digit())
        {
            continue;
        }
        let Ok(status) = std::fs::read_to_string(entry.path().join("status")) else {
            continue;
        };
        let field = |name: &str| {
            status
                .lines()
                .find_map(|line| line.strip_prefix(name))
                .map(str::trim)
        };
        let real_uid = field("Uid:").and_then(|ids| ids.split_whitespace().next());
        if real_uid == Some(uid.as_str()) {
            tasks += field("Threads:").and_then(|n| n.parse().ok()).unwrap_or(1);
        }
    }
    tasks
}

/// What to tell a learner whose cell's process ended with `detail` (std's last words
/// among them), when an allocation failed under the memory limit.
pub fn memory_hint(detail: &str) -> Option<String> {
    let asked = detail
        .lines()
        .find_map(|line| line.split("memory allocation of ").nth(1))?
        .split(' ')
        .next()?
        .parse::<u64>()
        .ok()?;
    let limit = memory_setting().ok().and_then(memory_limit);
    Some(match limit {
        Some(limit) => format!(
            "The cell asked for {} more, and this kernel's cells may reserve {} in all \
             (thread stacks included: the memory limit, TANDEM_MEMORY_LIMIT, set by whoever \
             runs this server).",
            human_bytes(asked),
            human_bytes(limit)
        ),
        None => format!(
            "The cell asked for {} more, and the machine had no more to give.",
            human_bytes(asked)
        ),
    })
}

/// What to tell a learner whose cell failed to start a process or thread with EAGAIN, when
/// that was the process limit: one is set, and the user's processes and threads are at it.
pub fn process_hint(message: &str) -> Option<String> {
    let refused = message.contains("os error 11") || message.contains("WouldBlock");
    let limit = process_setting().ok().and_then(process_limit)?;
    if !refused || tasks_of_this_user() * 10 < limit * 9 {
        return None;
    }
    Some(format!(
        "The cell could not start another process or thread: your processes and threads \
         together may number {limit} (the process limit, TANDEM_PROCESS_LIMIT, set by \
         whoever runs this server), and they do. What the cell started counts until it ends \
         and is waited for; restarting the kernel ends it all."
    ))
}

fn human_bytes(bytes: u64) -> String {
    const GIB: f64 = (1u64 << 30) as f64;
    const MIB: f64 = (1u64 << 20) as f64;
    if bytes as f64 >= GIB {
        format!("{:.1} GiB", bytes as f64 / GIB)
    } else {
        format!("{:.0} MiB", bytes as f64 / MIB)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_take_a_unit_and_nonsense_is_refused() {
        assert_eq!(parse_bytes("4G"), Some(4 << 30));
        assert_eq!(parse_bytes("2GiB"), Some(2 << 30));
        assert_eq!(parse_bytes("512M"), Some(512 << 20));
        assert_eq!(parse_bytes("512mb"), Some(512 << 20));
        assert_eq!(parse_bytes("1000"), Some(1000));
        assert_eq!(parse_bytes("4X"), None);
        assert_eq!(parse_bytes("G"), None);
        assert_eq!(parse_bytes("99999999999T"), None);
    }

    #[test]
    fn memory_defaults_to_half_the_machine_and_processes_to_no_limit() {
        assert!(memory_limit(Limit::Default).is_some_and(|bytes| bytes > 1 << 20));
        assert_eq!(memory_limit(Limit::Off), None);
        assert_eq!(process_limit(Limit::Default), None);
        assert_eq!(process_limit(Limit::At(64)), Some(64));
        assert!(tasks_of_this_user() >= 1, "this test's own threads count");
    }

    #[test]
    fn an_allocation_that_failed_is_explained_with_its_size() {
        let detail = "signal: 6 (SIGABRT) (memory allocation of 32212254720 bytes failed)";
        let hint = memory_hint(detail).unwrap();
        assert!(hint.contains("30.0 GiB"), "{hint}");
        assert_eq!(memory_hint("signal 9"), None);
    }
}
