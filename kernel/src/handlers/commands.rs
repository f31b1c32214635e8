//! tandem's own commands, answered by the kernel without the engine: `:help`, and
//! `:timing [on|off]` (the footer under each cell). Every other `:` command is evcxr's.

use crate::engine::syntax;
use crate::timing;
use crate::wire::content::PagePayload;

/// What a cell's own commands came to, when they answer the cell by themselves.
#[derive(Debug, PartialEq)]
pub enum Answer {
    /// `:help`: the help text, shown as a page.
    Page(PagePayload),
    /// `:timing` alone: what the footer is now, said on stdout.
    Said(String),
    /// A command that cannot be carried out, and why.
    Refused(String),
}

/// Carries out the cell's own commands (`show_timing` is the kernel's footer setting)
/// and returns the code left for the engine, and the cell's answer when the commands
/// were all there was.
pub fn carry_out(code: &str, show_timing: &mut bool) -> (String, Option<Answer>) {
    if code.trim() == ":help" {
        return (
            String::new(),
            Some(Answer::Page(PagePayload::plain_text(HELP))),
        );
    }
    let (rest, toggles) = take_timing_commands(code);
    if toggles.is_empty() {
        return (rest, None);
    }
    for toggle in toggles {
        match toggle {
            Ok(wanted) => *show_timing = wanted.unwrap_or(!*show_timing),
            Err(why) => return (rest, Some(Answer::Refused(why))),
        }
    }
    if !rest.trim().is_empty() {
        return (rest, None);
    }
    let state = if *show_timing { "on" } else { "off" };
    (rest, Some(Answer::Said(format!("timing footer {state}\n"))))
}

/// Splits `:timing [on|off]` lines off the cell's leading command lines (where evcxr
/// looks for commands) and returns the rest of the code and what they asked for.
fn take_timing_commands(code: &str) -> (String, Vec<Result<Option<bool>, String>>) {
    let mut toggles = Vec::new();
    let mut kept = Vec::new();
    let mut in_commands = true;
    for line in code.lines() {
        in_commands = in_commands && syntax::is_command_region_line(line);
        if in_commands {
            let argument = line.trim_start_matches(' ').strip_prefix(":timing");
            if let Some(argument) = argument.filter(|a| a.is_empty() || a.starts_with(' ')) {
                toggles.push(timing::parse_toggle(argument));
                continue;
            }
        }
        kept.push(line);
    }
    (kept.join("\n"), toggles)
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
        let mut on = true;
        assert_eq!(
            carry_out(":timing off", &mut on),
            (
                String::new(),
                Some(Answer::Said("timing footer off\n".into()))
            )
        );
        assert!(!on);
        let (code, answer) = carry_out(":timing\n1 + 1", &mut on);
        assert_eq!((code.as_str(), answer, on), ("1 + 1", None, true));
        assert!(matches!(
            carry_out(":timing loud", &mut on).1,
            Some(Answer::Refused(_))
        ));
        assert!(matches!(
            carry_out(" :help ", &mut on).1,
            Some(Answer::Page(_))
        ));
        assert_eq!(
            carry_out("let a = 1;", &mut on),
            ("let a = 1;".into(), None)
        );
    }

    #[test]
    fn timing_lines_are_taken_only_among_leading_commands() {
        let (code, toggles) = take_timing_commands(":timing off\n:vars\nlet t = 1;\n:timing on");
        assert_eq!(code, ":vars\nlet t = 1;\n:timing on");
        assert_eq!(toggles, vec![Ok(Some(false))]);
        let (code, toggles) = take_timing_commands(":timing");
        assert_eq!((code.as_str(), toggles), ("", vec![Ok(None)]));
        let (_, toggles) = take_timing_commands(":timing loud");
        assert!(toggles[0].is_err());
        let (code, toggles) = take_timing_commands(":timings");
        assert_eq!((code.as_str(), toggles.len()), (":timings", 0));
    }
}
