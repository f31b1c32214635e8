//! Exercises that check themselves: a check cell judges what the exercise cell measured and
//! prints a pass or a hint (the checks: `checks.rs`, `checks/tasks_and_limits.rs`).

mod checks;
mod prediction;

pub use checks::*;
pub use prediction::{kept_prediction, run_after_predicting};

use crate::spans;
use crate::timeline::Timeline;
use std::fmt::Display;

/// Set to `1` for checks that fail with an error (for a grader such as nbgrader); by
/// default a check only prints its verdict, so that "Run All" goes through.
pub const STRICT_VARIABLE: &str = "TANDEM_STRICT_CHECKS";

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

/// What a check found: passed or not, and the sentence that says why.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    pub passed: bool,
    pub said: String,
}

impl Verdict {
    pub fn pass(said: impl Display) -> Verdict {
        Verdict {
            passed: true,
            said: said.to_string(),
        }
    }

    pub fn not_yet(hint: impl Display) -> Verdict {
        Verdict {
            passed: false,
            said: hint.to_string(),
        }
    }

    /// Prints the verdict (`✅ PASS: …` or `💡 NOT YET: …`). With [`STRICT_VARIABLE`] set
    /// to `1`, a verdict that did not pass is also an error (the cell fails).
    pub fn show(&self) {
        check(self.passed, &self.said, &self.said);
        let strict = std::env::var(STRICT_VARIABLE).is_ok_and(|value| value == "1");
        if strict && !self.passed {
            panic!("the check did not pass ({STRICT_VARIABLE}=1)");
        }
    }
}

/// The usual first hint: the check found none of the exercise's tasks. A task the cell
/// spawned and never awaited may still be running when the cell ends; it is not counted.
pub const RUN_THE_EXERCISE_FIRST: &str = "none of the exercise's tasks finished while its cell ran: run the exercise cell just above, then this check. If you did, await what you spawn: a task nobody awaits may still be running when its cell ends";
