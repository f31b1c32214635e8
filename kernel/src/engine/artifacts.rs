//! Build once, reuse everywhere: a template build directory in which tokio, futures and the
//! helpers are already compiled. Each fresh kernel starts from a copy of it.
//!
//! `tandem prebuild` (run by `tandem install` and `tandem lab`) fills the template by
//! starting an engine in it. A kernel copies the template into its own scratch directory
//! (mtimes kept, so cargo sees every dependency as fresh) before evcxr starts there. A
//! kernel that finds no template runs `tandem prebuild` first, so the cost is paid once.

use crate::{layout, private_dirs};
use anyhow::{bail, Context, Result};
use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Written into the template when it is complete; holds [`build_key`].
const READY_STAMP: &str = "tandem-ready";

/// Where the template lives (see [`layout::default_template_dir`], or where
/// `TANDEM_TEMPLATE_DIR` says). When another user could write that folder or one above it,
/// where cargo would read their configuration, in this user's private folder.
fn template_dir() -> Result<PathBuf> {
    static DIR: std::sync::OnceLock<std::result::Result<PathBuf, String>> =
        std::sync::OnceLock::new();
    DIR.get_or_init(|| {
        let chosen = std::env::var_os("TANDEM_TEMPLATE_DIR")
            .map_or_else(layout::default_template_dir, PathBuf::from);
        private_dirs::trusted_or_private(chosen, "template").map_err(|e| format!("{e:#}"))
    })
    .clone()
    .map_err(|error| anyhow::anyhow!("the prebuilt template's folder: {error}"))
}

/// The folder the prebuilt template lives in (see [`template_dir`]).
pub fn template_location() -> Result<PathBuf> {
    template_dir()
}

/// Where a standby kernel for this template waits (see `crate::standby`), made private to
/// this user: `standby-<the template's folder, hashed>` in the private folder, or
/// `TANDEM_STANDBY_DIR` (tests keep theirs apart).
pub fn standby_dir() -> Result<PathBuf> {
    let dir = match std::env::var_os("TANDEM_STANDBY_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => {
            use sha2::Digest;
            let template = template_dir()?;
            let digest = sha2::Sha256::digest(template.as_os_str().as_encoded_bytes());
            private_dirs::root()?.join(format!("standby-{}", hex::encode(&digest[..8])))
        }
    };
    private_dirs::ensure_private(&dir)?;
    Ok(dir)
}

/// A template is only reused by the same tandem built by the same rustc from the same
/// helper and preload sources.
pub fn build_key() -> String {
    format!(
        "tandem {} / {} / preloaded crates {}",
        env!("CARGO_PKG_VERSION"),
        env!("TANDEM_RUSTC_VERSION"),
        env!("TANDEM_PRELOAD_FINGERPRINT")
    )
}

fn is_ready(template: &Path) -> bool {
    std::fs::read_to_string(template.join(READY_STAMP)).is_ok_and(|key| key == build_key())
}

/// evcxr's crate inside a scratch directory `root`: the crate sits one level down so that
/// `root/.cargo/config.toml` (see [`write_profile_overrides`]) applies to it.
pub fn build_dir_in(root: &Path) -> PathBuf {
    root.join("engine")
}

/// Cells compile at opt-level 0 (a cell compiles in about 0.2 s instead of 0.4 s at 1 and
/// 0.9 s at 2); every dependency, compiled once, at opt-level 2. evcxr writes the crate's
/// own Cargo.toml and `.cargo/config.toml`, so the override goes one directory up, where
/// cargo also looks. A system install adds its vendored crates there (see
/// [`layout::vendored_patches`]).
pub fn write_profile_overrides(build_dir: &Path) -> Result<()> {
    let root = build_dir
        .parent()
        .context("the build directory has no parent")?;
    let config_dir = root.join(".cargo");
    std::fs::create_dir_all(&config_dir)?;
    let mut config = String::from(
        "# Written by tandem: dependencies optimised, cells quick to compile.\n\
         [profile.dev.package.\"*\"]\nopt-level = 2\n",
    );
    if let Some(patches) = layout::vendored_patches() {
        let table = std::fs::read_to_string(&patches)
            .with_context(|| format!("reading {}", patches.display()))?;
        config.push('\n');
        config.push_str(&table);
    }
    std::fs::write(config_dir.join("config.toml"), config)
        .with_context(|| format!("writing {}", config_dir.display()))
}

/// `cargo run` and `cargo test` put `target/*/deps` on LD_LIBRARY_PATH, which the dynamic
/// loader searches before a cell's own rpath. A stray `libtandem_preload.so` there (from a
/// `cargo build --workspace`) would be loaded instead of the engine's and break every cell,
/// so such directories are dropped.
///
/// # Safety
/// It sets an environment variable: call it while the process has one thread.
pub unsafe fn drop_stray_preload_from_library_path() {
    let Some(paths) = std::env::var_os("LD_LIBRARY_PATH") else {
        return;
    };
    let kept: Vec<PathBuf> = std::env::split_paths(&paths)
        .filter(|dir| !dir.join("libtandem_preload.so").exists())
        .collect();
    if let Ok(joined) = std::env::join_paths(kept) {
        // SAFETY: the caller guarantees that no other thread exists yet.
        unsafe { std::env::set_var("LD_LIBRARY_PATH", joined) };
    }
}

/// Puts the workspace's Cargo.lock into evcxr's directory, so dependencies resolve to the
/// versions tandem was tested with (and offline). Called before the first `:dep`.
pub fn seed_lockfile(build_dir: &Path) -> Result<()> {
    let lockfile = layout::lockfile();
    std::fs::copy(&lockfile, build_dir.join("Cargo.lock"))
        .with_context(|| format!("copying {}", lockfile.display()))?;
    Ok(())
}

/// Prepares a kernel's build directory: a copy of the template, building the template
/// first (in a `tandem prebuild` process) when there is none yet.
pub fn prepare(build_dir: &Path, status: &super::StartStatus) -> Result<()> {
    let template = template_dir()?;
    if !is_ready(&template) && layout::system_lib().is_some() {
        bail!(
            "the prebuilt crates in {} were not made by this tandem ({}): ask whoever \
             installed it to run `tandem install --system` again",
            template.display(),
            build_key()
        );
    }
    if !is_ready(&template) {
        status.set(
            "compiling tokio, futures and the helpers, once for this machine (a minute or two)",
        );
        log::info!(
            "no prebuilt engine in {}: building it once (tokio, futures, helpers)",
            template.display()
        );
        prebuild_in_subprocess(true, false)?;
    }
    let copied = Instant::now();
    // A system install's template is written only by root's `tandem install --system`; a
    // learner takes no lock on it, since any learner could hold one and stall every kernel.
    let system_template =
        layout::system_lib().is_some() && template == layout::default_template_dir();
    let _shared = match system_template {
        true => None,
        false => Some(DirLock::acquire(&template, libc::LOCK_SH)?),
    };
    if !is_ready(&template) {
        bail!("the template in {} is not complete", template.display());
    }
    // Only the compiled artifacts: the template's Cargo.toml lists the preloaded crate, and
    // rust-analyzer would load that whole crate graph twice if evcxr started with it.
    let template_build_dir = build_dir_in(&template);
    copy_tree(
        &template_build_dir.join("target"),
        &build_dir.join("target"),
    )
    .with_context(|| format!("copying the template into {}", build_dir.display()))?;
    log::debug!("engine template copied in {:?}", copied.elapsed());
    Ok(())
}

/// Runs `tandem prebuild` in a child process (it sets EVCXR_TMPDIR, which must not leak
/// into this process or the programs it starts). `if_missing` skips a ready template.
pub fn prebuild_in_subprocess(if_missing: bool, show_progress: bool) -> Result<()> {
    let binary = std::env::current_exe().context("finding this binary")?;
    let mut command = std::process::Command::new(binary);
    command.arg("prebuild").env_remove("EVCXR_TMPDIR");
    if if_missing {
        command.arg("--if-missing");
    }
    if !show_progress {
        command.stdout(std::process::Stdio::null());
    }
    let status = command.status().context("running `tandem prebuild`")?;
    if !status.success() {
        bail!("`tandem prebuild` failed ({status})");
    }
    Ok(())
}

/// What `tandem prebuild` does around starting an engine in the template directory.
pub struct TemplateBuild {
    dir: PathBuf,
    _lock: DirLock,
}

impl TemplateBuild {
    /// Locks the template for writing. `None` when `if_missing` and it is already ready.
    pub fn begin(if_missing: bool) -> Result<Option<TemplateBuild>> {
        let dir = template_dir()?;
        let lock = DirLock::acquire(&dir, libc::LOCK_EX)?;
        if if_missing && is_ready(&dir) {
            return Ok(None);
        }
        let _ = std::fs::remove_file(dir.join(READY_STAMP));
        Ok(Some(TemplateBuild { dir, _lock: lock }))
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Marks the template complete; kernels may copy it from now on.
    pub fn finish(self) -> Result<()> {
        std::fs::write(self.dir.join(READY_STAMP), build_key())
            .context("writing the template's stamp")
    }
}

/// An advisory lock on `<dir>.lock`: one writer (prebuild) or many readers (kernels).
/// Readers open it read-only when it exists: a system install's template belongs to the
/// admin, and every user's kernel reads it.
struct DirLock {
    _held: File,
}

impl DirLock {
    fn acquire(dir: &Path, mode: libc::c_int) -> Result<DirLock> {
        let path = dir.with_extension("lock");
        let file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .with_context(|| format!("opening {}", path.display()))?;
        // SAFETY: flock on a file descriptor we own; released when the file is closed.
        if unsafe { libc::flock(file.as_raw_fd(), mode) } != 0 {
            return Err(std::io::Error::last_os_error())
                .with_context(|| format!("locking {}", path.display()));
        }
        Ok(DirLock { _held: file })
    }
}

/// Copies a directory tree, keeping modification times (cargo compares them). Cells'
/// shared objects from the template's own runs are left out.
fn copy_tree(from: &Path, to: &Path) -> Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let name = entry.file_name();
        let source = entry.path();
        let target = to.join(&name);
        let kind = entry.file_type()?;
        if kind.is_dir() {
            copy_tree(&source, &target)?;
        } else if kind.is_symlink() {
            let points_to = std::fs::read_link(&source)?;
            let _ = std::fs::remove_file(&target);
            std::os::unix::fs::symlink(points_to, &target)?;
        } else {
            let name = name.to_string_lossy();
            if name == READY_STAMP || (name.starts_with("libcode_") && name.ends_with(".so")) {
                continue;
            }
            std::fs::copy(&source, &target)?;
            let modified = entry.metadata()?.modified()?;
            File::options()
                .write(true)
                .open(&target)?
                .set_modified(modified)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copies_keep_modification_times_and_skip_cell_libraries() {
        let root = private_dirs::test_dir("copy");
        let from = root.join("from");
        std::fs::create_dir_all(from.join("deps")).unwrap();
        std::fs::write(from.join("deps/libtokio.rlib"), "rlib").unwrap();
        std::fs::write(from.join("deps/libcode_3.so"), "cell").unwrap();
        let old = std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_000_000);
        File::options()
            .write(true)
            .open(from.join("deps/libtokio.rlib"))
            .unwrap()
            .set_modified(old)
            .unwrap();
        copy_tree(&from, &root.join("to")).unwrap();
        let copied = root.join("to/deps/libtokio.rlib");
        assert_eq!(std::fs::read_to_string(&copied).unwrap(), "rlib");
        assert_eq!(copied.metadata().unwrap().modified().unwrap(), old);
        assert!(!root.join("to/deps/libcode_3.so").exists());
        std::fs::remove_dir_all(root).unwrap();
    }
}
