//! The processes descended from one, found in /proc, and ending them all. A program a cell
//! started that left the engine's process group (`setsid`, a daemon's double fork) is still
//! a descendant: the engine's process adopts what its cells orphan (it is a subreaper).

use std::collections::{HashMap, HashSet};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

/// How many times the tree is walked and killed while something is left in it (a process
/// that forks as it is killed leaves children for the next round).
const MOST_ROUNDS: usize = 50;
/// How deep a chain of parents is followed up to the root.
const DEEPEST: usize = 256;

/// Makes this process the one its descendants' orphans are given to, instead of init
/// (PR_SET_CHILD_SUBREAPER); false if the system refused.
pub fn adopt_orphans() -> bool {
    // SAFETY: prctl with PR_SET_CHILD_SUBREAPER takes one integer argument.
    unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0 }
}

/// Sends SIGKILL to every live process descended from `root` (not `root` itself), round
/// after round until none is left (a process killed stays a zombie until it is reaped:
/// zombies are not counted). Each is signalled through a pidfd opened first and then
/// checked to hold a descendant of `root`, so a pid freed and given to another process is
/// not signalled. Returns how many processes were signalled.
pub fn kill_descendants(root: libc::pid_t) -> usize {
    let mut killed = 0;
    for _ in 0..MOST_ROUNDS {
        let found = descendants(root, &live_parents());
        if found.is_empty() {
            break;
        }
        killed += (found.iter())
            .filter(|&&pid| kill_if_descendant(pid, root))
            .count();
    }
    killed
}

/// Every live process's parent, from /proc (zombies, already dead, are left out).
fn live_parents() -> HashMap<libc::pid_t, libc::pid_t> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return HashMap::new();
    };
    entries
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse().ok())
        .filter_map(|pid| match stat_of(pid)? {
            ('Z' | 'X', _) => None,
            (_, parent) => Some((pid, parent)),
        })
        .collect()
}

/// The state and the parent of `pid`, from /proc/PID/stat (the two fields after the name,
/// which is in parentheses and may hold any character).
fn stat_of(pid: libc::pid_t) -> Option<(char, libc::pid_t)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let mut fields = stat[stat.rfind(')')? + 1..].split_whitespace();
    let state = fields.next()?.chars().next()?;
    Some((state, fields.next()?.parse().ok()?))
}

fn parent_of(pid: libc::pid_t) -> Option<libc::pid_t> {
    stat_of(pid).map(|(_, parent)| parent)
}

/// The processes below `root` in `parents`, parents before their children.
fn descendants(root: libc::pid_t, parents: &HashMap<libc::pid_t, libc::pid_t>) -> Vec<libc::pid_t> {
    let mut children: HashMap<libc::pid_t, Vec<libc::pid_t>> = HashMap::new();
    for (&pid, &parent) in parents {
        children.entry(parent).or_default().push(pid);
    }
    let mut found = Vec::new();
    let mut seen = HashSet::from([root]);
    let mut next = vec![root];
    while let Some(pid) = next.pop() {
        for &child in children.get(&pid).into_iter().flatten() {
            if seen.insert(child) {
                found.push(child);
                next.push(child);
            }
        }
    }
    found
}

/// Whether `pid`'s chain of parents reaches `root`.
fn descends_from(pid: libc::pid_t, root: libc::pid_t) -> bool {
    let mut at = pid;
    for _ in 0..DEEPEST {
        match parent_of(at) {
            Some(parent) if parent == root => return true,
            Some(parent) if parent > 1 => at = parent,
            _ => return false,
        }
    }
    false
}

/// SIGKILL to `pid` if it still descends from `root`. The pidfd is opened before the check:
/// if the pid is freed and reused after that, the signal goes to the process the pidfd
/// held, which is gone, and reaches no one. (Without pidfds, Linux before 5.3, a plain kill
/// follows the check: a narrow window, not none.)
fn kill_if_descendant(pid: libc::pid_t, root: libc::pid_t) -> bool {
    // SAFETY: pidfd_open takes a pid and flags, and returns a new descriptor or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    let Some(fd) = libc::c_int::try_from(fd).ok().filter(|&fd| fd >= 0) else {
        let unsupported = std::io::Error::last_os_error().raw_os_error() == Some(libc::ENOSYS);
        // SAFETY: kill with a pid just checked to descend from `root`.
        return unsupported
            && descends_from(pid, root)
            && unsafe { libc::kill(pid, libc::SIGKILL) } == 0;
    };
    // SAFETY: pidfd_open returned a new descriptor, owned here alone.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    descends_from(pid, root)
        // SAFETY: pidfd_send_signal with a pidfd we own, a signal, no info, no flags.
        && unsafe {
            libc::syscall(
                libc::SYS_pidfd_send_signal,
                fd.as_raw_fd(),
                libc::SIGKILL,
                std::ptr::null::<libc::siginfo_t>(),
                0,
            )
        } == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tree_is_found_below_its_root_parents_first() {
        let parents = HashMap::from([(10, 1), (11, 10), (12, 11), (13, 10), (20, 1), (14, 12)]);
        let mut found = descendants(10, &parents);
        assert_eq!(found.len(), 4);
        let at = |pid| found.iter().position(|&p| p == pid).unwrap();
        assert!(at(11) < at(12) && at(12) < at(14));
        found.sort_unstable();
        assert_eq!(found, [11, 12, 13, 14]);
        assert!(descendants(20, &parents).is_empty());
    }

    #[test]
    fn this_process_is_its_parents_child() {
        let me = std::process::id() as libc::pid_t;
        // SAFETY: getppid cannot fail.
        let parent = unsafe { libc::getppid() };
        assert_eq!(parent_of(me), Some(parent));
        let state = stat_of(me).map(|(state, _)| state);
        assert!(matches!(state, Some('R' | 'S' | 'D')), "alive: {state:?}");
        assert!(descends_from(me, parent));
        assert!(!descends_from(me, me));
    }
}
