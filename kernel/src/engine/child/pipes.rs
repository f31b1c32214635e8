//! Runs inside the evcxr child process: puts a pipe in place of stdin or stdout, so tandem
//! sits between evcxr's runtime and the kernel (see `filter` and `cell`).

use std::fs::File;
use std::os::fd::{FromRawFd, RawFd};

/// A standard descriptor rerouted through a pipe.
pub(super) struct Interposed {
    /// A copy of what the descriptor was (the kernel's end).
    pub original: File,
    /// The pipe end the process no longer sees: written to for stdin, read from for stdout.
    pub ours: File,
}

/// Puts a pipe in place of fd 0 or fd 1. Our descriptors are close-on-exec, so programs the
/// cell starts do not hold the kernel's pipes open; the standard descriptor itself stays
/// inheritable. On failure nothing changes.
pub(super) fn interpose(fd: RawFd) -> Option<Interposed> {
    let (installed, ours) = match fd {
        0 => (0, 1), // the process reads the pipe; we write it
        1 => (1, 0), // the process writes the pipe; we read it
        _ => return None,
    };
    // SAFETY: plain POSIX calls on descriptors this process owns; every descriptor made
    // here is either closed on failure or handed to a `File` that owns it.
    unsafe {
        let mut fds = [0; 2];
        if libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) != 0 {
            return None;
        }
        let original = libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 3);
        if original < 0 || libc::dup2(fds[installed], fd) < 0 {
            if original >= 0 {
                libc::close(original);
            }
            libc::close(fds[0]);
            libc::close(fds[1]);
            return None;
        }
        libc::close(fds[installed]);
        Some(Interposed {
            original: File::from_raw_fd(original),
            ours: File::from_raw_fd(fds[ours]),
        })
    }
}
