//! Turns rustc's compile errors (as evcxr reports them) into a traceback that points at
//! the cell's own lines, in rustc's familiar layout, with ANSI colours.

use evcxr::CompilationError;

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
