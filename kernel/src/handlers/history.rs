//! The session's input history (and text outputs), served by `history_request` with the
//! `tail`, `range` and `search` access types.

use super::{Handled, Reply, Request};
use crate::wire::content::{HistoryEntry, HistoryInput, HistoryReply, HistoryRequest, ReplyStatus};

/// History lives for the kernel process; its session number is always 1.
const SESSION: u32 = 1;

#[derive(Default)]
pub struct History {
    entries: Vec<Entry>,
}

struct Entry {
    line: u64,
    input: String,
    output: Option<String>,
}

impl History {
    pub fn record(&mut self, line: u64, input: &str, output: Option<String>) {
        self.entries.push(Entry {
            line,
            input: input.to_owned(),
            output,
        });
    }

    pub fn handle(&mut self, request: &mut Request) -> Handled {
        let wanted: HistoryRequest = request.content()?;
        let selected: Vec<&Entry> = match wanted.hist_access_type.as_str() {
            "range" => self.range(&wanted),
            "search" => self.search(&wanted),
            _ => self.tail(wanted.n.unwrap_or(10)),
        };
        let history = selected
            .into_iter()
            .map(|entry| {
                let input = if wanted.output {
                    HistoryInput::WithOutput(entry.input.clone(), entry.output.clone())
                } else {
                    HistoryInput::Input(entry.input.clone())
                };
                HistoryEntry(SESSION, entry.line, input)
            })
            .collect();
        Ok(Some(Reply::new(&HistoryReply {
            status: ReplyStatus::Ok,
            history,
        })))
    }

    fn tail(&self, n: usize) -> Vec<&Entry> {
        let skip = self.entries.len().saturating_sub(n);
        self.entries.iter().skip(skip).collect()
    }

    fn range(&self, wanted: &HistoryRequest) -> Vec<&Entry> {
        if wanted
            .session
            .is_some_and(|s| s != i64::from(SESSION) && s != 0)
        {
            return Vec::new();
        }
        let start = wanted.start.unwrap_or(0);
        let stop = wanted.stop.unwrap_or(i64::MAX);
        self.entries
            .iter()
            .filter(|e| (e.line as i64) >= start && (e.line as i64) < stop)
            .collect()
    }

    fn search(&self, wanted: &HistoryRequest) -> Vec<&Entry> {
        let pattern = wanted.pattern.as_deref().unwrap_or("*");
        let mut found: Vec<&Entry> = self
            .entries
            .iter()
            .filter(|e| glob_match(pattern, &e.input))
            .collect();
        if wanted.unique {
            // Keep the latest occurrence of each input, in history order.
            let mut seen = std::collections::HashSet::new();
            found = found
                .into_iter()
                .rev()
                .filter(|e| seen.insert(e.input.as_str()))
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect();
        }
        if let Some(n) = wanted.n {
            let skip = found.len().saturating_sub(n);
            found.drain(..skip);
        }
        found
    }
}

/// Shell-style glob with `*` and `?`, matching the whole text (as IPython's history does).
fn glob_match(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if let Some((star_p, star_t)) = star {
            pi = star_p + 1;
            ti = star_t + 1;
            star = Some((star_p, star_t + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob_matches_like_fnmatch() {
        assert!(glob_match("6*", "6 * 7"));
        assert!(glob_match("6 *", "6 * 7"));
        assert!(glob_match("*7", "6 * 7"));
        assert!(glob_match("*", ""));
        assert!(glob_match("a?c", "abc"));
        assert!(!glob_match("a?c", "abbc"));
        assert!(glob_match("*x*", "let x = 1;"));
        assert!(!glob_match("x", "xx"));
    }

    #[test]
    fn search_unique_and_n() {
        let mut history = History::default();
        for (line, input) in ["1", "2", "1", "3", "1"].iter().enumerate() {
            history.record(line as u64 + 1, input, None);
        }
        let request = |unique, n| HistoryRequest {
            output: false,
            hist_access_type: "search".into(),
            session: None,
            start: None,
            stop: None,
            n,
            pattern: Some("1".into()),
            unique,
        };
        assert_eq!(history.search(&request(false, None)).len(), 3);
        let unique = history.search(&request(true, None));
        assert_eq!(unique.len(), 1);
        assert_eq!(unique[0].line, 5);
        assert_eq!(history.search(&request(false, Some(2))).len(), 2);
        assert_eq!(history.tail(2).len(), 2);
    }
}
