//! File copying for `tandem install --system`: trees copied, or hard-linked where no
//! learner could change the file, and permissions opened for every user to read, not write.

use anyhow::{Context, Result};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

pub fn remove_if_present(path: &Path) -> Result<()> {
    match std::fs::remove_file(path) {
        Err(error) if error.kind() != std::io::ErrorKind::NotFound => {
            Err(error).with_context(|| format!("removing {}", path.display()))
        }
        _ => Ok(()),
    }
}

/// Copies this binary to `to` through a temporary name, so a running kernel's file is
/// replaced, never rewritten under it.
pub fn copy_binary(to: &Path) -> Result<()> {
    let exe = std::env::current_exe().context("finding this binary")?;
    if exe.canonicalize().ok() == to.canonicalize().ok() {
        return Ok(());
    }
    let partial = to.with_extension("partial");
    std::fs::copy(&exe, &partial)
        .with_context(|| format!("copying {} to {}", exe.display(), partial.display()))?;
    std::fs::rename(&partial, to).with_context(|| format!("installing {}", to.display()))
}

/// Copies a tree (symbolic links as links), leaving out folders named in `skip`; with
/// `link`, hard-links files where the file system allows.
pub fn copy_tree(from: &Path, to: &Path, skip: &[&str], link: bool) -> Result<()> {
    std::fs::create_dir_all(to).with_context(|| format!("creating {}", to.display()))?;
    for entry in std::fs::read_dir(from).with_context(|| format!("reading {}", from.display()))? {
        let entry = entry?;
        let source = entry.path();
        let target = to.join(entry.file_name());
        let kind = entry.file_type()?;
        if kind.is_dir() {
            if !skip.iter().any(|name| entry.file_name() == *name) {
                copy_tree(&source, &target, skip, link)?;
            }
        } else if kind.is_symlink() {
            std::os::unix::fs::symlink(std::fs::read_link(&source)?, &target)?;
        } else if !(link && root_only(&entry)? && std::fs::hard_link(&source, &target).is_ok()) {
            std::fs::copy(&source, &target)
                .with_context(|| format!("copying {}", source.display()))?;
        }
    }
    Ok(())
}

/// A file only root may change: hard links to it cannot be changed under learners.
fn root_only(entry: &std::fs::DirEntry) -> Result<bool> {
    use std::os::unix::fs::MetadataExt;
    let meta = entry.metadata()?;
    Ok(meta.uid() == 0 && meta.mode() & 0o022 == 0)
}

/// Everyone may read (and enter) everything under `dir`, and no one but its owner may
/// write it, whatever the installer's umask was.
pub fn open_to_everyone(dir: &Path) -> Result<()> {
    let meta = std::fs::symlink_metadata(dir)?;
    if meta.file_type().is_symlink() {
        return Ok(());
    }
    let mode = meta.permissions().mode() & 0o7777;
    let opened = if meta.is_dir() || mode & 0o100 != 0 {
        (mode | 0o755) & !0o022
    } else {
        (mode | 0o644) & !0o022
    };
    if opened != mode {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(opened))
            .with_context(|| format!("opening {} to every user", dir.display()))?;
    }
    if meta.is_dir() {
        for entry in std::fs::read_dir(dir)? {
            open_to_everyone(&entry?.path())?;
        }
    }
    Ok(())
}
