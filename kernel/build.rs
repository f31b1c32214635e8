//! Records the rustc version that built tandem, for `kernel_info`'s language version, and
//! exports the symbol through which cells' helpers reach the engine's child process.

fn main() {
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
    // The helpers, loaded into the engine's child process with each cell, find the cell
    // state by name: export that one symbol from the executable.
    println!("cargo:rustc-link-arg-bins=-Wl,--export-dynamic-symbol=TANDEM_CELL_STATE");
}
