//! rustc's compile errors, as evcxr reports them, turned into plain data about the cell's
//! own lines (`presentation` draws them in rustc's layout); and why evcxr could not work
//! out a variable's type when that is the toolchain's doing.

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

/// One compile error or warning, as it concerns the cell.
#[derive(Debug, Clone, PartialEq)]
pub struct Diagnostic {
    /// `error`, `warning`, ...
    pub level: String,
    /// rustc's code (`E0308`), when it has one.
    pub code: Option<String>,
    pub message: String,
    pub found: Found,
}

/// Where a diagnostic points.
#[derive(Debug, Clone, PartialEq)]
pub enum Found {
    /// In the cell's own lines: labelled places, then rustc's help.
    InCell {
        labels: Vec<Label>,
        help: Vec<String>,
    },
    /// In code evcxr generated around the cell: rustc's own rendering, which is the most
    /// faithful thing to show.
    Generated { rendered: String },
}

/// A label rustc attached to a diagnostic, at a place in the cell or at none.
#[derive(Debug, Clone, PartialEq)]
pub struct Label {
    pub text: String,
    pub span: Option<CellSpan>,
    /// The place the error is about (rustc's `^^^`), rather than one that explains it.
    pub primary: bool,
}

/// Lines and columns in the cell, counted from 1.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CellSpan {
    pub start_line: usize,
    pub start_column: usize,
    pub end_line: usize,
    pub end_column: usize,
}

/// The compile errors as data.
pub fn diagnostics(errors: &[CompilationError]) -> Vec<Diagnostic> {
    errors.iter().map(diagnostic).collect()
}

fn diagnostic(error: &CompilationError) -> Diagnostic {
    let found = if error.is_from_user_code() {
        Found::InCell {
            labels: error
                .spanned_messages()
                .iter()
                .map(|spanned| Label {
                    text: spanned.label.clone(),
                    span: spanned.span.as_ref().map(|span| CellSpan {
                        start_line: span.start_line,
                        start_column: span.start_column,
                        end_line: span.end_line,
                        end_column: span.end_column,
                    }),
                    primary: spanned.is_primary,
                })
                .collect(),
            help: error.help(),
        }
    } else {
        Found::Generated {
            rendered: error.rendered(),
        }
    };
    Diagnostic {
        level: error.level().to_owned(),
        code: error.code().map(str::to_owned),
        message: error.message(),
        found,
    }
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
