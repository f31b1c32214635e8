//! Compile errors drawn as rustc draws them, against the cell's own lines (`--> cell:2:5`,
//! the line, `^^^` under the place), with the ANSI colours frontends show.

use crate::engine::{CellSpan, Diagnostic, Found, Label};

const RED: &str = "\x1b[1;31m";
const BLUE: &str = "\x1b[1;34m";
const BOLD: &str = "\x1b[1m";
const RESET: &str = "\x1b[0m";

/// The traceback lines for a cell's compile errors; `cell` is the cell's source.
pub fn traceback(diagnostics: &[Diagnostic], cell: &str) -> Vec<String> {
    let lines: Vec<&str> = cell.lines().collect();
    let mut out = Vec::new();
    if let Some(name) = diagnostics.iter().find_map(untyped_variable) {
        // rustc's errors are about evcxr's code, not the learner's: say what to do.
        out.push(format!(
            "{BOLD}tandem:{RESET} the engine could not work out the type of `{name}` to keep it \
             for later cells (its analyser cannot see through some macros: `tokio::select!`, \
             `futures::join!`). Write the type: `let {name}: TheType = ...;` (or use the \
             value inside this cell only, in braces)."
        ));
        out.push(String::new());
    }
    for (index, diagnostic) in diagnostics.iter().enumerate() {
        if index > 0 {
            out.push(String::new());
        }
        draw(diagnostic, &lines, &mut out);
    }
    out
}

/// The variable evcxr tried to keep with a type its analyser guessed wrong (`!` or `()`,
/// when it cannot see through a macro), from the error in evcxr's generated code.
fn untyped_variable(diagnostic: &Diagnostic) -> Option<&str> {
    let Found::Generated { rendered } = &diagnostic.found else {
        return None;
    };
    let after = [
        "put_variable::<!>(stringify!(",
        "put_variable::<()>(stringify!(",
    ]
    .iter()
    .find_map(|guess| rendered.split(guess).nth(1))?;
    after.split(')').next()
}

fn draw(diagnostic: &Diagnostic, lines: &[&str], out: &mut Vec<String>) {
    let code = diagnostic
        .code
        .as_ref()
        .map(|code| format!("[{code}]"))
        .unwrap_or_default();
    out.push(format!(
        "{RED}{}{code}{RESET}{BOLD}: {}{RESET}",
        diagnostic.level, diagnostic.message
    ));
    let (labels, help) = match &diagnostic.found {
        Found::Generated { rendered } => {
            out.extend(rendered.lines().map(str::to_owned));
            return;
        }
        Found::InCell { labels, help } => (labels, help),
    };
    let gutter = lines.len().to_string().len();
    let mut last_line_shown = None;
    // `-->` names the place the error is about; the labels follow in the cell's order, as
    // rustc draws them (evcxr gives them in its own), with those that point nowhere last.
    let placed = || {
        labels
            .iter()
            .filter_map(|label| Some((label, label.span.as_ref()?)))
    };
    if let Some((_, span)) = placed()
        .find(|(label, _)| label.primary)
        .or(placed().next())
    {
        out.push(format!(
            "{BLUE}{:gutter$}--> {RESET}cell:{}:{}",
            "", span.start_line, span.start_column
        ));
        out.push(format!("{BLUE}{:gutter$} |{RESET}", ""));
    }
    let mut labels: Vec<&Label> = labels.iter().collect();
    labels.sort_by_key(|label| {
        (label.span.as_ref()).map_or((usize::MAX, 0), |span| (span.start_line, span.start_column))
    });
    for label in labels {
        let Some(span) = &label.span else {
            if !label.text.is_empty() {
                let text = without_generated_places(&label.text);
                out.push(format!("{BLUE}{:gutter$} = {RESET}{text}", ""));
            }
            continue;
        };
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
        out.push(underline(label, span, source, gutter));
    }
    for help in help {
        // evcxr puts rustc's suggested code after a blank line: keep it on the line when
        // it is a word or two (`move`), under it when it is more.
        let help = without_generated_places(help);
        let (advice, suggested) = help.split_once("\n\n").unwrap_or((&help, ""));
        let suggested = suggested.trim();
        let line = if suggested.is_empty() {
            advice.to_owned()
        } else if !suggested.contains('\n') && suggested.len() <= 40 {
            format!("{advice}: `{suggested}`")
        } else {
            format!("{advice}:\n{suggested}")
        };
        out.push(format!(
            "{BLUE}{:gutter$} = {RESET}{BOLD}help{RESET}: {line}",
            ""
        ));
    }
}

/// rustc names an async block or closure by its place in the code evcxr generated around
/// the cell (`{async block@src/lib.rs:145:29: 145:39}`), a place the learner cannot see:
/// the place is left out (`{async block}`).
fn without_generated_places(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("@src/") {
        out.push_str(&rest[..at]);
        let after = &rest[at..];
        match after.find('}') {
            Some(end) if after[..end].chars().all(|c| c != '{' && c != '\n') => {
                rest = &after[end..];
            }
            _ => {
                out.push('@');
                rest = &after[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// The line under `source` that marks the label's place and says its text.
fn underline(label: &Label, span: &CellSpan, source: &str, gutter: usize) -> String {
    let start = span.start_column.max(1);
    let end = if span.end_line == span.start_line {
        span.end_column
    } else {
        source.chars().count() + 1
    }
    .max(start + 1);
    let (colour, mark) = if label.primary {
        (RED, "^")
    } else {
        (BLUE, "-")
    };
    format!(
        "{BLUE}{:gutter$} |{RESET} {}{colour}{} {}{RESET}",
        "",
        " ".repeat(start - 1),
        mark.repeat(end - start),
        without_generated_places(&label.text)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strip_colours(line: &str) -> String {
        let mut plain = String::new();
        let mut in_escape = false;
        for c in line.chars() {
            match (in_escape, c) {
                (false, '\x1b') => in_escape = true,
                (true, 'm') => in_escape = false,
                (false, c) => plain.push(c),
                (true, _) => {}
            }
        }
        plain
    }

    #[test]
    fn an_error_points_at_the_cells_own_line() {
        let diagnostic = Diagnostic {
            level: "error".into(),
            code: Some("E0308".into()),
            message: "mismatched types".into(),
            found: Found::InCell {
                labels: vec![Label {
                    text: "expected `i32`".into(),
                    span: Some(CellSpan {
                        start_line: 2,
                        start_column: 14,
                        end_line: 2,
                        end_column: 18,
                    }),
                    primary: true,
                }],
                help: vec!["try `5`".into()],
            },
        };
        let drawn: Vec<String> = traceback(&[diagnostic], "let a = 1;\nlet b: i32 = \"5\";")
            .iter()
            .map(|line| strip_colours(line))
            .collect();
        assert_eq!(
            drawn,
            [
                "error[E0308]: mismatched types",
                " --> cell:2:14",
                "  |",
                "2 | let b: i32 = \"5\";",
                "  |              ^^^^ expected `i32`",
                "  = help: try `5`",
            ]
        );
    }

    #[test]
    fn suggested_code_follows_its_help_and_generated_places_are_left_out() {
        let diagnostic = Diagnostic {
            level: "error".into(),
            code: None,
            message: "future cannot be sent between threads safely".into(),
            found: Found::InCell {
                labels: vec![],
                help: vec![
                    "within `{async block@src/lib.rs:145:29: 145:39}`, the trait `Send` is \
                     not implemented for `Rc<Vec<&str>>`"
                        .into(),
                    "to force the async block to take ownership, use the `move` keyword\n\n move"
                        .into(),
                ],
            },
        };
        let drawn: Vec<String> = traceback(&[diagnostic], "")
            .iter()
            .map(|line| strip_colours(line))
            .collect();
        assert_eq!(
            drawn[1..],
            [
                "  = help: within `{async block}`, the trait `Send` is not implemented for \
                 `Rc<Vec<&str>>`",
                "  = help: to force the async block to take ownership, use the `move` keyword: \
                 `move`",
            ]
        );
    }

    #[test]
    fn labels_are_drawn_in_the_cells_order() {
        let at = |line, primary, text: &str| Label {
            text: text.into(),
            span: Some(CellSpan {
                start_line: line,
                start_column: 1,
                end_line: line,
                end_column: 2,
            }),
            primary,
        };
        let diagnostic = Diagnostic {
            level: "error".into(),
            code: Some("E0597".into()),
            message: "`pages` does not live long enough".into(),
            found: Found::InCell {
                labels: vec![
                    at(3, true, "borrowed value"),
                    at(1, false, "binding declared"),
                ],
                help: vec![],
            },
        };
        let drawn: Vec<String> = traceback(&[diagnostic], "a\nb\nc")
            .iter()
            .map(|line| strip_colours(line))
            .collect();
        let first = drawn
            .iter()
            .position(|line| line.contains("binding declared"));
        let third = drawn
            .iter()
            .position(|line| line.contains("borrowed value"));
        assert!(first < third, "{drawn:?}");
        assert!(
            drawn[1].ends_with("cell:3:1"),
            "the primary place: {drawn:?}"
        );
    }

    #[test]
    fn a_variable_kept_with_the_never_type_gets_a_hint_to_write_its_type() {
        let generated = Diagnostic {
            level: "error".into(),
            code: Some("E0658".into()),
            message: "the `!` type is experimental".into(),
            found: Found::Generated {
                rendered:
                    "115 | evcxr_variable_store.put_variable::<!>(stringify!(winner), winner);"
                        .into(),
            },
        };
        let lines = traceback(&[generated], "let winner = tokio::select! { .. };");
        assert!(lines[0].contains("type of `winner`"), "{lines:?}");
        assert!(lines[0].contains("let winner: TheType"), "{lines:?}");
    }
}
