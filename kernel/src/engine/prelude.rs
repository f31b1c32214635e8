//! What every new session runs before its first cell: the optimisation level, the preloaded
//! crate (tokio, futures, helpers), the `use` lines that bring them into every cell, and one
//! `.await` so that top-level `.await` works from the first cell on.
//!
//! evcxr shows a cell's value by first compiling `(value).evcxr_display()` and, when that
//! fails to compile (most types have no such method), compiling again with `{:?}`. The
//! blanket trait below gives every `Debug` type that method, so the first compile works and
//! a cell with a value is compiled once instead of twice. Types with their own inherent
//! `evcxr_display` still win: inherent methods come before trait methods.

use crate::layout;

/// Cells compile at opt-level 0: an async cell compiles in 0.3 s instead of 0.7 s at 1 and
/// 0.9 s at evcxr's default 2. Dependencies stay optimised (see `artifacts`).
const OPT_LEVEL: &str = ":opt 0";

const USES_AND_DISPLAY: &str = r#"
use tokio::__tandem::{futures, tandem_helpers};
use tandem_helpers::prelude::*;
use tokio::{spawn, task::spawn_blocking, __tandem::gather};
#[doc(hidden)]
pub trait TandemShowDebug {
    fn evcxr_display(&self);
}
impl<T: std::fmt::Debug + ?Sized> TandemShowDebug for T {
    fn evcxr_display(&self) {
        println!("EVCXR_BEGIN_CONTENT text/plain\n{:?}\nEVCXR_END_CONTENT", self);
    }
}
"#;

/// The code evcxr wraps around every cell (the store that carries variables from cell to
/// cell, the cells' tokio runtime) comes compiled in the preloaded crate instead of pasted
/// into each cell: a trivial cell's rustc time falls by about half (patches/README.md).
/// Set before the first cell, so that every cell uses the same store.
const RUNTIME_MODULE: &str = ":runtime_module tokio::__tandem::cell_store";

/// evcxr switches a session to async mode (each cell runs inside its tokio runtime) at the
/// first `.await` outside an async block. Doing it now spares the learner's first async
/// cell a failed compile, and makes every cell behave the same way.
const ASYNC_MODE: &str = "std::future::ready(()).await;";

/// Cells, the preloaded crates and `:dep` crates are compiled with `--cfg tokio_unstable`,
/// so that the preloaded tokio has its task hooks, which the poll recorder uses (stable
/// Rust: it is a `cfg`, not a nightly feature). evcxr gives cargo RUSTFLAGS of its own and
/// `:build_env` replaces them, so they are repeated: `-Cprefer-dynamic`, and lld's flag
/// where evcxr chose lld (it prefers mold, which needs no flag, then lld).
fn build_flags() -> String {
    let mut flags = vec!["-Cprefer-dynamic", "--cfg", "tokio_unstable"];
    if which::which("mold").is_err() && which::which("lld").is_ok() {
        flags.push("-Clink-arg=-fuse-ld=lld");
    }
    format!(":build_env RUSTFLAGS={}", flags.join(" "))
}

/// The startup steps, each with what it is for (used in error messages).
pub fn steps() -> Vec<(&'static str, String)> {
    // Named `tokio` so that evcxr's async mode finds tokio among the dependencies and uses
    // it instead of adding its own copy.
    let preload = format!(
        ":dep tokio = {{ package = \"tandem-preload\", path = \"{}\" }}",
        layout::preload_crate().display()
    );
    vec![
        ("choosing the optimisation level", OPT_LEVEL.to_owned()),
        (
            "choosing the cells' runtime code",
            RUNTIME_MODULE.to_owned(),
        ),
        ("turning on tokio's task hooks", build_flags()),
        ("linking tokio, futures and the helpers", preload),
        ("importing the helpers", USES_AND_DISPLAY.to_owned()),
        ("enabling top-level .await", ASYNC_MODE.to_owned()),
    ]
}

/// Crates every session already links: a `:dep` line for one of them would replace the
/// preloaded copy (and the helpers with it).
const PRELOADED: [&str; 2] = ["tokio", "futures"];

/// Takes `:dep tokio ...` and `:dep futures ...` lines out of the cell's leading command
/// lines; returns the code to run and the names of the crates whose lines were taken.
pub fn skip_preloaded_deps(code: &str) -> (String, Vec<&'static str>) {
    let mut in_commands = true;
    let mut skipped = Vec::new();
    let mut kept = Vec::new();
    for line in code.lines() {
        in_commands = in_commands && super::syntax::is_command_region_line(line);
        let crate_name = line
            .trim_start()
            .strip_prefix(":dep")
            .filter(|rest| rest.starts_with([' ', '\t']))
            .and_then(|rest| rest.split(['=', ' ', '\t']).find(|word| !word.is_empty()));
        match crate_name.and_then(|name| PRELOADED.into_iter().find(|p| *p == name)) {
            Some(preloaded) if in_commands => skipped.push(preloaded),
            _ => kept.push(line),
        }
    }
    if skipped.is_empty() {
        return (code.to_owned(), skipped);
    }
    (kept.join("\n"), skipped)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dep_lines_for_preloaded_crates_are_skipped() {
        let cell = ":dep tokio = { version = \"1\", features = [\"full\"] }\n:dep futures=\"0.3\"\n:dep rand = \"0.9\"\nlet x = 1;";
        let (code, skipped) = skip_preloaded_deps(cell);
        assert_eq!(code, ":dep rand = \"0.9\"\nlet x = 1;");
        assert_eq!(skipped, ["tokio", "futures"]);
        let untouched = "let s = \":dep tokio\";\n:dep tokio-util = \"0.7\"";
        assert_eq!(
            skip_preloaded_deps(untouched),
            (untouched.to_owned(), vec![])
        );
    }
}
