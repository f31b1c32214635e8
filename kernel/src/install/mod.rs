//! `tandem install`: writes the Jupyter kernelspec (kernel.json and logos) so Jupyter
//! can find and start this binary, like `python -m ipykernel install`.

mod files;
pub mod system;

use anyhow::{bail, Context, Result};
use serde_json::json;
use std::path::{Path, PathBuf};

/// Where the kernelspec goes.
#[derive(Debug, Clone, PartialEq)]
pub enum Location {
    /// The user's Jupyter data directory (the default).
    User,
    /// The active virtualenv or conda environment.
    SysPrefix,
    /// `DIR/share/jupyter/kernels`.
    Prefix(PathBuf),
}

pub const KERNEL_NAME: &str = "tandem";
pub const DISPLAY_NAME: &str = "Rust (tandem)";

const LOGO_32: &[u8] = include_bytes!("../../assets/logo-32x32.png");
const LOGO_64: &[u8] = include_bytes!("../../assets/logo-64x64.png");
const LOGO_SVG: &[u8] = include_bytes!("../../assets/logo-svg.svg");

/// The `kernels/` directory for a location.
pub fn kernels_dir(location: &Location) -> Result<PathBuf> {
    Ok(match location {
        Location::User => user_data_dir()?.join("kernels"),
        Location::SysPrefix => {
            let prefix = std::env::var_os("VIRTUAL_ENV")
                .or_else(|| std::env::var_os("CONDA_PREFIX"))
                .context(
                    "--sys-prefix needs an active virtualenv or conda environment \
                     (VIRTUAL_ENV or CONDA_PREFIX); use --prefix DIR instead",
                )?;
            PathBuf::from(prefix).join("share/jupyter/kernels")
        }
        Location::Prefix(dir) => dir.join("share/jupyter/kernels"),
    })
}

fn user_data_dir() -> Result<PathBuf> {
    if let Some(dir) = std::env::var_os("JUPYTER_DATA_DIR") {
        return Ok(PathBuf::from(dir));
    }
    let home = std::env::var_os("HOME").context("HOME is not set")?;
    let home = PathBuf::from(home);
    if cfg!(target_os = "macos") {
        return Ok(home.join("Library/Jupyter"));
    }
    match std::env::var_os("XDG_DATA_HOME") {
        Some(xdg) if !xdg.is_empty() => Ok(PathBuf::from(xdg).join("jupyter")),
        _ => Ok(home.join(".local/share/jupyter")),
    }
}

/// Writes the kernelspec for `binary` and returns the directory written.
pub fn install(location: &Location, binary: &Path) -> Result<PathBuf> {
    if !binary.is_absolute() {
        bail!(
            "the kernel binary path must be absolute: {}",
            binary.display()
        );
    }
    let dir = kernels_dir(location)?.join(KERNEL_NAME);
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let spec = json!({
        "argv": [binary, "kernel", "--connection-file", "{connection_file}"],
        "display_name": DISPLAY_NAME,
        "language": "rust",
        "interrupt_mode": "message",
        "metadata": {"debugger": false},
    });
    let write = |name: &str, bytes: &[u8]| -> Result<()> {
        let path = dir.join(name);
        std::fs::write(&path, bytes).with_context(|| format!("writing {}", path.display()))
    };
    write(
        "kernel.json",
        serde_json::to_string_pretty(&spec)?.as_bytes(),
    )?;
    write("logo-32x32.png", LOGO_32)?;
    write("logo-64x64.png", LOGO_64)?;
    write("logo-svg.svg", LOGO_SVG)?;
    Ok(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_kernelspec_with_logos_under_prefix() {
        let prefix = crate::private_dirs::test_dir("install");
        let dir = install(&Location::Prefix(prefix.clone()), Path::new("/opt/tandem")).unwrap();
        assert_eq!(dir, prefix.join("share/jupyter/kernels/tandem"));
        let spec: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.join("kernel.json")).unwrap()).unwrap();
        assert_eq!(spec["argv"][0], "/opt/tandem");
        assert_eq!(spec["argv"][3], "{connection_file}");
        assert_eq!(spec["interrupt_mode"], "message");
        assert_eq!(spec["display_name"], "Rust (tandem)");
        // PNG signature and the IHDR width of each logo.
        for (name, width) in [("logo-32x32.png", 32u32), ("logo-64x64.png", 64)] {
            let png = std::fs::read(dir.join(name)).unwrap();
            assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
            assert_eq!(u32::from_be_bytes(png[16..20].try_into().unwrap()), width);
        }
        std::fs::remove_dir_all(prefix).unwrap();
    }

    #[test]
    fn relative_binary_is_refused() {
        let prefix = crate::private_dirs::test_dir("install-relative");
        assert!(install(&Location::Prefix(prefix.clone()), Path::new("tandem")).is_err());
        std::fs::remove_dir_all(prefix).unwrap();
    }
}
