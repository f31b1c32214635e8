//! Where in the learner's cell a task was spawned, and what it spawned: a spawn's place
//! (`file:line:column` in the code evcxr generated for the cell) read back in that file,
//! and its line found among the cell's own lines (`spawn(fetch("a", 2))` → cell:4).

use super::trace::{RuntimeTrace, Site};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// A generated source file larger than this is not read.
const MOST_BYTES: u64 = 8 * 1024 * 1024;
/// A spawned expression's text is cut to about this many characters.
const MOST_CHARS: usize = 60;

/// Reads spawn places of one cell; each file and place is read once.
pub struct Sites<'a> {
    /// The cell's code as the learner wrote it.
    cell: &'a str,
    /// Only files under this directory (the engine's generated code) are read.
    build_dir: &'a Path,
    files: HashMap<PathBuf, Option<Vec<String>>>,
    found: HashMap<String, Site>,
}

impl<'a> Sites<'a> {
    pub fn new(cell: &'a str, build_dir: &'a Path) -> Sites<'a> {
        Sites {
            cell,
            build_dir,
            files: HashMap::new(),
            found: HashMap::new(),
        }
    }

    /// Fills in each task's site and each branch's cell line.
    pub fn locate(&mut self, trace: &mut RuntimeTrace) {
        for task in &mut trace.tasks {
            if let Some(place) = &task.spawned_at {
                task.site = self.site(place);
            }
            for branch in &mut task.branches {
                if let Some(place) = &branch.place {
                    branch.cell_line = self.site(place).cell_line;
                }
            }
        }
    }

    /// What the code at `place` spawned, and its line in the cell (each `None` when the
    /// place is not in this cell's generated code, or does not read as a call).
    pub fn site(&mut self, place: &str) -> Site {
        if let Some(site) = self.found.get(place) {
            return site.clone();
        }
        let site = self.read_site(place).unwrap_or_default();
        self.found.insert(place.to_owned(), site.clone());
        site
    }

    fn read_site(&mut self, place: &str) -> Option<Site> {
        let mut parts = place.rsplitn(3, ':');
        let column: usize = parts.next()?.parse().ok()?;
        let line: usize = parts.next()?.parse().ok()?;
        // cargo hands rustc the crate's own files relative to it.
        let file = self.build_dir.join(parts.next()?);
        let climbs = (file.components()).any(|part| part == std::path::Component::ParentDir);
        if climbs || !file.starts_with(self.build_dir) {
            return None;
        }
        // And no link leads out of it.
        let real_dir = std::fs::canonicalize(self.build_dir).ok()?;
        if !std::fs::canonicalize(&file).ok()?.starts_with(real_dir) {
            return None;
        }
        let lines = self
            .files
            .entry(file.clone())
            .or_insert_with(|| read_lines(&file))
            .as_ref()?;
        let text = lines.get(line.checked_sub(1)?)?;
        let before = lines[..line - 1]
            .iter()
            .filter(|other| other.trim() == text.trim())
            .count();
        Some(Site {
            what: spawned_expression(text, column),
            cell_line: cell_line(self.cell, text, before),
        })
    }
}

fn read_lines(file: &Path) -> Option<Vec<String>> {
    let metadata = std::fs::metadata(file).ok()?;
    if !metadata.is_file() || metadata.len() > MOST_BYTES {
        return None;
    }
    let text = std::fs::read_to_string(file).ok()?;
    Some(text.lines().map(str::to_owned).collect())
}

/// The argument of the call that starts at `column` of `line`: `fetch("a", 2)` of
/// `let a = tokio::spawn(fetch("a", 2));`. rustc counts a column in display width, 1-based
/// (a tab is 4, a wide character 2). An argument that goes on past the line is cut with `…`.
fn spawned_expression(line: &str, column: usize) -> Option<String> {
    let mut width = 0;
    let at = line.char_indices().find_map(|(at, c)| {
        let here = width;
        width += match c {
            '\t' => 4,
            c if is_wide(c) => 2,
            _ => 1,
        };
        (here + 1 >= column).then_some(at)
    })?;
    let call = &line[at..];
    let open = call.find('(')?;
    let callee = &call[..open];
    if callee.is_empty()
        || !callee
            .chars()
            .all(|c| c.is_alphanumeric() || "_:<>".contains(c))
    {
        return None;
    }
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    let mut argument = String::new();
    for c in call[open + 1..].chars() {
        if in_string {
            in_string = c != '"' || escaped;
            escaped = c == '\\' && !escaped;
        } else {
            match c {
                '"' => in_string = true,
                '(' | '[' | '{' => depth += 1,
                ')' | ']' | '}' if depth == 0 => return Some(cut(argument.trim())),
                ')' | ']' | '}' => depth -= 1,
                _ => {}
            }
        }
        argument.push(c);
    }
    // The argument goes on past this line (`spawn(async move {`).
    let argument = argument.trim();
    (!argument.is_empty()).then(|| format!("{}…", cut(argument).trim_end_matches('…')))
}

/// Characters that take two columns (East Asian wide ones and emoji), roughly as rustc's
/// `unicode-width` counts them.
fn is_wide(c: char) -> bool {
    matches!(u32::from(c), 0x1100..=0x115F | 0x2E80..=0xA4CF | 0xAC00..=0xD7A3 | 0xF900..=0xFAFF
        | 0xFE30..=0xFE4F | 0xFF00..=0xFF60 | 0xFFE0..=0xFFE6 | 0x1F300..=0x1F64F
        | 0x1F900..=0x1F9FF | 0x20000..=0x3FFFD)
}

fn cut(text: &str) -> String {
    match text.char_indices().nth(MOST_CHARS) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_owned(),
    }
}

/// The cell line (1-based) of the generated `line`, the one after `before` earlier
/// generated lines with the same text: the cell's line with that text, or else the one
/// that contains it (evcxr puts statements on lines of their own).
fn cell_line(cell: &str, line: &str, before: usize) -> Option<usize> {
    let wanted = line.trim();
    if wanted.is_empty() {
        return None;
    }
    let lines: Vec<&str> = cell.lines().collect();
    let equal: Vec<usize> = (0..lines.len())
        .filter(|&at| lines[at].trim() == wanted)
        .collect();
    let candidates = if equal.is_empty() {
        (0..lines.len())
            .filter(|&at| lines[at].contains(wanted))
            .collect()
    } else {
        equal
    };
    let at = candidates.get(before).or(candidates.last())?;
    Some(at + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_spawn_call_gives_its_argument_cut_short_and_a_long_one_is_marked() {
        let line = r#"    let a = tokio::spawn(fetch("a (", 2)); // done"#;
        let column = line.find("tokio").unwrap() + 1;
        assert_eq!(
            spawned_expression(line, column).as_deref(),
            Some(r#"fetch("a (", 2)"#)
        );
        let open = "    let h = spawn(async move {";
        assert_eq!(
            spawned_expression(open, 13).as_deref(),
            Some("async move {…")
        );
        assert_eq!(spawned_expression("x + (1)", 1), None, "no call there");
        // rustc's columns: a tab is 4 wide, a wide character 2.
        assert_eq!(
            spawned_expression("\t\tspawn(f(x))", 9).as_deref(),
            Some("f(x)")
        );
        assert_eq!(
            spawned_expression("/*日本*/ spawn(g())", 10).as_deref(),
            Some("g()")
        );
        let long = format!("spawn(work({}))", "1, ".repeat(40));
        assert!(spawned_expression(&long, 1).unwrap().ends_with('…'));
    }

    #[test]
    fn the_cell_line_is_found_by_its_text_and_repeats_by_their_order() {
        let cell = "let a = spawn(job(1));\nlet b = spawn(job(2));\nlet a = spawn(job(1));";
        assert_eq!(cell_line(cell, "    let a = spawn(job(1));", 0), Some(1));
        assert_eq!(cell_line(cell, "    let a = spawn(job(1));", 1), Some(3));
        assert_eq!(cell_line(cell, "spawn(job(2));", 0), Some(2));
        assert_eq!(cell_line(cell, "fn elsewhere() {}", 0), None);
    }

    #[test]
    fn places_outside_the_build_directory_are_not_read() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(format!(
            "../target/test-scratch/sites-{}",
            std::process::id()
        ));
        std::fs::create_dir_all(dir.join("src")).unwrap();
        // Under the checkout (not a temporary directory others can write), without `..`.
        let dir = std::fs::canonicalize(dir).unwrap();
        let file = dir.join("src/lib.rs");
        std::fs::write(
            &file,
            "fn main() {\n    let t = tokio::spawn(fetch(1));\n}\n",
        )
        .unwrap();
        let cell = "let t = tokio::spawn(fetch(1));";
        let place = format!("{}:2:13", file.display());
        let inside = Sites::new(cell, &dir).site(&place);
        assert_eq!(inside.what.as_deref(), Some("fetch(1)"));
        assert_eq!(inside.cell_line, Some(1));
        let elsewhere = Sites::new(cell, Path::new("/nonexistent")).site(&place);
        assert_eq!(elsewhere, Site::default());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
