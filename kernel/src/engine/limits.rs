//! Memory and process limits on the engine's process, the one that runs the cells, so that
//! a cell that allocates or forks without end meets its own limit instead of the machine's.
//!
//! rlimits, set in that process before any cell runs and inherited by what its cells
//! start: `RLIMIT_DATA` (heap and private memory; Linux counts anonymous mmaps in it) and
//! `RLIMIT_NPROC` (processes and threads of the user: past it, fork and thread spawns
//! fail). The kernel's own process has neither, so it stays up and says which limit a
//! cell met. An admin sets them with `TANDEM_MEMORY_LIMIT` and `TANDEM_PROCESS_LIMIT`.

/// How many more processes and threads the cells may start than the user ran as the
/// engine started, unless `TANDEM_PROCESS_LIMIT` says otherwise.
const DEFAULT_PROCESS_HEADROOM: u64 = 2048;

/// A limit as the admin gave it, or its default.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// No limit from tandem.
    Off,
    /// This many bytes, or processes.
    At(u64),
    /// The default (see [`memory_limit`], [`process_limit`]).
    Default,
}

/// `TANDEM_MEMORY_LIMIT`: bytes, with an optional K, M, G or T suffix (powers of 1024), or
/// `off`. Unset: half of the machine's memory.
pub fn memory_setting() -> Result<Limit, String> {
    parse("TANDEM_MEMORY_LIMIT", parse_bytes)
}

/// `TANDEM_PROCESS_LIMIT`: the most processes and threads the user may have for the
/// engine to start another, or `off`. Unset: what the user runs now plus 2048.
pub fn process_setting() -> Result<Limit, String> {
    parse("TANDEM_PROCESS_LIMIT", |value| value.parse().ok())
}

fn parse(name: &str, number: impl Fn(&str) -> Option<u64>) -> Result<Limit, String> {
    let Ok(value) = std::env::var(name) else {
        return Ok(Limit::Default);
    };
    match value.trim() {
        "" => Ok(Limit::Default),
        "off" => Ok(Limit::Off),
        given => match number(given) {
            Some(n) if n > 0 => Ok(Limit::At(n)),
            _ => Err(format!(
                "{name}={value:?} is neither a positive number nor `off`"
            )),
        },
    }
}

fn parse_bytes(text: &str) -> Option<u64> {
    let (digits, unit) = match text.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        Some((at, _)) => text.split_at(at),
        None => (text, ""),
    };
    let scale: u64 = match unit.trim().to_ascii_uppercase().trim_end_matches('B') {
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
        // SAFETY: sysconf only reads system constants.
        Limit::Default => {
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

/// The process limit that `setting` stands for, for a user who runs `running` now.
pub fn process_limit(setting: Limit, running: u64) -> Option<u64> {
    match setting {
        Limit::Off => None,
        Limit::At(count) => Some(count),
        Limit::Default => Some(running + DEFAULT_PROCESS_HEADROOM),
    }
}

/// Sets both limits on this process (the engine's, before any cell runs), never above a
/// hard limit already there. Problems are written to stderr, which the kernel logs.
pub fn apply_to_this_process() {
    let memory = memory_setting().map(memory_limit);
    let processes = process_setting().map(|setting| process_limit(setting, tasks_of_this_user()));
    for (resource, name, limit) in [
        (libc::RLIMIT_DATA, "memory", memory),
        (libc::RLIMIT_NPROC, "process", processes),
    ] {
        match limit {
            Ok(Some(value)) => {
                if let Err(error) = lower(resource, value) {
                    eprintln!("tandem: could not set the {name} limit: {error}");
                }
            }
            Ok(None) => {}
            Err(problem) => eprintln!("tandem: {problem}; no {name} limit set"),
        }
    }
}

fn lower(resource: libc::__rlimit_resource_t, value: u64) -> std::io::Result<()> {
    let mut current = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one rlimit into the struct it is given.
    if unsafe { libc::getrlimit(resource, &mut current) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    let wanted = value.min(current.rlim_max).min(current.rlim_cur);
    let limit = libc::rlimit {
        rlim_cur: wanted,
        rlim_max: current.rlim_max,
    };
    // SAFETY: setrlimit reads one rlimit; lowering a soft limit needs no privilege.
    if unsafe { libc::setrlimit(resource, &limit) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Processes and threads of this process's real user, from /proc (what RLIMIT_NPROC counts).
fn tasks_of_this_user() -> u64 {
    // SAFETY: getuid cannot fail.
    let uid = unsafe { libc::getuid() }.to_string();
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

/// What to tell a learner whose cell's process ended with `detail` (its last words), when
/// it met the memory limit.
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
            "The cell asked for {} at once, and this kernel's cells may use {} in all (the \
             memory limit, TANDEM_MEMORY_LIMIT, set by whoever runs this server).",
            human_bytes(asked),
            human_bytes(limit)
        ),
        None => format!(
            "The cell asked for {} at once, more than the machine could give.",
            human_bytes(asked)
        ),
    })
}

/// What to tell a learner whose cell failed to start a process or thread: the process
/// limit, when one is set.
pub fn process_hint(message: &str) -> Option<String> {
    let refused = message.contains("os error 11") || message.contains("WouldBlock");
    if !refused || process_setting() == Ok(Limit::Off) {
        return None;
    }
    Some(
        "The cell could not start another process or thread: this kernel's cells may \
         start only so many (the process limit, TANDEM_PROCESS_LIMIT, set by whoever runs \
         this server). Those it started count until they end and are waited for; \
         restarting the kernel ends them all."
            .to_owned(),
    )
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
        assert_eq!(parse_bytes("512M"), Some(512 << 20));
        assert_eq!(parse_bytes("512mb"), Some(512 << 20));
        assert_eq!(parse_bytes("1000"), Some(1000));
        assert_eq!(parse_bytes("4X"), None);
        assert_eq!(parse_bytes("G"), None);
        assert_eq!(parse_bytes("99999999999T"), None);
    }

    #[test]
    fn defaults_follow_the_machine_and_the_user() {
        assert!(memory_limit(Limit::Default).is_some_and(|bytes| bytes > 1 << 20));
        assert_eq!(memory_limit(Limit::Off), None);
        assert_eq!(process_limit(Limit::Default, 100), Some(2148));
        assert_eq!(process_limit(Limit::At(64), 100), Some(64));
        assert!(tasks_of_this_user() >= 1, "this test's own threads count");
    }

    #[test]
    fn an_allocation_that_failed_is_explained_with_its_size() {
        let detail = "memory allocation of 32212254720 bytes failed\n";
        let hint = memory_hint(detail).unwrap();
        assert!(hint.contains("30.0 GiB"), "{hint}");
        assert_eq!(memory_hint("signal 9"), None);
    }
}
