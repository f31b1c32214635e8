//! tandem's own commands, answered by the kernel without the engine: `:help`, `:timing` and
//! `:timeline [on|off]` (the footer, the event-loop picture), `:trace save FILE`. Every
//! other `:` command is evcxr's.

use crate::engine::{syntax, RuntimeTrace};
use crate::presentation;
use crate::wire::content::PagePayload;

/// The kernel's own settings, which its commands change.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Settings {
    /// `:timing on|off`: the footer under each cell.
    pub footer: bool,
    /// `:timeline on|off`: record what tokio's runtime does, and draw it under the cell.
    pub timeline: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            footer: true,
            timeline: true,
        }
    }
}

/// What a cell's own commands came to, when they answer the cell by themselves.
#[derive(Debug, PartialEq)]
pub enum Answer {
    /// `:help`: the help text, shown as a page.
    Page(PagePayload),
    /// `:timing` or `:timeline` alone: what the setting is now, said on stdout.
    Said(String),
    /// A command that cannot be carried out, and why.
    Refused(String),
}

/// A toggle command: its name, the setting it changes, and how it says what it is.
type ToggleCommand = (&'static str, fn(&mut Settings) -> &mut bool, &'static str);

/// The settings the kernel's toggle commands change, by command name.
const TOGGLES: [ToggleCommand; 2] = [
    (":timing", |settings| &mut settings.footer, "timing footer"),
    (
        ":timeline",
        |settings| &mut settings.timeline,
        "event-loop timeline",
    ),
];

/// Carries out the cell's own commands (changing `settings`; `last_trace` is the last cell
/// that drew an event-loop picture, with its count) and returns the code left for the
/// engine, and the cell's answer when the commands were all there was.
pub fn carry_out(
    code: &str,
    settings: &mut Settings,
    last_trace: Option<&(u64, RuntimeTrace)>,
) -> (String, Option<Answer>) {
    if code.trim() == ":help" {
        return (
            String::new(),
            Some(Answer::Page(PagePayload::plain_text(HELP))),
        );
    }
    if let Some(argument) = code.trim().strip_prefix(":trace") {
        return (String::new(), Some(trace_command(argument, last_trace)));
    }
    let (rest, toggles) = take_toggle_commands(code);
    if toggles.is_empty() {
        return (rest, None);
    }
    let mut said = String::new();
    for (which, toggle) in toggles {
        let (_, setting, described) = TOGGLES[which];
        let setting = setting(settings);
        match toggle {
            Ok(wanted) => *setting = wanted.unwrap_or(!*setting),
            Err(why) => return (rest, Some(Answer::Refused(why))),
        }
        let state = if *setting { "on" } else { "off" };
        said.push_str(&format!("{described} {state}\n"));
    }
    if !rest.trim().is_empty() {
        return (rest, None);
    }
    (rest, Some(Answer::Said(said)))
}

/// `:trace save FILE`, the whole cell.
fn trace_command(argument: &str, last_trace: Option<&(u64, RuntimeTrace)>) -> Answer {
    match argument.trim().strip_prefix("save ") {
        Some(path) if !path.trim().is_empty() && !path.contains('\n') => {
            save_trace(path.trim(), last_trace)
        }
        _ => Answer::Refused(
            "usage: `:trace save FILE` (alone in its cell): the last event-loop picture's \
             events as a Chrome trace (open it in https://ui.perfetto.dev)"
                .to_owned(),
        ),
    }
}

/// Writes the trace-event JSON of the last cell that drew an event-loop picture to `path`
/// (relative to the kernel's directory, the notebook's); says where, or why not.
fn save_trace(path: &str, last: Option<&(u64, RuntimeTrace)>) -> Answer {
    let Some((count, trace)) = last else {
        return Answer::Refused(
            "no cell has drawn an event-loop picture yet: run one, then `:trace save FILE`"
                .to_owned(),
        );
    };
    let json = presentation::chrome_trace(&[(format!("cell [{count}]"), trace)]);
    match std::fs::write(path, json) {
        Ok(()) => Answer::Said(format!(
            "saved cell [{count}]'s event loop to {path}: open it in https://ui.perfetto.dev \
             or chrome://tracing\n"
        )),
        Err(error) => Answer::Refused(format!("cannot write {path}: {error}")),
    }
}

/// A toggle command found: its index in [`TOGGLES`] and what it asked for.
type Toggle = (usize, Result<Option<bool>, String>);

/// Splits `:timing [on|off]` and `:timeline [on|off]` lines off the cell's leading command
/// lines (where evcxr looks for commands) and returns the rest of the code and what they
/// asked for.
fn take_toggle_commands(code: &str) -> (String, Vec<Toggle>) {
    let mut toggles = Vec::new();
    let mut kept = Vec::new();
    let mut in_commands = true;
    for line in code.lines() {
        in_commands = in_commands && syntax::is_command_region_line(line);
        if in_commands {
            let found = TOGGLES.iter().enumerate().find_map(|(which, (name, ..))| {
                let argument = (line.trim_start_matches(' ').strip_prefix(name))
                    .filter(|a| a.is_empty() || a.starts_with(' '))?;
                Some((which, parse_toggle(name, argument)))
            });
            if let Some(toggle) = found {
                toggles.push(toggle);
                continue;
            }
        }
        kept.push(line);
    }
    (kept.join("\n"), toggles)
}

/// What a toggle command's argument asks for: `Some(true)` on, `Some(false)` off, `None` toggle.
pub fn parse_toggle(command: &str, argument: &str) -> Result<Option<bool>, String> {
    match argument.trim() {
        "" => Ok(None),
        "on" => Ok(Some(true)),
        "off" => Ok(Some(false)),
        other => Err(format!("{command} takes `on` or `off`, not `{other}`")),
    }
}

const HELP: &str = "\
tandem: Rust cells compiled and run by the evcxr engine.

Ready in every cell, no :dep needed: tokio (full), futures, and the helpers:
  blocking_task(name, secs)   async_task(name, secs)   gather(futures)
  count_primes(name, limit)   timed(|| ..)   timed_async(fut)   spawn   spawn_blocking
  run_on_one_thread(fut)      run_on_threads(n, fut)   stop_if_interrupted()
  LocalServer::start(delay)   http_get(url)   http_get_async(url)
  write_file / read_file (and _async)   Database::create(name, rows)   .query / .query_async
  resources::measure(|| ..)   display::markdown(text)   exercise::previous_run() / check(..)
  display::Handle::new() then .markdown(..) again and again: one output, changed in place
  (.clear() empties it)   display::input(prompt): a line of text typed in the notebook
Top-level .await works in any cell. A cell whose helper tasks ran ends with a timeline.

Kernel commands (a line of their own in a cell):
  :help              this text
  :vars              the session's variables and their types
  :dep NAME = \"1\"    add a crate from crates.io (its build shows progress)
  :opt [0|1|2]       optimisation level of cells (default 0; dependencies are built at 2)
  :clear             forget every variable and item, keep compiled crates
  :restart           restart the engine's process (variables are lost)
  :explain           explain the last compile error
  :timing [on|off]   the footer under each cell: compile time and run time
  :timeline [on|off] record what tokio's runtime does and draw it under each cell
  :trace save FILE   the last event-loop picture's events as a Chrome trace (Perfetto)

Output printed by a cell shows up while the cell runs. A cell's last expression
(without a semicolon) is its value. Interrupting a cell that waits in a helper stops
it within milliseconds and keeps the session's variables; other code is stopped after
0.2 s by restarting the engine's process, and the cell says what was lost.
";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_commands_answer_alone_or_leave_the_code_to_the_engine() {
        let mut settings = Settings::default();
        assert_eq!(
            carry_out(":timing off", &mut settings, None),
            (
                String::new(),
                Some(Answer::Said("timing footer off\n".into()))
            )
        );
        assert!(!settings.footer && settings.timeline);
        let (code, answer) = carry_out(":timing\n1 + 1", &mut settings, None);
        assert_eq!((code.as_str(), answer), ("1 + 1", None));
        assert!(settings.footer);
        assert_eq!(
            carry_out(":timeline off", &mut settings, None).1,
            Some(Answer::Said("event-loop timeline off\n".into()))
        );
        assert!(settings.footer && !settings.timeline);
        assert!(matches!(
            carry_out(":timing loud", &mut settings, None).1,
            Some(Answer::Refused(why)) if why.contains(":timing")
        ));
        assert!(matches!(
            carry_out(":timeline loud", &mut settings, None).1,
            Some(Answer::Refused(why)) if why.contains(":timeline")
        ));
        assert!(matches!(
            carry_out(" :help ", &mut settings, None).1,
            Some(Answer::Page(_))
        ));
        assert_eq!(
            carry_out("let a = 1;", &mut settings, None),
            ("let a = 1;".into(), None)
        );
        assert!(matches!(
            carry_out(" :trace save run.json\n", &mut settings, None).1,
            Some(Answer::Refused(why)) if why.contains("no cell has drawn")
        ));
        assert!(matches!(
            carry_out(":trace", &mut settings, None).1,
            Some(Answer::Refused(usage)) if usage.contains(":trace save FILE")
        ));
    }

    #[test]
    fn a_trace_is_saved_only_once_a_cell_drew_one() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(format!(
            "../target/test-scratch/trace-{}",
            std::process::id()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("cell.json");
        let path = path.to_str().unwrap();
        assert!(matches!(save_trace(path, None), Answer::Refused(_)));
        let saved = save_trace(path, Some(&(4, RuntimeTrace::default())));
        assert!(matches!(saved, Answer::Said(said) if said.contains("cell [4]")));
        let written: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        assert_eq!(written["traceEvents"][0]["args"]["name"], "cell [4]");
        let nowhere = dir.join("no such dir").join("x.json");
        let refused = save_trace(
            nowhere.to_str().unwrap(),
            Some(&(4, RuntimeTrace::default())),
        );
        assert!(matches!(refused, Answer::Refused(why) if why.contains("cannot write")));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn toggle_lines_are_taken_only_among_leading_commands() {
        let (code, toggles) =
            take_toggle_commands(":timing off\n:vars\n:timeline\nlet t = 1;\n:timing on");
        assert_eq!(code, ":vars\nlet t = 1;\n:timing on");
        assert_eq!(toggles, vec![(0, Ok(Some(false))), (1, Ok(None))]);
        let (code, toggles) = take_toggle_commands(":timing");
        assert_eq!((code.as_str(), toggles), ("", vec![(0, Ok(None))]));
        let (_, toggles) = take_toggle_commands(":timing loud");
        assert!(toggles[0].1.is_err());
        let (code, toggles) = take_toggle_commands(":timings");
        assert_eq!((code.as_str(), toggles.len()), (":timings", 0));
    }

    #[test]
    fn toggle_arguments() {
        assert_eq!(parse_toggle(":timing", " off "), Ok(Some(false)));
        assert_eq!(parse_toggle(":timing", "on"), Ok(Some(true)));
        assert_eq!(parse_toggle(":timing", ""), Ok(None));
        assert!(parse_toggle(":timing", "sometimes").is_err());
    }
}
