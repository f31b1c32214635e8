//! Exercises that check themselves: a check cell looks at what the exercise cell just
//! measured (its tasks' spans) and prints a clear pass, or a hint for the next try.

use crate::spans;
use crate::timeline::Timeline;
use std::fmt::Display;

/// The tasks of the last earlier cell that ran any: the exercise cell, when the check cell
/// runs right after it.
pub fn previous_run() -> Timeline {
    Timeline::new(spans::previous_cell())
}

/// Prints `✅ PASS: …` when `passed`, else `💡 NOT YET: …` with the hint. Never panics, so
/// "Run All" goes through a notebook whose exercises are not done yet.
///
/// ```
/// tandem_helpers::exercise::check(1 + 1 == 2, "arithmetic works", "check your sums");
/// ```
pub fn check(passed: bool, well_done: impl Display, hint: impl Display) {
    if passed {
        println!("✅ PASS: {well_done}");
    } else {
        println!("💡 NOT YET: {hint}");
    }
}

/// The usual first hint: the check found no tasks to look at.
pub const RUN_THE_EXERCISE_FIRST: &str =
    "no tasks were recorded yet: run the exercise cell just above, then this check";
