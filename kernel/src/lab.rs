//! `tandem lab`: the learner's one command. Creates `.venv` (pinned JupyterLab), installs
//! this kernel into it, and starts JupyterLab on `notebooks/`, bound to 127.0.0.1.

use crate::install;
use anyhow::{bail, Context, Result};
use std::ffi::OsStr;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Prepares `.venv` and replaces this process with JupyterLab (so Ctrl-C reaches it).
pub fn run(
    port: Option<u16>,
    open_browser: bool,
    notebooks: Option<PathBuf>,
    extra: &[String],
) -> Result<()> {
    let root = crate::layout::checkout();
    let notebooks = match notebooks {
        Some(dir) => dir
            .canonicalize()
            .with_context(|| format!("finding {}", dir.display()))?,
        None => root.join("notebooks"),
    };
    let venv = root.join(".venv");
    ensure_venv(&venv)?;
    let requirements = root.join("notebooks/requirements.txt");
    install_requirements(&venv, &requirements, ".lab-requirements")?;
    let binary = std::env::current_exe()?.canonicalize()?;
    let spec = install::install(&install::Location::Prefix(venv.clone()), &binary)?;
    println!("tandem: kernelspec installed in {}", spec.display());
    // Skipped when the template is ready for this build: a second start takes seconds.
    crate::engine::prebuild_in_subprocess(true, true)?;
    lab_defaults(&venv)?;

    if crate::standby::enabled() {
        // The first notebook's kernel finds an engine ready. It stops with this server
        // (whose process id is this one's: exec keeps it).
        let pid = std::process::id().to_string();
        let jupyter_path = venv.join("share/jupyter");
        let env = [
            ("JPY_PARENT_PID", OsStr::new(&pid)),
            ("JUPYTER_PATH", jupyter_path.as_os_str()),
        ];
        if let Err(error) = crate::standby::spawn(Some(&notebooks), &env) {
            eprintln!("tandem: no standby kernel ({error:#}); kernels start their own engine");
        }
    }
    let mut lab = Command::new(venv.join("bin/jupyter"));
    lab.arg("lab")
        .arg("--ServerApp.ip=127.0.0.1")
        .arg(format!("--ServerApp.root_dir={}", notebooks.display()))
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
    println!(
        "tandem: starting JupyterLab on {} (Ctrl-C twice to stop)",
        notebooks.display()
    );
    let error = lab.exec();
    bail!("could not start JupyterLab: {error}")
}

/// JupyterLab's defaults for this environment, in its `overrides.json`:
/// - no pop-up asking to fetch Jupyter news and no update checks (a learner opening the
///   lessons needs neither);
/// - Tab waits up to 5 s for the kernel's completions instead of 1 s. rust-analyzer needs
///   over a second for its first answer (or the kernel is finishing its warm-up of it),
///   and JupyterLab drops a late answer without showing anything.
///
/// Settings already in the file are kept; only missing ones are added.
fn lab_defaults(venv: &Path) -> Result<()> {
    let settings = venv.join("share/jupyter/lab/settings");
    let overrides = settings.join("overrides.json");
    let defaults = serde_json::json!({
        "@jupyterlab/apputils-extension:notification": {
            "checkForUpdates": false,
            "fetchNews": "false"
        },
        "@jupyterlab/completer-extension:manager": {
            "providerTimeout": 5000
        }
    });
    let mut current = match std::fs::read_to_string(&overrides) {
        Ok(text) => match serde_json::from_str(&text) {
            Ok(value @ serde_json::Value::Object(_)) => value,
            outcome => {
                // JupyterLab also reads JSON5 (comments, trailing commas): such a file works
                // for JupyterLab, but tandem cannot add to it without losing them.
                let why = match outcome {
                    Err(error) => format!("not plain JSON ({error})"),
                    Ok(_) => "not a JSON object".to_owned(),
                };
                eprintln!(
                    "tandem: {} is {why}; tandem's JupyterLab defaults (a 5 s completion \
                     timeout, no news pop-up) were not added to it",
                    overrides.display()
                );
                return Ok(());
            }
        },
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => serde_json::json!({}),
        Err(error) => {
            return Err(error).with_context(|| format!("reading {}", overrides.display()))
        }
    };
    if !add_missing(&mut current, &defaults) {
        return Ok(());
    }
    std::fs::create_dir_all(&settings)
        .with_context(|| format!("creating {}", settings.display()))?;
    std::fs::write(&overrides, serde_json::to_string_pretty(&current)?)
        .with_context(|| format!("writing {}", overrides.display()))
}

/// Copies into `into` every key of `from` it lacks, object by object. Returns whether
/// anything was added.
fn add_missing(into: &mut serde_json::Value, from: &serde_json::Value) -> bool {
    let (serde_json::Value::Object(into), serde_json::Value::Object(from)) = (into, from) else {
        return false;
    };
    let mut added = false;
    for (key, value) in from {
        match into.get_mut(key) {
            Some(existing) => added |= add_missing(existing, value),
            None => {
                into.insert(key.clone(), value.clone());
                added = true;
            }
        }
    }
    added
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

#[cfg(test)]
mod tests {
    use super::add_missing;
    use serde_json::json;

    #[test]
    fn missing_settings_are_added_and_the_users_are_kept() {
        let mut current = json!({"a": {"kept": 1, "mine": true}, "other": 2});
        let added = add_missing(&mut current, &json!({"a": {"kept": 9, "new": 3}, "b": {}}));
        assert!(added);
        assert_eq!(
            current,
            json!({"a": {"kept": 1, "mine": true, "new": 3}, "other": 2, "b": {}})
        );
        assert!(!add_missing(&mut current, &json!({"a": {"new": 4}})));
    }
}
