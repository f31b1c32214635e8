//! Folders only this user can reach: the scratch folder each kernel compiles its cells in,
//! the standby's folder, and the check that no one else's files can steer cargo or rustup.
//!
//! cargo reads `.cargo/config.toml` (and rustup `rust-toolchain.toml`) from the folder it
//! builds in and from *every folder above it*. A build under a folder other users can
//! write, such as `/tmp`, would run whatever `linker`, `rustc-wrapper` or `[env]` they put
//! in `/tmp/.cargo/config.toml`. So every folder tandem builds in is checked from `/` down
//! ([`check_no_one_else_can_write`]), and the scratch folders live in a private folder of
//! this user's ([`root`]): `$XDG_CACHE_HOME/tandem`, else `~/.cache/tandem`, else
//! `$XDG_RUNTIME_DIR/tandem`, made `0700` and checked to be this user's own.

use anyhow::{anyhow, bail, Context, Result};
use std::fs::DirBuilder;
use std::io::ErrorKind;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// The user this process runs as.
pub fn my_uid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

/// Checks that `path` and every folder above it belong to root or to this user and that
/// no one else may write them (so no one else can plant a cargo or rustup configuration
/// cargo would read there). `path` must exist; symbolic links are resolved first.
pub fn check_no_one_else_can_write(path: &Path) -> Result<()> {
    let real = path
        .canonicalize()
        .with_context(|| format!("resolving {}", path.display()))?;
    for dir in real.ancestors() {
        let meta = std::fs::metadata(dir).with_context(|| format!("reading {}", dir.display()))?;
        let owner = meta.uid();
        if owner != 0 && owner != my_uid() {
            bail!("{} belongs to another user (uid {owner})", dir.display());
        }
        let mode = meta.permissions().mode();
        if mode & 0o022 != 0 {
            bail!(
                "{} can be written by other users (mode {:o})",
                dir.display(),
                mode & 0o7777
            );
        }
    }
    Ok(())
}

/// Makes `dir` a folder of this user's that no one else can enter, and says so in the log
/// when it had to act. Missing: created `0700`. Ours and closed to others' writes but
/// readable by them: made `0700`. Anything else found there (a symbolic link, a file,
/// another user's folder, one others could write, whose contents may have been planted):
/// renamed aside, and a fresh one made. Its parent must exist.
pub fn ensure_private(dir: &Path) -> Result<()> {
    match std::fs::symlink_metadata(dir) {
        Err(error) if error.kind() == ErrorKind::NotFound => {}
        Err(error) => return Err(error).with_context(|| format!("reading {}", dir.display())),
        Ok(meta) => {
            let mode = meta.permissions().mode() & 0o7777;
            let ours = meta.is_dir() && meta.uid() == my_uid();
            if ours && mode & 0o077 == 0 {
                return Ok(());
            }
            if ours && mode & 0o022 == 0 {
                std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
                    .with_context(|| format!("making {} private", dir.display()))?;
                log::warn!(
                    "{} was readable by other users (mode {mode:o}); it is 0700 now",
                    dir.display()
                );
                return Ok(());
            }
            let aside = set_aside_name(dir);
            std::fs::rename(dir, &aside).with_context(|| {
                format!(
                    "{} is not this user's private folder, and could not be set aside",
                    dir.display()
                )
            })?;
            log::warn!(
                "{} was not this user's private folder ({}, owner uid {}, mode {mode:o}): \
                 nothing in it is used; it was renamed {} and a fresh one made",
                dir.display(),
                if meta.file_type().is_symlink() {
                    "a symbolic link"
                } else if meta.is_dir() {
                    "a folder"
                } else {
                    "a file"
                },
                meta.uid(),
                aside.display()
            );
        }
    }
    match DirBuilder::new().mode(0o700).create(dir) {
        Ok(()) => {}
        // Made at the same moment by another of this user's kernels: checked below.
        Err(error) if error.kind() == ErrorKind::AlreadyExists => {}
        Err(error) => return Err(error).with_context(|| format!("creating {}", dir.display())),
    }
    let meta =
        std::fs::symlink_metadata(dir).with_context(|| format!("reading {}", dir.display()))?;
    if !meta.is_dir() || meta.uid() != my_uid() || meta.permissions().mode() & 0o077 != 0 {
        bail!("{} changed hands while it was being made", dir.display());
    }
    Ok(())
}

fn set_aside_name(dir: &Path) -> PathBuf {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| since.as_nanos());
    let mut name = dir.as_os_str().to_owned();
    name.push(format!(".untrusted-{nanos}"));
    PathBuf::from(name)
}

/// This user's private folder for tandem (see the module's text), found and checked once
/// per process.
pub fn root() -> Result<&'static Path> {
    static ROOT: OnceLock<std::result::Result<PathBuf, String>> = OnceLock::new();
    ROOT.get_or_init(|| find_root().map_err(|error| format!("{error:#}")))
        .as_deref()
        .map_err(|error| anyhow!("{error}"))
}

fn find_root() -> Result<PathBuf> {
    let absolute = |name: &str| {
        std::env::var_os(name)
            .map(PathBuf::from)
            .filter(|dir| dir.is_absolute())
    };
    let candidates = [
        absolute("XDG_CACHE_HOME"),
        absolute("HOME").map(|home| home.join(".cache")),
        absolute("XDG_RUNTIME_DIR"),
    ];
    let mut refused = Vec::new();
    for base in candidates.into_iter().flatten() {
        let usable = DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&base)
            .with_context(|| format!("creating {}", base.display()))
            .and_then(|()| check_no_one_else_can_write(&base))
            .and_then(|()| {
                let root = base.join("tandem");
                ensure_private(&root).map(|()| root)
            });
        match usable {
            Ok(root) => return Ok(root),
            Err(error) => {
                log::warn!(
                    "not keeping tandem's files under {}: {error:#}",
                    base.display()
                );
                refused.push(format!("{error:#}"));
            }
        }
    }
    if refused.is_empty() {
        bail!("no private folder for tandem: set HOME or XDG_CACHE_HOME");
    }
    bail!("no private folder for tandem: {}", refused.join("; "))
}

/// `dir`, checked with [`check_no_one_else_can_write`] and created (`0755`, so that no
/// umask makes it writable by others) when missing; or, when it fails that check, `instead`
/// under [`root`], made private. The log says which, and why.
pub fn trusted_or_private(dir: PathBuf, instead: &str) -> Result<PathBuf> {
    let existing = dir
        .ancestors()
        .find(|ancestor| ancestor.exists())
        .unwrap_or(Path::new("/"));
    match check_no_one_else_can_write(existing) {
        Ok(()) => {
            DirBuilder::new()
                .recursive(true)
                .mode(0o755)
                .create(&dir)
                .with_context(|| format!("creating {}", dir.display()))?;
            Ok(dir)
        }
        Err(error) => {
            let private = root()?.join(instead);
            log::warn!(
                "not building in {}: {error:#}; using {} instead",
                dir.display(),
                private.display()
            );
            ensure_private(&private)?;
            Ok(private)
        }
    }
}

/// A kernel's own scratch folder, `kernels/<pid>-<random>@<host>` under [`root`]: new
/// (never one that existed before), `0700`. Removed by [`KernelDir::remove`], or by a
/// later kernel on the same host once this process has ended
/// ([`remove_dead_kernels_dirs`]; a home folder may be shared by several hosts).
pub struct KernelDir {
    path: PathBuf,
}

impl KernelDir {
    pub fn create() -> Result<KernelDir> {
        let kernels = root()?.join("kernels");
        ensure_private(&kernels)?;
        for _ in 0..16 {
            let path = kernels.join(format!(
                "{}-{}@{}",
                std::process::id(),
                uuid::Uuid::new_v4().simple(),
                host_name()
            ));
            match DirBuilder::new().mode(0o700).create(&path) {
                Ok(()) => return Ok(KernelDir { path }),
                Err(error) if error.kind() == ErrorKind::AlreadyExists => continue,
                Err(error) => {
                    return Err(error).with_context(|| format!("creating {}", path.display()))
                }
            }
        }
        bail!(
            "no fresh scratch folder could be made in {}",
            kernels.display()
        )
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn remove(self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// This machine's name, as scratch folders carry it.
fn host_name() -> String {
    let mut name = [0u8; 256];
    // SAFETY: gethostname writes at most `len` bytes into the buffer we pass.
    let named = unsafe { libc::gethostname(name.as_mut_ptr().cast(), name.len()) } == 0;
    let end = name
        .iter()
        .position(|&byte| byte == 0)
        .unwrap_or(name.len());
    let name = String::from_utf8_lossy(&name[..end]).replace(['/', '@'], "_");
    if named && !name.is_empty() {
        name
    } else {
        "localhost".to_owned()
    }
}

/// Removes the scratch folders of this host's kernels whose process has ended (a SIGKILL
/// leaves no chance to clean up). `process_ended` tells whether a process id is gone.
pub fn remove_dead_kernels_dirs(process_ended: impl Fn(libc::pid_t) -> bool) {
    let Ok(root) = root() else {
        return;
    };
    let Ok(entries) = std::fs::read_dir(root.join("kernels")) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let host = host_name();
        // `<pid>-<random>@<host>`; folders from before hosts were named, `<pid>-<random>`,
        // are taken as this host's.
        let Some(pid) = name
            .to_str()
            .map(|name| name.rsplit_once('@').unwrap_or((name, host.as_str())))
            .filter(|(_, of)| *of == host)
            .and_then(|(kernel, _)| kernel.split_once('-'))
            .and_then(|(pid, _)| pid.parse::<libc::pid_t>().ok())
        else {
            continue;
        };
        if process_ended(pid) {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// Pins rustup's toolchain to the one tandem was built with (unless the user chose one in
/// `RUSTUP_TOOLCHAIN`). rustup reads `rust-toolchain.toml` from the folder a program runs
/// in and every folder above it, and evcxr asks `rustup which rustc` in the kernel's own
/// folder, the notebook's: a file planted there or above it (say in `/tmp`) would pick a
/// "toolchain" at any path, whose `rustc` would then run as this user. The variable wins
/// over every such file, for evcxr, cargo, rustc and the engine's process alike.
///
/// Returns why it did not pin, when it did not, for the log (written once the log is up).
///
/// # Safety
/// It sets an environment variable: call it first thing, while the process has one thread.
pub unsafe fn pin_rustup_toolchain() -> Option<String> {
    let built_with = env!("TANDEM_RUSTUP_TOOLCHAIN");
    if std::env::var_os("RUSTUP_TOOLCHAIN").is_some() {
        return None;
    }
    if built_with.is_empty() {
        return Some("tandem was not built through rustup".into());
    }
    let rustup_home = std::env::var_os("RUSTUP_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".rustup")));
    let installed =
        rustup_home.is_some_and(|home| home.join("toolchains").join(built_with).is_dir());
    if !installed {
        return Some(format!(
            "the toolchain it was built with ({built_with}) is not installed"
        ));
    }
    // SAFETY: the caller guarantees a single thread.
    unsafe { std::env::set_var("RUSTUP_TOOLCHAIN", built_with) };
    None
}

/// Opens a file in a private folder for appending or writing, never through a symbolic
/// link planted in its place.
pub fn open_no_follow(path: &Path, options: &mut std::fs::OpenOptions) -> Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    options
        .custom_flags(libc::O_NOFOLLOW)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("opening {}", path.display()))
}

/// A fresh folder for a unit test, in this user's private folder (not in a shared
/// temporary folder, where its name could be taken or its contents planted).
#[cfg(test)]
pub(crate) fn test_dir(name: &str) -> PathBuf {
    let dir = root()
        .expect("a private folder")
        .join(format!("test-{name}-{}", uuid::Uuid::new_v4().simple()));
    DirBuilder::new()
        .mode(0o700)
        .create(&dir)
        .expect("a fresh test folder");
    dir
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_folder_others_could_write_is_set_aside_and_made_anew() {
        let base = test_dir("aside");
        let dir = base.join("tandem");
        std::fs::create_dir(&dir).unwrap();
        std::fs::write(dir.join("planted"), "x").unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
        ensure_private(&dir).unwrap();
        assert!(
            !dir.join("planted").exists(),
            "the planted file is not in the new folder"
        );
        let meta = std::fs::symlink_metadata(&dir).unwrap();
        assert_eq!(meta.permissions().mode() & 0o7777, 0o700);
        let aside: Vec<_> = std::fs::read_dir(&base).unwrap().flatten().collect();
        assert_eq!(aside.len(), 2, "the old folder is kept aside, not deleted");
        std::fs::remove_dir_all(base).unwrap();
    }

    #[test]
    fn a_symbolic_link_is_never_followed() {
        let base = test_dir("link");
        let elsewhere = base.join("elsewhere");
        std::fs::create_dir(&elsewhere).unwrap();
        std::os::unix::fs::symlink(&elsewhere, base.join("tandem")).unwrap();
        ensure_private(&base.join("tandem")).unwrap();
        assert!(!std::fs::symlink_metadata(base.join("tandem"))
            .unwrap()
            .file_type()
            .is_symlink());
        std::fs::remove_dir_all(base).unwrap();
    }

    #[test]
    fn a_folder_of_ours_only_readable_by_others_is_closed() {
        let base = test_dir("readable");
        let dir = base.join("tandem");
        std::fs::create_dir(&dir).unwrap();
        std::fs::write(dir.join("kept"), "x").unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        ensure_private(&dir).unwrap();
        assert!(dir.join("kept").exists());
        let mode = std::fs::metadata(&dir).unwrap().permissions().mode() & 0o7777;
        assert_eq!(mode, 0o700);
        std::fs::remove_dir_all(base).unwrap();
    }

    #[test]
    fn world_writable_parents_are_refused() {
        let base = test_dir("parents");
        let open = base.join("open");
        std::fs::create_dir(&open).unwrap();
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o1777)).unwrap();
        std::fs::create_dir(open.join("inner")).unwrap();
        let error = check_no_one_else_can_write(&open.join("inner")).unwrap_err();
        assert!(format!("{error}").contains("can be written by other users"));
        check_no_one_else_can_write(&base).unwrap();
        assert!(check_no_one_else_can_write(Path::new("/tmp")).is_err());
        std::fs::remove_dir_all(base).unwrap();
    }

    #[test]
    fn kernel_dirs_are_fresh_and_private() {
        let first = KernelDir::create().unwrap();
        let second = KernelDir::create().unwrap();
        assert_ne!(first.path(), second.path());
        let mode = std::fs::metadata(first.path())
            .unwrap()
            .permissions()
            .mode()
            & 0o7777;
        assert_eq!(mode, 0o700);
        let path = first.path().to_owned();
        first.remove();
        second.remove();
        assert!(!path.exists());
    }
}
