//! Judges whether a cell's text is a finished piece of Rust (`is_complete`): unclosed
//! brackets, strings or comments mean "keep typing", code rustc could never parse is
//! "invalid". Uses the same parser as evcxr's analysis.

use ra_ap_syntax::ast::{self, HasModuleItem};
use ra_ap_syntax::{AstNode, Edition, SourceFile};

/// The verdict for `is_complete_request`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Completeness {
    Complete,
    /// More input is expected; `indent` is what the next line should start with.
    Incomplete {
        indent: String,
    },
    Invalid,
}

/// The deepest nesting of brackets tandem hands to a parser. Parsers (evcxr's and
/// rust-analyzer's among them) recurse once per level, and a few thousand levels overflow a
/// thread's stack, which aborts the whole process. Real code stays far below this.
pub const MAX_NESTING: usize = 500;

/// Code nested deeper than [`MAX_NESTING`], refused before any parser sees it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "this code nests brackets more than {MAX_NESTING} levels deep; tandem does not parse \
     it, so that it cannot overflow the kernel's stack"
)]
pub struct TooDeep;

/// Refuses code nested too deep for a parser (see [`MAX_NESTING`]).
pub fn check_nesting(code: &str) -> Result<(), TooDeep> {
    match scan_delimiters(code) {
        Scan::TooDeep => Err(TooDeep),
        _ => Ok(()),
    }
}

pub fn judge(code: &str) -> Completeness {
    let scan = scan_delimiters(code);
    match scan {
        Scan::Mismatched | Scan::TooDeep => return Completeness::Invalid,
        Scan::Open { depth } => {
            return Completeness::Incomplete {
                indent: "    ".repeat(depth),
            }
        }
        Scan::Balanced => {}
    }
    // evcxr's `:commands` are whole lines of their own; the rest must parse as Rust.
    let rust = without_commands(code);
    if rust.trim().is_empty() {
        return Completeness::Complete;
    }
    let wrapped = format!("fn __tandem_cell() {{\n{rust}\n}}");
    let body_end = wrapped.len() - 2; // the "\n}" we added
    let errors = SourceFile::parse(&wrapped, Edition::Edition2021).errors();
    let Some(first) = errors.iter().min_by_key(|e| e.range().start()) else {
        return Completeness::Complete;
    };
    let at = usize::from(first.range().start());
    let message = first.to_string();
    if at + 1 >= body_end || wrapped[at..body_end].trim().is_empty() {
        // The code stops where more was expected (`1 +`, `let x =`): keep typing.
        // A missing final semicolon is left for the compiler to explain.
        if message.contains("SEMICOLON") {
            return Completeness::Complete;
        }
        return Completeness::Incomplete {
            indent: String::new(),
        };
    }
    Completeness::Invalid
}

/// Whether the cell ends in an expression without a semicolon, i.e. has a value to show
/// (evcxr's rule for displaying the final expression).
pub fn ends_in_expression(code: &str) -> bool {
    let rust = without_commands(code);
    let wrapped = format!("fn __tandem_cell() {{\n{rust}\n}}");
    let file = SourceFile::parse(&wrapped, Edition::Edition2021).tree();
    let tail = file.items().find_map(|item| match item {
        ast::Item::Fn(f) => f.body()?.stmt_list()?.tail_expr(),
        _ => None,
    });
    tail.is_some_and(|expr| !expr.syntax().text().is_empty())
}

/// Whether `line` may stand in a cell's leading command region: evcxr takes `:command`
/// and `!shell` lines (and blank or `//` lines among them) only before the first line of
/// Rust.
pub fn is_command_region_line(line: &str) -> bool {
    line.trim_start_matches(' ').starts_with(':')
        || line.starts_with('!')
        || line.starts_with("//")
        || line.trim().is_empty()
}

/// The Rust part of a cell: what follows its leading command region.
fn without_commands(code: &str) -> String {
    code.lines()
        .skip_while(|line| is_command_region_line(line))
        .collect::<Vec<_>>()
        .join("\n")
}

enum Scan {
    Balanced,
    Open {
        depth: usize,
    },
    Mismatched,
    /// Deeper than [`MAX_NESTING`]: the scan stopped there.
    TooDeep,
}

/// Walks the text tracking (), [], {} while skipping strings, chars and comments.
fn scan_delimiters(code: &str) -> Scan {
    let chars: Vec<char> = code.chars().collect();
    let mut stack: Vec<char> = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        match c {
            '/' if next == Some('/') => {
                while i < chars.len() && chars[i] != '\n' {
                    i += 1;
                }
            }
            '/' if next == Some('*') => {
                let mut depth = 1;
                i += 2;
                while depth > 0 {
                    match (chars.get(i), chars.get(i + 1)) {
                        (None, _) => return Scan::Open { depth: stack.len() },
                        (Some('/'), Some('*')) => {
                            depth += 1;
                            i += 1;
                        }
                        (Some('*'), Some('/')) => {
                            depth -= 1;
                            i += 1;
                        }
                        _ => {}
                    }
                    i += 1;
                }
                continue;
            }
            'r' | 'b' | 'c' if starts_raw_string(&chars, i) => {
                let mut j = i + 1;
                if chars[j] == 'r' {
                    j += 1;
                }
                let hashes = chars[j..].iter().take_while(|&&h| h == '#').count();
                j += hashes + 1; // past the opening quote
                loop {
                    match chars.get(j) {
                        None => return Scan::Open { depth: stack.len() },
                        Some('"')
                            if chars[j + 1..].iter().take_while(|&&h| h == '#').count()
                                >= hashes =>
                        {
                            i = j + hashes;
                            break;
                        }
                        _ => j += 1,
                    }
                }
            }
            '"' => {
                i += 1;
                loop {
                    match chars.get(i) {
                        None => return Scan::Open { depth: stack.len() },
                        Some('\\') => i += 2,
                        Some('"') => break,
                        _ => i += 1,
                    }
                }
            }
            '\'' => {
                // A char literal ('a', '\n', '\u{1F600}') or a lifetime/label ('a, 'static).
                if next == Some('\\') {
                    i += 3; // the quote, the backslash and the escaped character
                    while i < chars.len() && chars[i] != '\'' {
                        i += 1;
                    }
                } else if chars.get(i + 2) == Some(&'\'') {
                    i += 2;
                }
            }
            '(' | '[' | '{' if stack.len() == MAX_NESTING => return Scan::TooDeep,
            '(' | '[' | '{' => stack.push(c),
            ')' | ']' | '}' => {
                let opener = match c {
                    ')' => '(',
                    ']' => '[',
                    _ => '{',
                };
                if stack.pop() != Some(opener) {
                    return Scan::Mismatched;
                }
            }
            _ => {}
        }
        i += 1;
    }
    if stack.is_empty() {
        Scan::Balanced
    } else {
        Scan::Open { depth: stack.len() }
    }
}

/// `r"`, `r#"`, `br"`, `cr#"` ... at `i`, not in the middle of an identifier.
fn starts_raw_string(chars: &[char], i: usize) -> bool {
    if i > 0 && (chars[i - 1].is_alphanumeric() || chars[i - 1] == '_') {
        return false;
    }
    let mut j = i;
    if chars[j] == 'b' || chars[j] == 'c' {
        j += 1;
    }
    if chars.get(j) != Some(&'r') {
        return false;
    }
    j += 1;
    while chars.get(j) == Some(&'#') {
        j += 1;
    }
    chars.get(j) == Some(&'"')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn code_nested_too_deep_is_refused_before_any_parser() {
        let deep = "(".repeat(100_000) + &")".repeat(100_000);
        assert_eq!(check_nesting(&deep), Err(TooDeep));
        assert_eq!(judge(&deep), Completeness::Invalid);
        assert_eq!(judge(&"[".repeat(3_000)), Completeness::Invalid);
        let fine = "(".repeat(MAX_NESTING) + "1" + &")".repeat(MAX_NESTING);
        assert_eq!(check_nesting(&fine), Ok(()));
        assert_eq!(judge(&fine), Completeness::Complete);
        // Brackets in strings and comments do not count.
        let quoted = format!(
            "let s = \"{}\"; // {}",
            "(".repeat(2_000),
            "{".repeat(2_000)
        );
        assert_eq!(check_nesting(&quoted), Ok(()));
    }

    fn incomplete(indent: &str) -> Completeness {
        Completeness::Incomplete {
            indent: indent.to_owned(),
        }
    }

    #[test]
    fn finished_code_is_complete() {
        for code in [
            "1 + 1",
            "let x = 5;",
            "fn add(a: i32, b: i32) -> i32 { a + b }",
            "println!(\"{}\", \"}\");",
            "let c = '{';",
            "fn f<'a>(x: &'a str) -> &'a str { x }",
            "let s = r#\"un \" closed { \"#;",
            "// a comment with {\nlet y = 2;",
            ":dep serde",
            "",
            "struct P { x: i32 }\nlet p = P { x: 1 };\np.x",
            "let quotes = ['\\'', '\"', '{'];",
            "let b = b'{';",
            ":dep regex\n!ls\nlet x = 1;",
            "let path = 1;\n::std::mem::drop(path);",
        ] {
            assert_eq!(judge(code), Completeness::Complete, "{code:?}");
        }
    }

    #[test]
    fn open_brackets_strings_and_comments_are_incomplete() {
        assert_eq!(judge("fn main() {"), incomplete("    "));
        assert_eq!(judge("if true {\n    foo(["), incomplete("            "));
        assert_eq!(judge("let s = \"abc"), incomplete(""));
        assert_eq!(judge("/* note"), incomplete(""));
        assert_eq!(judge("let x = 1 +"), incomplete(""));
    }

    #[test]
    fn final_expressions_are_values() {
        assert!(ends_in_expression("1 + 1"));
        assert!(ends_in_expression("let x = 2;\nx * 3"));
        assert!(ends_in_expression("for i in 0..2 { }"));
        assert!(!ends_in_expression("println!(\"hi\");"));
        assert!(!ends_in_expression("let x = 5;"));
        assert!(!ends_in_expression("fn f() -> i32 { 1 }"));
        assert!(!ends_in_expression(":vars"));
        assert!(ends_in_expression(":opt 1\n// comment\n2 + 2"));
        assert!(ends_in_expression(
            "let v = 1;\n::std::convert::identity(v)"
        ));
    }

    #[test]
    fn impossible_code_is_invalid() {
        assert_eq!(judge("fn fn"), Completeness::Invalid);
        assert_eq!(judge("let x = (1 + 2];"), Completeness::Invalid);
        assert_eq!(judge("}"), Completeness::Invalid);
        assert_eq!(judge("let = 5; foo()"), Completeness::Invalid);
    }
}
