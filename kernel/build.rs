//! Records the rustc version that built tandem, for `kernel_info`'s language version, and a
//! fingerprint of the crates every cell links (so a stale prebuilt template is noticed);
//! exports the symbol through which cells' helpers reach the engine's child process.

use std::path::Path;

/// FNV-1a over the paths and contents of the files below `dir`, in a stable order.
fn fingerprint(dir: &Path, hash: &mut u64) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut paths: Vec<_> = entries.flatten().map(|entry| entry.path()).collect();
    paths.sort();
    for path in paths {
        if path.file_name().is_some_and(|name| name == "target") {
            continue;
        }
        if path.is_dir() {
            fingerprint(&path, hash);
            continue;
        }
        let bytes = path.to_string_lossy().into_owned().into_bytes();
        let contents = std::fs::read(&path).unwrap_or_default();
        for byte in bytes.iter().chain(&contents) {
            *hash ^= u64::from(*byte);
            *hash = hash.wrapping_mul(0x100_0000_01b3);
        }
    }
}

fn main() {
    let mut hash = 0xcbf2_9ce4_8422_2325_u64;
    for crate_dir in ["helpers", "preload"] {
        fingerprint(Path::new(crate_dir), &mut hash);
        println!("cargo:rerun-if-changed={crate_dir}");
    }
    println!("cargo:rustc-env=TANDEM_PRELOAD_FINGERPRINT={hash:016x}");

    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let version = std::process::Command::new(rustc)
        .arg("--version")
        .output()
        .ok()
        .and_then(|out| String::from_utf8(out.stdout).ok())
        .map(|s| s.trim().to_owned())
        .unwrap_or_else(|| "rustc (unknown version)".into());
    println!("cargo:rustc-env=TANDEM_RUSTC_VERSION={version}");
    println!("cargo:rerun-if-env-changed=RUSTC");
    // Where the engine's child finds the standard library's shared object.
    let target = std::env::var("TARGET").unwrap_or_default();
    println!("cargo:rustc-env=TANDEM_TARGET={target}");
    // The toolchain rustup ran this build with (rustup sets it for the programs it runs):
    // kernels pin it, so no rust-toolchain.toml in a notebook's folder picks another.
    let toolchain = std::env::var("RUSTUP_TOOLCHAIN").unwrap_or_default();
    println!("cargo:rustc-env=TANDEM_RUSTUP_TOOLCHAIN={toolchain}");
    println!("cargo:rerun-if-env-changed=RUSTUP_TOOLCHAIN");
    // The helpers, loaded into the engine's child process with each cell, find the cell
    // state by name: export that one symbol from the executable.
    println!("cargo:rustc-link-arg-bins=-Wl,--export-dynamic-symbol=TANDEM_CELL_STATE");
}
