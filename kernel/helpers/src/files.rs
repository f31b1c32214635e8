//! Files, read and written for real: blocking with `std::fs`, and async with `tokio::fs`
//! (which runs the same blocking calls on tokio's pool of blocking threads, so the runtime
//! keeps running other tasks meanwhile). Each call records a span.

use crate::spans::Kind;
use crate::task_run::TaskRun;
use std::io;
use std::path::{Path, PathBuf};

/// A directory for this session's files. Inside tandem it lives in the kernel's scratch
/// directory and goes away with the kernel; elsewhere (doctests, a program of your own)
/// it is a new private directory in the system's temporary directory, removed when the
/// process exits.
///
/// ```
/// let dir = tandem_helpers::files::scratch_dir();
/// assert!(dir.is_dir());
/// ```
pub fn scratch_dir() -> PathBuf {
    match std::env::var_os("EVCXR_TMPDIR") {
        // tandem's engine builds in <kernel scratch>/engine: files go next to it.
        Some(engine) => {
            let dir = Path::new(&engine)
                .parent()
                .map_or_else(std::env::temp_dir, Path::to_path_buf)
                .join("files");
            let _ = std::fs::create_dir_all(&dir);
            dir
        }
        None => process_dir().to_path_buf(),
    }
}

static PROCESS_DIR: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();

/// This process's directory, made on first use, mode 0700. Its name ends in the clock's
/// nanoseconds, so nobody can take it in advance; a name already taken is skipped.
fn process_dir() -> &'static Path {
    PROCESS_DIR.get_or_init(|| {
        use std::os::unix::fs::DirBuilderExt;
        let base = std::env::temp_dir();
        let mut dir = base.clone();
        for _ in 0..100 {
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |since| since.subsec_nanos());
            dir = base.join(format!("tandem-files-{}-{nanos}", std::process::id()));
            match std::fs::DirBuilder::new().mode(0o700).create(&dir) {
                Ok(()) => {
                    // SAFETY: registers a plain function with no arguments, once.
                    unsafe { libc::atexit(remove_process_dir) };
                    return dir;
                }
                Err(error) if error.kind() == io::ErrorKind::AlreadyExists => continue,
                // Writing will fail with an error that names the path.
                Err(_) => return dir,
            }
        }
        dir
    })
}

extern "C" fn remove_process_dir() {
    if let Some(dir) = PROCESS_DIR.get() {
        let _ = std::fs::remove_dir_all(dir);
    }
}

/// `path` as given when absolute, else inside [`scratch_dir`].
fn resolve(path: &Path) -> PathBuf {
    if path.is_absolute() {
        path.to_path_buf()
    } else {
        scratch_dir().join(path)
    }
}

fn label(action: &str, path: &Path) -> String {
    let name = path.file_name().unwrap_or(path.as_os_str());
    format!("{action} {}", name.to_string_lossy())
}

/// Writes `contents` to `path` (relative paths go into [`scratch_dir`]), blocking.
///
/// ```
/// use tandem_helpers::files::{read_file, write_file};
/// write_file("notes.txt", "hello").unwrap();
/// assert_eq!(read_file("notes.txt").unwrap(), "hello");
/// ```
pub fn write_file(path: impl AsRef<Path>, contents: &str) -> io::Result<()> {
    let path = resolve(path.as_ref());
    let run = TaskRun::start(&label("write", &path), Kind::Blocking, false);
    std::fs::write(&path, contents)?;
    run.finish();
    Ok(())
}

/// Reads `path` (relative paths come from [`scratch_dir`]) as text, blocking.
pub fn read_file(path: impl AsRef<Path>) -> io::Result<String> {
    let path = resolve(path.as_ref());
    let run = TaskRun::start(&label("read", &path), Kind::Blocking, false);
    let text = std::fs::read_to_string(&path)?;
    run.finish();
    Ok(text)
}

/// The async twin of [`write_file`], with `tokio::fs`.
///
/// ```
/// use tandem_helpers::prelude::*;
/// use tandem_helpers::files::{read_file_async, write_file_async};
/// let text = run_on_one_thread(async {
///     write_file_async("async.txt", "from tokio::fs").await.unwrap();
///     read_file_async("async.txt").await.unwrap()
/// });
/// assert_eq!(text, "from tokio::fs");
/// ```
pub async fn write_file_async(path: impl AsRef<Path>, contents: &str) -> io::Result<()> {
    let path = resolve(path.as_ref());
    let run = TaskRun::start(&label("write", &path), Kind::Async, false);
    crate::interrupt::interruptible(tokio::fs::write(&path, contents)).await?;
    run.finish();
    Ok(())
}

/// The async twin of [`read_file`], with `tokio::fs`.
pub async fn read_file_async(path: impl AsRef<Path>) -> io::Result<String> {
    let path = resolve(path.as_ref());
    let run = TaskRun::start(&label("read", &path), Kind::Async, false);
    let text = crate::interrupt::interruptible(tokio::fs::read_to_string(&path)).await?;
    run.finish();
    Ok(text)
}
