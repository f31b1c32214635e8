//! `complete`, `inspect` and `is_complete`. Completion and hover come from evcxr's
//! rust-analyzer; when it has nothing (no `rust-src` on the machine, or the engine is
//! still starting) the session's own names and Rust's keywords still answer.

use super::{Handled, Reply, Request, ShellHandlers};
use crate::engine::syntax::{self, Completeness};
use crate::wire::content::{
    CompleteReply, CompleteRequest, InspectReply, InspectRequest, IsCompleteReply,
    IsCompleteRequest, IsCompleteStatus, ReplyStatus,
};
use serde_json::{Map, Value};

const KEYWORDS: &[&str] = &[
    "as", "async", "await", "break", "const", "continue", "crate", "dyn", "else", "enum", "extern",
    "false", "fn", "for", "if", "impl", "in", "let", "loop", "match", "mod", "move", "mut", "pub",
    "ref", "return", "self", "Self", "static", "struct", "super", "trait", "true", "type",
    "unsafe", "use", "where", "while",
];

/// Names every cell can use even when rust-analyzer cannot see the standard library.
const PRELUDE: &[&str] = &[
    "Option",
    "Some",
    "None",
    "Result",
    "Ok",
    "Err",
    "String",
    "Vec",
    "Box",
    "println!",
    "print!",
    "eprintln!",
    "format!",
    "vec!",
    "assert!",
    "assert_eq!",
    "std",
    "Clone",
    "Copy",
    "Default",
    "Debug",
    "Iterator",
    "ToString",
    "Into",
    "From",
];

pub fn complete(shell: &mut ShellHandlers, request: &mut Request) -> Handled {
    let wanted: CompleteRequest = request.content()?;
    let code = wanted.code;
    let cursor = wanted.cursor_pos.unwrap_or_else(|| code.chars().count());
    let byte_cursor = byte_offset(&code, cursor);
    let (prefix_start, prefix) = word_before(&code, byte_cursor);

    let mut matches = Vec::new();
    let mut span = (prefix_start, byte_cursor);
    if let Some(engine) = shell.ready_engine() {
        if let Ok((found, start, end)) = engine.completions(&code, byte_cursor) {
            if !found.is_empty() {
                matches = found;
                span = (start, end);
            }
        }
        if matches.is_empty() {
            let names = engine
                .variables()
                .into_iter()
                .map(|(name, _)| name)
                .chain(engine.items());
            matches = names.filter(|n| n.starts_with(prefix)).collect();
        }
    }
    if matches.is_empty() || span == (prefix_start, byte_cursor) {
        let words = identifiers(&code);
        let extra = KEYWORDS
            .iter()
            .chain(PRELUDE)
            .map(|s| s.to_string())
            .chain(words);
        for name in extra {
            if !prefix.is_empty() && name.starts_with(prefix) && name != prefix {
                matches.push(name);
            }
        }
    }
    let mut seen = std::collections::HashSet::new();
    matches.retain(|m| seen.insert(m.clone()));
    Ok(Some(Reply::new(&CompleteReply {
        status: ReplyStatus::Ok,
        matches,
        cursor_start: char_offset(&code, span.0),
        cursor_end: char_offset(&code, span.1),
        metadata: Map::new(),
    })))
}

pub fn inspect(shell: &mut ShellHandlers, request: &mut Request) -> Handled {
    let wanted: InspectRequest = request.content()?;
    let code = wanted.code;
    let cursor = wanted.cursor_pos.unwrap_or_else(|| code.chars().count());
    let byte_cursor = byte_offset(&code, cursor);
    let (start, end) = word_around(&code, byte_cursor);
    let word = &code[start..end];
    let mut data = Map::new();
    if !word.is_empty() {
        if let Some(engine) = shell.ready_engine() {
            if let Ok((plain, html)) = engine.hover(&code, end) {
                if !plain.is_empty() && plain != "No documentation found" {
                    data.insert("text/plain".into(), Value::String(plain));
                    data.insert("text/html".into(), Value::String(html));
                }
            }
            if data.is_empty() {
                if let Some((name, ty)) = engine.variables().into_iter().find(|(n, _)| n == word) {
                    data.insert(
                        "text/plain".into(),
                        Value::String(format!("let {name}: {ty}")),
                    );
                } else if engine.items().iter().any(|item| item == word) {
                    data.insert(
                        "text/plain".into(),
                        Value::String(format!("{word}: defined in this session")),
                    );
                }
            }
        }
        if data.is_empty() && KEYWORDS.contains(&word) {
            data.insert(
                "text/plain".into(),
                Value::String(format!("{word}: a Rust keyword")),
            );
        }
    }
    Ok(Some(Reply::new(&InspectReply {
        status: ReplyStatus::Ok,
        found: !data.is_empty(),
        data,
        metadata: Map::new(),
    })))
}

pub fn is_complete(_: &mut ShellHandlers, request: &mut Request) -> Handled {
    let wanted: IsCompleteRequest = request.content()?;
    let reply = match syntax::judge(&wanted.code) {
        Completeness::Complete => IsCompleteReply {
            status: IsCompleteStatus::Complete,
            indent: None,
        },
        Completeness::Incomplete { indent } => IsCompleteReply {
            status: IsCompleteStatus::Incomplete,
            indent: Some(indent),
        },
        Completeness::Invalid => IsCompleteReply {
            status: IsCompleteStatus::Invalid,
            indent: None,
        },
    };
    Ok(Some(Reply::new(&reply)))
}

/// Jupyter counts `cursor_pos` in code points; Rust strings index bytes.
fn byte_offset(code: &str, chars: usize) -> usize {
    code.char_indices()
        .nth(chars)
        .map(|(i, _)| i)
        .unwrap_or(code.len())
}

fn char_offset(code: &str, bytes: usize) -> usize {
    code[..bytes.min(code.len())].chars().count()
}

fn is_ident(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// The identifier ending at `end`: (its start byte, the text).
fn word_before(code: &str, end: usize) -> (usize, &str) {
    let start = code[..end]
        .char_indices()
        .rev()
        .take_while(|(_, c)| is_ident(*c))
        .last()
        .map(|(i, _)| i)
        .unwrap_or(end);
    (start, &code[start..end])
}

/// The identifier (or `a::b` path) around `at`.
fn word_around(code: &str, at: usize) -> (usize, usize) {
    let is_path = |c: char| is_ident(c) || c == ':';
    let start = code[..at]
        .char_indices()
        .rev()
        .take_while(|(_, c)| is_path(*c))
        .last()
        .map(|(i, _)| i)
        .unwrap_or(at);
    let end = code[at..]
        .char_indices()
        .find(|(_, c)| !is_ident(*c))
        .map(|(i, _)| at + i)
        .unwrap_or(code.len());
    let start = start + code[start..end].len() - code[start..end].trim_start_matches(':').len();
    (start, end)
}

fn identifiers(code: &str) -> Vec<String> {
    code.split(|c: char| !is_ident(c))
        .filter(|w| {
            w.chars()
                .next()
                .is_some_and(|c| c.is_alphabetic() || c == '_')
        })
        .map(str::to_owned)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn offsets_count_code_points() {
        let code = "let ñ = \"é\"; ñ";
        let chars = code.chars().count();
        assert_eq!(byte_offset(code, chars), code.len());
        assert_eq!(char_offset(code, code.len()), chars);
        assert_eq!(byte_offset(code, 5), "let ñ".len());
    }

    #[test]
    fn words_around_the_cursor() {
        let code = "let total = std::mem::swap";
        assert_eq!(word_before(code, 9), (4, "total"));
        let (s, e) = word_around(code, code.len());
        assert_eq!(&code[s..e], "std::mem::swap");
        let value: Value = json!(identifiers("let x_1 = 2; foo(x_1)"));
        assert_eq!(value, json!(["let", "x_1", "foo", "x_1"]));
    }
}
