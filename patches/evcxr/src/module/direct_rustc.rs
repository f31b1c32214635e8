// tandem patch: this whole file (see patches/README.md, "cells compiled without cargo").
//
// A cell's crate is built by `cargo build`, which runs rustc through evcxr's own wrapper. For
// the cells that follow, nothing cargo decides changes unless the crate's Cargo.toml, its
// .cargo/config.toml or the command cargo was started with changes: the same rustc command
// line, with the same environment, builds the next cell. So the wrapper writes down the rustc
// command it ran for the cell crate, and while those inputs stay the same, later cells run that
// command directly, skipping cargo's start, its fingerprint checks and the wrapper's process.

use crate::code_block::CodeBlock;
use crate::errors::CompilationError;
use crate::errors::Error;
use crate::errors::bail;
use std::ffi::OsStr;
use std::path::Path;
use std::path::PathBuf;
use std::process::Command;

/// Set by `Module::compile` on the cargo command: where the wrapper writes the cell crate's
/// rustc command.
pub(crate) const RECORD_ENV: &str = "EVCXR_RUSTC_RECORD";

/// Variables not to pass on when the command is run again: the jobserver cargo handed to
/// rustc is gone by then (rustc makes its own when none is given).
const NOT_REPLAYED: &[&str] = &["CARGO_MAKEFLAGS", "MAKEFLAGS", "MFLAGS"];

/// The rustc command cargo ran for the cell crate, and what it was made from.
pub(crate) struct DirectRustc {
    /// The cargo command, Cargo.toml and config.toml the command was made from.
    inputs: String,
    program: String,
    args: Vec<String>,
    env: Vec<(String, String)>,
    cwd: String,
    /// The shared object the command writes.
    so_path: PathBuf,
    /// rustc's size and modification time when the command was recorded: a toolchain
    /// updated in place goes through cargo again.
    rustc_stamp: Option<(u64, std::time::SystemTime)>,
}

fn file_stamp(path: &Path) -> Option<(u64, std::time::SystemTime)> {
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.len(), meta.modified().ok()?))
}

/// Whether compile errors from a direct build are better left to cargo: one says a
/// dependency's library cannot be used as it is (rebuilt, removed, made by another
/// compiler). Any other error, the cell's or one in the code evcxr generated around it
/// (which evcxr's retries expect), is the compile's answer.
pub(crate) fn calls_for_cargo(errors: &[CompilationError]) -> bool {
    const CRATE_LOADING: &[&str] = &[
        "E0460", "E0461", "E0462", "E0463", "E0464", "E0514", "E0519", "E0523", "E0786",
    ];
    errors
        .iter()
        .filter(|error| error.level() == "error")
        .any(|error| {
            error
                .code()
                .is_some_and(|code| CRATE_LOADING.contains(&code))
                || error.message().starts_with("extern location for")
        })
}

/// What the cargo command for a cell, and the files cargo reads, amount to: two builds with
/// the same inputs run the same rustc command for the cell crate. Path dependencies (and
/// theirs) count with the number and newest modification time of their files, so that an
/// edited local crate goes through cargo, which rebuilds it.
pub(crate) fn inputs(command: &Command, crate_dir: &Path) -> String {
    let mut inputs = format!(
        "{:?} {:?} in {:?}\n",
        command.get_program(),
        command.get_args().collect::<Vec<_>>(),
        command.get_current_dir()
    );
    let mut envs: Vec<_> = command.get_envs().collect();
    envs.sort();
    inputs.push_str(&format!("{envs:?}\n"));
    for file in ["Cargo.toml", ".cargo/config.toml"] {
        inputs.push_str(&std::fs::read_to_string(crate_dir.join(file)).unwrap_or_default());
        inputs.push('\n');
    }
    let mut seen = Vec::new();
    path_dependencies(crate_dir, &mut seen);
    for dir in &seen[1..] {
        let (files, newest) = newest_file(dir, 0);
        inputs.push_str(&format!(
            "{}: {files} files, newest {newest:?}\n",
            dir.display()
        ));
    }
    inputs
}

/// Adds `dir` and, through each Cargo.toml's `path = ".."` dependencies, every local crate
/// it depends on to `seen`.
fn path_dependencies(dir: &Path, seen: &mut Vec<PathBuf>) {
    let dir = dir.canonicalize().unwrap_or_else(|_| dir.to_owned());
    if seen.contains(&dir) {
        return;
    }
    seen.push(dir.clone());
    let Ok(manifest) = std::fs::read_to_string(dir.join("Cargo.toml")) else {
        return;
    };
    let Ok(manifest) = toml::from_str::<toml::Table>(&manifest) else {
        return;
    };
    let mut tables: Vec<&toml::Table> = ["dependencies", "build-dependencies"]
        .iter()
        .filter_map(|name| manifest.get(*name)?.as_table())
        .collect();
    // [target.'cfg(..)'.dependencies] too.
    for target in manifest
        .get("target")
        .and_then(|t| t.as_table())
        .into_iter()
    {
        for platform in target.values().filter_map(|p| p.as_table()) {
            tables.extend(
                ["dependencies", "build-dependencies"]
                    .iter()
                    .filter_map(|name| platform.get(*name)?.as_table()),
            );
        }
    }
    for table in tables {
        for dependency in table.values() {
            if let Some(path) = dependency.get("path").and_then(|path| path.as_str()) {
                path_dependencies(&dir.join(path), seen);
            }
        }
    }
}

/// How many files `dir` holds (outside `target` and hidden folders), and the newest one's
/// modification time.
fn newest_file(dir: &Path, depth: usize) -> (usize, Option<std::time::SystemTime>) {
    let mut found = (0, None);
    let Ok(entries) = std::fs::read_dir(dir) else {
        return found;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        let (files, newest) = if kind.is_dir() {
            if depth > 16 || name == "target" || name.to_string_lossy().starts_with('.') {
                continue;
            }
            newest_file(&entry.path(), depth + 1)
        } else {
            (1, entry.metadata().and_then(|meta| meta.modified()).ok())
        };
        found = (found.0 + files, found.1.max(newest));
    }
    found
}

/// Called by the rustc wrapper for the cell crate: writes `command`, with the wrapper's own
/// environment (which cargo prepared for rustc), to the file named by [`RECORD_ENV`]. Writes
/// nothing when anything in it is not UTF-8: the next cell then goes through cargo again.
pub(crate) fn record(command: &Command, so_path: &Path) -> anyhow::Result<()> {
    let Some(record_path) = std::env::var_os(RECORD_ENV) else {
        return Ok(());
    };
    let text = |s: &OsStr| s.to_str().map(str::to_owned);
    let (Some(program), Some(args), Some(env), Some(cwd), Some(so_path)) = (
        text(command.get_program()),
        command.get_args().map(text).collect::<Option<Vec<_>>>(),
        std::env::vars_os()
            .filter(|(key, _)| !NOT_REPLAYED.iter().any(|skip| key == skip))
            .map(|(key, value)| Some((text(&key)?, text(&value)?)))
            .collect::<Option<Vec<_>>>(),
        text(std::env::current_dir()?.as_os_str()),
        text(so_path.as_os_str()),
    ) else {
        return Ok(());
    };
    let record = serde_json::json!({
        "program": program, "args": args, "env": env, "cwd": cwd, "so_path": so_path,
    });
    // Only this user reads it: it holds the environment the build ran in.
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let _ = std::fs::remove_file(&record_path);
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&record_path)?
        .write_all(record.to_string().as_bytes())?;
    Ok(())
}

impl DirectRustc {
    /// The command the wrapper wrote to `record_path`, if it wrote one, for a build made from
    /// `inputs`.
    pub(crate) fn load(record_path: &Path, inputs: String) -> Option<Self> {
        let record: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(record_path).ok()?).ok()?;
        let strings = |value: &serde_json::Value| -> Option<Vec<String>> {
            value
                .as_array()?
                .iter()
                .map(|item| item.as_str().map(str::to_owned))
                .collect()
        };
        let env = record["env"]
            .as_array()?
            .iter()
            .map(|pair| {
                let pair = strings(pair)?;
                match <[String; 2]>::try_from(pair) {
                    Ok([key, value]) => Some((key, value)),
                    Err(_) => None,
                }
            })
            .collect::<Option<Vec<_>>>()?;
        let program = record["program"].as_str()?.to_owned();
        // As with cargo's --message-format=json: rendered diagnostics without colours.
        let args = strings(&record["args"])?
            .into_iter()
            .map(|arg| match arg.strip_prefix("--json=") {
                Some(kinds) => {
                    let kept: Vec<&str> = kinds
                        .split(',')
                        .filter(|kind| *kind != "diagnostic-rendered-ansi")
                        .collect();
                    // cargo always asks for artifacts, so something is left.
                    format!("--json={}", kept.join(","))
                }
                None => arg,
            })
            .collect();
        Some(DirectRustc {
            inputs,
            rustc_stamp: file_stamp(Path::new(&program)),
            program,
            args,
            env,
            cwd: record["cwd"].as_str()?.to_owned(),
            so_path: PathBuf::from(record["so_path"].as_str()?),
        })
    }

    /// Whether this command builds a cell whose cargo command and files amount to `inputs`.
    pub(crate) fn fits(&self, inputs: &str) -> bool {
        self.inputs == inputs && file_stamp(Path::new(&self.program)) == self.rustc_stamp
    }

    /// Compiles the cell crate (its lib.rs already written) and returns the shared object's
    /// path; compile errors as evcxr reports them after `cargo build`.
    pub(crate) fn compile(&self, code_block: &CodeBlock) -> Result<PathBuf, Error> {
        let output = Command::new(&self.program)
            .args(&self.args)
            .env_clear()
            .envs(self.env.iter().map(|(key, value)| (key, value)))
            .current_dir(&self.cwd)
            .stdin(std::process::Stdio::null())
            .output()
            .map_err(|error| Error::Message(format!("Error running rustc: {error}")))?;
        if output.status.success() {
            return Ok(self.so_path.clone());
        }
        let stderr = String::from_utf8_lossy(&output.stderr);
        let errors: Vec<CompilationError> = stderr
            .lines()
            .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
            .filter(|json| json["$message_type"] == "diagnostic")
            .filter_map(|json| CompilationError::opt_new(json, code_block))
            .collect();
        if errors.is_empty() {
            bail!(Error::Message(format!(
                "Compilation failed, but no parsable errors were found. STDERR:\n{stderr}"
            )));
        }
        bail!(Error::CompilationErrors(errors));
    }
}
