//! `tandem install --system PREFIX`: one install for every user of a machine (a JupyterHub
//! server, a classroom image), read-only to them, so that no learner compiles tokio.
//!
//! Under PREFIX: `bin/tandem`, the kernelspec in `share/jupyter/kernels/tandem`, and
//! `lib/tandem/` (see `crate::layout`) with the preloaded crates' sources, every crate they
//! depend on (vendored, so each user's builds see the same source paths as the template),
//! a copy of the installer's toolchain (users cannot run one kept in root's home), and the
//! prebuilt template. Each user's kernel copies the template into its own private folder.

use super::files::{copy_binary, copy_tree, open_to_everyone, remove_if_present};
use crate::{engine, layout};
use anyhow::{bail, Context, Result};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

/// What `install` put where, for the admin.
pub struct Installed {
    pub binary: PathBuf,
    pub kernelspec: PathBuf,
    pub toolchain: PathBuf,
    pub lessons: PathBuf,
}

/// Installs this binary and everything its kernels need under `prefix`, for all users.
pub fn install(prefix: &Path) -> Result<Installed> {
    let prefix =
        std::path::absolute(prefix).with_context(|| format!("resolving {}", prefix.display()))?;
    let lib = prefix.join(layout::SYSTEM_LIB);
    // SAFETY: umask only sets this process's file-creation mask; nothing can fail.
    unsafe { libc::umask(0o022) };
    for dir in [prefix.join("bin"), lib.clone()] {
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    // The stamp marks a system layout (the prebuild below needs it); until the install
    // ends, kernels find a template that is not ready and say so.
    remove_if_present(&lib.join(layout::INSTALLED_STAMP))?;

    let binary = prefix.join("bin/tandem");
    copy_binary(&binary)?;
    println!(
        "tandem: copying the preloaded crates' sources into {}",
        lib.display()
    );
    copy_sources(&layout::sources(), &lib.join("src"))?;
    println!("tandem: vendoring the crates they depend on");
    vendor(&lib)?;
    let toolchain = lib.join("toolchain");
    copy_toolchain(&toolchain)?;
    std::fs::write(lib.join(layout::INSTALLED_STAMP), engine::build_key())
        .context("writing the install's stamp")?;

    // The installed binary finds its layout beside it, and builds the template there.
    let status = Command::new(&binary)
        .arg("prebuild")
        .env_remove("EVCXR_TMPDIR")
        .env_remove("TANDEM_TEMPLATE_DIR")
        .status()
        .with_context(|| format!("running {} prebuild", binary.display()))?;
    if !status.success() {
        bail!("`{} prebuild` failed ({status})", binary.display());
    }
    // Only tandem's own files: PREFIX may be /usr/local, full of other programs.
    open_to_everyone(&binary)?;
    open_to_everyone(&lib)?;
    let kernelspec = super::install(&super::Location::Prefix(prefix.clone()), &binary)?;
    open_to_everyone(&kernelspec)?;
    let lessons = prefix.join(layout::SYSTEM_LESSONS);
    copy_lessons(&layout::checkout().join("notebooks"), &lessons)?;
    open_to_everyone(&lessons)?;
    Ok(Installed {
        binary,
        kernelspec,
        toolchain,
        lessons,
    })
}

/// The shipped lessons (not their solutions), for a hub to copy into each learner's home
/// (see `classroom/jupyterhub_config.py`). Each replaces its earlier copy through a
/// temporary name; a teacher's own notebooks there stay. A binary run from an
/// installation, without its checkout, keeps the lessons installed before.
fn copy_lessons(notebooks: &Path, to: &Path) -> Result<()> {
    if !notebooks.is_dir() {
        return Ok(());
    }
    let mut lessons: Vec<PathBuf> = std::fs::read_dir(notebooks)
        .with_context(|| format!("reading {}", notebooks.display()))?
        .flatten()
        .map(|entry| entry.path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "ipynb") && path.is_file())
        .collect();
    lessons.sort();
    std::fs::create_dir_all(to).with_context(|| format!("creating {}", to.display()))?;
    for lesson in lessons {
        let installed = to.join(lesson.file_name().unwrap_or_default());
        let partial = installed.with_extension("partial");
        std::fs::copy(&lesson, &partial)
            .with_context(|| format!("copying {}", lesson.display()))?;
        std::fs::rename(&partial, &installed)
            .with_context(|| format!("installing {}", installed.display()))?;
    }
    Ok(())
}

/// The preload and helpers crates, their lockfile, and a workspace of just those two (they
/// inherit its edition and licence).
fn copy_sources(from: &Path, to: &Path) -> Result<()> {
    if from == to {
        return Ok(());
    }
    if to.exists() {
        std::fs::remove_dir_all(to).with_context(|| format!("removing {}", to.display()))?;
    }
    for crate_dir in ["kernel/preload", "kernel/helpers"] {
        copy_tree(
            &from.join(crate_dir),
            &to.join(crate_dir),
            &["target"],
            false,
        )?;
    }
    std::fs::copy(from.join("Cargo.lock"), to.join("Cargo.lock")).context("copying Cargo.lock")?;
    let manifest = std::fs::read_to_string(from.join("Cargo.toml"))
        .with_context(|| format!("reading {}", from.join("Cargo.toml").display()))?;
    std::fs::write(to.join("Cargo.toml"), workspace_of_preload(&manifest)?)
        .context("writing the installed workspace's Cargo.toml")
}

/// A workspace manifest for the installed crates: the checkout's `[workspace.package]`
/// table, and the two crates as its members.
fn workspace_of_preload(checkout_manifest: &str) -> Result<String> {
    let mut package = String::new();
    let mut inside = false;
    for line in checkout_manifest.lines() {
        if line.trim_start().starts_with('[') {
            inside = line.trim() == "[workspace.package]";
        }
        if inside {
            package.push_str(line);
            package.push('\n');
        }
    }
    if package.is_empty() {
        bail!("the checkout's Cargo.toml has no [workspace.package] table");
    }
    Ok(format!(
        "# Written by `tandem install --system`: the crates every cell links.\n\
         [workspace]\nresolver = \"2\"\nmembers = [\"kernel/preload\", \"kernel/helpers\"]\n\n\
         {package}"
    ))
}

/// `cargo vendor` of the installed workspace into `lib/vendor`, and the `[patch.crates-io]`
/// table that points every crate the host builds at its vendored copy.
fn vendor(lib: &Path) -> Result<()> {
    let manifest = lib.join("src/Cargo.toml");
    let vendor_dir = lib.join("vendor");
    let run_vendor = |offline: bool| {
        let mut command = Command::new("cargo");
        command.arg("vendor").arg("--quiet").arg("--manifest-path");
        command.arg(&manifest).arg(&vendor_dir);
        if offline {
            command.arg("--offline");
        }
        command.stdout(std::process::Stdio::null());
        command.status()
    };
    // Offline first: the installer's own cargo has every crate this build used.
    let vendored = run_vendor(true).is_ok_and(|status| status.success())
        || run_vendor(false).is_ok_and(|status| status.success());
    if !vendored {
        bail!("`cargo vendor` of {} failed", manifest.display());
    }
    let used = host_packages(&manifest)?;
    let mut table = String::from(
        "# Written by `tandem install --system`: every crate the preloaded crates use, from\n\
         # the install's vendored copies, so every user's build sees the template's sources.\n\
         [patch.crates-io]\n",
    );
    let mut entries: Vec<_> = std::fs::read_dir(&vendor_dir)?
        .flatten()
        .map(|entry| entry.path())
        .collect();
    entries.sort();
    for dir in entries {
        let Some((name, version)) = package_of(&dir.join("Cargo.toml")) else {
            continue;
        };
        if !used.contains(&(name.clone(), version.clone())) {
            continue;
        }
        let key = dir.file_name().unwrap_or_default().to_string_lossy();
        table.push_str(&format!(
            "\"{key}\" = {{ path = \"{}\", package = \"{name}\" }}\n",
            dir.display()
        ));
    }
    std::fs::write(lib.join("vendor-patches.toml"), table).context("writing the patch table")
}

/// Name and version of every registry package the host's build of `manifest` uses.
fn host_packages(manifest: &Path) -> Result<BTreeSet<(String, String)>> {
    let host = host_target()?;
    let output = Command::new("cargo")
        .args([
            "metadata",
            "--format-version",
            "1",
            "--offline",
            "--filter-platform",
        ])
        .arg(&host)
        .arg("--manifest-path")
        .arg(manifest)
        .output()
        .context("running cargo metadata")?;
    if !output.status.success() {
        bail!(
            "cargo metadata failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let metadata: serde_json::Value =
        serde_json::from_slice(&output.stdout).context("reading cargo metadata's output")?;
    let ids: BTreeSet<&str> = metadata["resolve"]["nodes"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|node| node["id"].as_str())
        .collect();
    Ok(metadata["packages"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|package| package["id"].as_str().is_some_and(|id| ids.contains(id)))
        .filter(|package| package["source"].is_string())
        .filter_map(|package| {
            Some((
                package["name"].as_str()?.to_owned(),
                package["version"].as_str()?.to_owned(),
            ))
        })
        .collect())
}

fn host_target() -> Result<String> {
    let output = Command::new("rustc")
        .arg("-vV")
        .output()
        .context("running rustc -vV")?;
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .find_map(|line| line.strip_prefix("host: "))
        .map(str::to_owned)
        .context("rustc -vV names no host")
}

/// `name` and `version` from a vendored crate's normalised manifest.
fn package_of(manifest: &Path) -> Option<(String, String)> {
    let text = std::fs::read_to_string(manifest).ok()?;
    let mut inside = false;
    let (mut name, mut version) = (None, None);
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            inside = line == "[package]";
            continue;
        }
        if !inside {
            continue;
        }
        let value = |key: &str| {
            let rest = line.strip_prefix(key)?.trim_start().strip_prefix('=')?;
            Some(rest.trim().trim_matches('"').to_owned())
        };
        name = name.or_else(|| value("name"));
        version = version.or_else(|| value("version"));
    }
    Some((name?, version?))
}

/// The toolchain that runs this install (`rustc --print sysroot`), copied without its HTML
/// documentation; hard links where it is on the same file system.
fn copy_toolchain(to: &Path) -> Result<()> {
    let output = Command::new("rustc")
        .args(["--print", "sysroot"])
        .output()
        .context("running rustc --print sysroot")?;
    if !output.status.success() {
        bail!("`rustc --print sysroot` failed ({})", output.status);
    }
    let sysroot = PathBuf::from(String::from_utf8_lossy(&output.stdout).trim());
    if !sysroot.is_absolute() || !sysroot.join("bin/rustc").is_file() {
        bail!("no toolchain found at {:?}", sysroot);
    }
    // Only a toolchain folder of its own (rustup's `toolchains/<name>`), never a sysroot
    // such as /usr, whose copy would take in every program there (or PREFIX itself).
    let own_folder = sysroot.parent().and_then(Path::file_name) == Some("toolchains".as_ref());
    if !own_folder || to.starts_with(&sysroot) {
        bail!(
            "the active toolchain ({}) is not a rustup toolchain; run the install with \
             rustup's rustc first on PATH (e.g. `sudo env PATH=$PATH tandem install --system`)",
            sysroot.display()
        );
    }
    println!(
        "tandem: copying the toolchain {} into {}",
        sysroot.display(),
        to.display()
    );
    if to.exists() {
        std::fs::remove_dir_all(to).with_context(|| format!("removing {}", to.display()))?;
    }
    copy_tree(&sysroot, to, &["doc"], true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_installed_workspace_keeps_the_package_table_and_names_two_members() {
        let checkout = "[workspace]\nmembers = [\"kernel\"]\n\n[workspace.package]\n\
                        edition = \"2021\"\nrust-version = \"1.95\"\n\n[patch.crates-io]\n\
                        evcxr = { path = \"patches/evcxr\" }\n";
        let written = workspace_of_preload(checkout).unwrap();
        assert!(written.contains("members = [\"kernel/preload\", \"kernel/helpers\"]"));
        assert!(written.contains("[workspace.package]\nedition = \"2021\"\nrust-version"));
        assert!(!written.contains("evcxr"), "{written}");
        assert!(workspace_of_preload("[workspace]\n").is_err());
    }

    #[test]
    fn a_vendored_manifest_names_its_package() {
        let dir = crate::private_dirs::test_dir("vendored-manifest");
        let manifest = dir.join("Cargo.toml");
        std::fs::write(
            &manifest,
            "[package]\nedition = \"2021\"\nname = \"libc\"\nversion = \"0.2.178\"\n\n\
             [dependencies.core]\nversion = \"1\"\nname = \"other\"\n",
        )
        .unwrap();
        assert_eq!(
            package_of(&manifest),
            Some(("libc".to_owned(), "0.2.178".to_owned()))
        );
        std::fs::remove_dir_all(dir).unwrap();
    }
}
