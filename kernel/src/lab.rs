//! `tandem lab`: the learner's one command. Creates `.venv` (pinned JupyterLab), installs
//! this kernel into it, and starts JupyterLab on `notebooks/`, bound to 127.0.0.1.

use crate::install;
use anyhow::{bail, Context, Result};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The repository this binary was built from.
pub fn repository_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// Prepares `.venv` and replaces this process with JupyterLab (so Ctrl-C reaches it).
pub fn run(port: Option<u16>, open_browser: bool, extra: &[String]) -> Result<()> {
    let root = repository_root();
    let venv = root.join(".venv");
    ensure_venv(&venv)?;
    let requirements = root.join("notebooks/requirements.txt");
    install_requirements(&venv, &requirements, ".lab-requirements")?;
    let binary = std::env::current_exe()?.canonicalize()?;
    let spec = install::install(&install::Location::Prefix(venv.clone()), &binary)?;
    println!("tandem: kernelspec installed in {}", spec.display());
    crate::engine::prebuild_in_subprocess(false, true)?;

    let mut lab = Command::new(venv.join("bin/jupyter"));
    lab.arg("lab")
        .arg("--ServerApp.ip=127.0.0.1")
        .arg(format!(
            "--ServerApp.root_dir={}",
            root.join("notebooks").display()
        ))
        .arg("--MultiKernelManager.default_kernel_name=tandem")
        .env("JUPYTER_PATH", venv.join("share/jupyter"));
    if let Some(port) = port {
        lab.arg(format!("--ServerApp.port={port}"));
    }
    // SAFETY: geteuid has no preconditions. Containers often run as root, where Jupyter
    // refuses to start unless told that this is intended.
    if unsafe { libc::geteuid() } == 0 {
        lab.arg("--allow-root");
    }
    if !open_browser {
        lab.arg("--no-browser");
    }
    lab.args(extra);
    println!("tandem: starting JupyterLab on notebooks/ (Ctrl-C twice to stop)");
    let error = lab.exec();
    bail!("could not start JupyterLab: {error}")
}

fn ensure_venv(venv: &Path) -> Result<()> {
    if venv.join("bin/python").exists() {
        return Ok(());
    }
    println!("tandem: creating {}", venv.display());
    let status = Command::new("python3")
        .args(["-m", "venv"])
        .arg(venv)
        .status()
        .context("running python3 -m venv (is Python 3 installed?)")?;
    if !status.success() {
        bail!("python3 -m venv failed ({status})");
    }
    Ok(())
}

/// pip-installs a pinned requirements file once; a stamp remembers what was installed.
pub fn install_requirements(venv: &Path, requirements: &Path, stamp_name: &str) -> Result<()> {
    let wanted = std::fs::read(requirements)
        .with_context(|| format!("reading {}", requirements.display()))?;
    let stamp = venv.join(stamp_name);
    if std::fs::read(&stamp).ok().as_ref() == Some(&wanted) {
        return Ok(());
    }
    println!("tandem: installing {} into .venv", requirements.display());
    let status = Command::new(venv.join("bin/pip"))
        .args(["install", "--quiet", "--disable-pip-version-check", "-r"])
        .arg(requirements)
        .status()
        .context("running pip")?;
    if !status.success() {
        bail!(
            "pip install -r {} failed ({status})",
            requirements.display()
        );
    }
    std::fs::write(&stamp, wanted)?;
    Ok(())
}
