//! Runs inside the evcxr child process: loads the Rust standard library's shared object
//! before any cell, so that every cell's library finds it wherever the scratch folder is.
//!
//! rustc writes a cell library's rpath relative to cargo's `deps` folder, but evcxr loads
//! the copy cargo puts one folder up. From there the relative path overshoots by one
//! level: harmless when the scratch folder and the toolchain share no folder but `/` (as
//! `/tmp/...` and `~/.rustup` do), fatal (`dlopen failed`) when both are under the home
//! folder, as the private scratch folder and rustup's toolchain usually are. The dynamic
//! loader matches a library already loaded by its name, so one `dlopen` here serves all.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

/// Loads `libstd-*.so` of the toolchain `rustc` runs (the one evcxr compiles cells with),
/// globally. Best effort: when it cannot be found, cells load as they would without it.
pub(super) fn load_standard_library() {
    let Some(library) = standard_library() else {
        return;
    };
    let Ok(path) = CString::new(library.as_os_str().as_bytes()) else {
        return;
    };
    // SAFETY: dlopen with a NUL-terminated path; the handle is kept for the process's life.
    let handle = unsafe { libc::dlopen(path.as_ptr(), libc::RTLD_NOW | libc::RTLD_GLOBAL) };
    if handle.is_null() {
        eprintln!("tandem: could not load {}", library.display());
    }
}

fn standard_library() -> Option<PathBuf> {
    let mut rustc = std::process::Command::new("rustc");
    rustc
        .args(["--print", "sysroot"])
        .stderr(std::process::Stdio::null());
    // The kernel pinned the toolchain (`private_dirs::pin_rustup_toolchain`), so this is
    // the rustc evcxr compiles cells with; asked in the build folder all the same.
    if let Some(build_dir) = std::env::var_os("EVCXR_TMPDIR") {
        rustc.current_dir(build_dir);
    }
    let output = rustc.output().ok()?;
    let sysroot = String::from_utf8(output.stdout).ok()?;
    let lib = PathBuf::from(sysroot.trim())
        .join("lib/rustlib")
        .join(env!("TANDEM_TARGET"))
        .join("lib");
    std::fs::read_dir(lib)
        .ok()?
        .flatten()
        .map(|entry| entry.path())
        .find(|path| {
            path.file_name()
                .and_then(|name| name.to_str())
                .is_some_and(|name| name.starts_with("libstd-") && name.ends_with(".so"))
        })
}
