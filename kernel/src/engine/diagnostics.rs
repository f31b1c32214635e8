//! Turns rustc's compile errors (as evcxr reports them) into a traceback that points at
//! the cell's own lines, in rustc's familiar layout, with ANSI colours; and says why
//! evcxr could not work out a variable's type when that is the toolchain's doing.

use evcxr::CompilationError;
use std::sync::OnceLock;

/// evcxr's message when rust-analyzer could not tell a variable's type.
const UNKNOWN_TYPE: &str = "Couldn't automatically determine type of variable";

/// evcxr asks rust-analyzer for the type of each variable it keeps. Without the rust-src
/// component rust-analyzer cannot see the standard library, so every std type is unknown.
pub fn explain(message: String) -> String {
    if !message.starts_with(UNKNOWN_TYPE) || rust_src_installed() {
        return message;
    }
    format!(
        "{message}\n\ntandem: this toolchain has no `rust-src` component, so rust-analyzer \
         cannot see the standard library and cannot tell the types of values that come from \
         it (Vec, String, Instant, what a future returns, ...). Write the type \
         (`let v: Vec<i32> = vec![1, 2];`), keep the value inside `{{ ... }}`, or install \
         the component: `rustup component add rust-src`."
    )
}

fn rust_src_installed() -> bool {
    static INSTALLED: OnceLock<bool> = OnceLock::new();
    *INSTALLED.get_or_init(|| {
        let Ok(output) = std::process::Command::new("rustc")
            .args(["--print", "sysroot"])
            .output()
        else {
            return true; // cannot tell: say nothing
        };
        let sysroot = String::from_utf8_lossy(&output.stdout).trim().to_owned();
        std::path::Path::new(&sysroot)
            .join("lib/rustlib/src/rust/library/core")
            .is_dir()
    })
}

const RED: &str = "\x1b[1;31m";
const BLUE: &str = "\x1b[1;34m";
const BOLD: &str = "\x1b[1m";
const RESET: &str = "\x1b[0m";

/// The traceback lines for a set of compile errors against `cell` (the cell's source).
pub fn traceback(errors: &[CompilationError], cell: &str) -> Vec<String> {
    let lines: Vec<&str> = cell.lines().collect();
    let mut out = Vec::new();
    for (index, error) in errors.iter().enumerate() {
        if index > 0 {
            out.push(String::new());
        }
        render_one(error, &lines, &mut out);
    }
    out
}

/// One-line summary (`ename`, `evalue`) of the first error.
pub fn summary(errors: &[CompilationError]) -> (String, String) {
    match errors.first() {
        Some(error) => {
            let ename = match error.code() {
                Some(code) => format!("error[{code}]"),
                None => "error".to_owned(),
            };
            (ename, error.message())
        }
        None => ("error".to_owned(), "compilation failed".to_owned()),
    }
}

fn render_one(error: &CompilationError, lines: &[&str], out: &mut Vec<String>) {
    let level = error.level();
    let code = error.code().map(|c| format!("[{c}]")).unwrap_or_default();
    out.push(format!(
        "{RED}{level}{code}{RESET}{BOLD}: {}{RESET}",
        error.message()
    ));
    if !error.is_from_user_code() {
        // Errors in code evcxr generated around the cell: rustc's own rendering is the
        // most faithful thing we can show.
        for line in error.rendered().lines() {
            out.push(line.to_owned());
        }
        return;
    }
    let gutter = lines.len().to_string().len();
    let mut located = false;
    let mut last_line_shown = None;
    for spanned in error.spanned_messages() {
        let Some(span) = &spanned.span else {
            if !spanned.label.is_empty() {
                out.push(format!("{BLUE}{:gutter$} = {RESET}{}", "", spanned.label));
            }
            continue;
        };
        if !located {
            out.push(format!(
                "{BLUE}{:gutter$}--> {RESET}cell:{}:{}",
                "", span.start_line, span.start_column
            ));
            out.push(format!("{BLUE}{:gutter$} |{RESET}", ""));
            located = true;
        }
        let Some(source) = lines.get(span.start_line.saturating_sub(1)) else {
            continue;
        };
        if last_line_shown != Some(span.start_line) {
            out.push(format!(
                "{BLUE}{:>gutter$} |{RESET} {source}",
                span.start_line
            ));
            last_line_shown = Some(span.start_line);
        }
        let start = span.start_column.max(1);
        let end = if span.end_line == span.start_line {
            span.end_column
        } else {
            source.chars().count() + 1
        }
        .max(start + 1);
        let colour = if spanned.is_primary { RED } else { BLUE };
        let mark = if spanned.is_primary { "^" } else { "-" };
        out.push(format!(
            "{BLUE}{:gutter$} |{RESET} {}{colour}{} {}{RESET}",
            "",
            " ".repeat(start - 1),
            mark.repeat(end - start),
            spanned.label
        ));
    }
    for help in error.help() {
        out.push(format!(
            "{BLUE}{:gutter$} = {RESET}{BOLD}help{RESET}: {help}",
            ""
        ));
    }
}
