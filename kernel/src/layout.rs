//! Where tandem's own files are: beside the checkout this binary was built in, or under the
//! prefix a system-wide install (`tandem install --system`) copied them to, for every user.
//!
//! A system install is `PREFIX/bin/tandem` next to `PREFIX/lib/tandem/`, which holds the
//! crates every cell links (`src/`, with their dependencies' sources in `vendor/`), the
//! prebuilt template, and, when the installer's toolchain was private, a copy of it.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// The file that marks `PREFIX/lib/tandem` complete; it holds the build key of the binary
/// installed beside it (see `engine::build_key`).
pub const INSTALLED_STAMP: &str = "installed";

/// `PREFIX/lib/tandem` relative to the prefix.
pub const SYSTEM_LIB: &str = "lib/tandem";

/// Where a system install puts the lessons, relative to the prefix.
pub const SYSTEM_LESSONS: &str = "share/tandem/lessons";

/// The checkout this binary was built from.
pub fn checkout() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// `PREFIX/lib/tandem` when this binary is the `PREFIX/bin/tandem` of a complete system
/// install, else `None` (a binary run from its checkout).
pub fn system_lib() -> Option<&'static Path> {
    static LIB: OnceLock<Option<PathBuf>> = OnceLock::new();
    LIB.get_or_init(|| {
        let exe = std::env::current_exe().ok()?;
        let prefix = exe.parent()?.parent()?;
        let lib = prefix.join(SYSTEM_LIB);
        lib.join(INSTALLED_STAMP).is_file().then_some(lib)
    })
    .as_deref()
}

/// The folder holding the workspace's `Cargo.lock` and `kernel/{preload,helpers}`.
pub fn sources() -> PathBuf {
    match system_lib() {
        Some(lib) => lib.join("src"),
        None => checkout(),
    }
}

/// The crate every cell links as `tokio` (see `kernel/preload`).
pub fn preload_crate() -> PathBuf {
    sources().join("kernel/preload")
}

/// The workspace's lockfile: cells get the same dependency versions the tests used.
pub fn lockfile() -> PathBuf {
    sources().join("Cargo.lock")
}

/// Where the prebuilt template lives unless `TANDEM_TEMPLATE_DIR` says otherwise: in a
/// system install, under its prefix; else next to the kernel's own build, so that
/// `cargo clean` removes it.
pub fn default_template_dir() -> PathBuf {
    match system_lib() {
        Some(lib) => lib.join("engine-template"),
        None => checkout().join("target/engine-template"),
    }
}

/// The `[patch.crates-io]` table a system install wrote: every crate the preloaded crates
/// depend on, from `PREFIX/lib/tandem/vendor`, so that each user's builds name the same
/// source paths as the prebuilt template (cargo rebuilds a crate whose source path
/// changed, and the registry's path is inside each user's own `CARGO_HOME`).
pub fn vendored_patches() -> Option<PathBuf> {
    system_lib()
        .map(|lib| lib.join("vendor-patches.toml"))
        .filter(|path| path.is_file())
}

/// The toolchain a system install copied for its users, when it did.
pub fn system_toolchain() -> Option<PathBuf> {
    system_lib()
        .map(|lib| lib.join("toolchain"))
        .filter(|dir| dir.join("bin/rustc").is_file())
}

/// In a system install with a toolchain of its own, puts that toolchain first on `PATH`
/// and names it in `RUSTUP_TOOLCHAIN` (a path is a toolchain to rustup), so that cargo,
/// rustc and evcxr's `rustup which` all pick the compiler the template was built with.
/// Returns the toolchain when it did.
///
/// # Safety
/// It sets environment variables: call it first thing, while the process has one thread.
pub unsafe fn use_system_toolchain() -> Option<PathBuf> {
    let toolchain = system_toolchain()?;
    let bin = toolchain.join("bin");
    let joined = std::env::join_paths(toolchain_first(&bin, std::env::var_os("PATH"))).ok()?;
    // SAFETY: the caller guarantees that no other thread exists yet.
    unsafe {
        std::env::set_var("PATH", joined);
        std::env::set_var("RUSTUP_TOOLCHAIN", &toolchain);
    }
    Some(toolchain)
}

/// `path` with `bin` first and nowhere else: the same whether it was first already or not,
/// so that a standby (started by a kernel that did this) and the next kernel (started by
/// Jupyter, which did not) see one PATH, as the standby's handover requires.
fn toolchain_first(bin: &Path, path: Option<std::ffi::OsString>) -> Vec<PathBuf> {
    let rest: Vec<PathBuf> = match path {
        Some(path) => std::env::split_paths(&path).collect(),
        // Without PATH the shell's default search path still holds the linker, `cc`.
        None => ["/usr/local/bin", "/usr/bin", "/bin"]
            .map(PathBuf::from)
            .to_vec(),
    };
    std::iter::once(bin.to_path_buf())
        .chain(rest.into_iter().filter(|dir| dir != bin))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_toolchain_goes_first_once_however_often_it_is_put_there() {
        let bin = Path::new("/opt/tandem/lib/tandem/toolchain/bin");
        let once = toolchain_first(bin, Some("/usr/bin:/bin".into()));
        let joined = std::env::join_paths(&once).unwrap();
        assert_eq!(toolchain_first(bin, Some(joined)), once);
        assert_eq!(once[0], bin);
        assert_eq!(toolchain_first(bin, None)[1], Path::new("/usr/local/bin"));
    }
}
