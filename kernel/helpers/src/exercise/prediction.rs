//! Exercise 2's prediction: made before the tasks first run, and kept. A guess changed
//! after seeing the result is not a prediction, so the check reads the first one.

use std::sync::Mutex;

/// The first prediction given in this session, in seconds.
static KEPT: Mutex<Option<f64>> = Mutex::new(None);

/// Runs `tasks` once `prediction` (seconds, more than 0) is given, and keeps the first
/// prediction for the check, however often the cell runs again. Without a prediction
/// nothing runs: seeing the run first would spoil the guess.
pub fn run_after_predicting(prediction: f64, tasks: impl FnOnce()) {
    if !(prediction.is_finite() && prediction > 0.0) {
        println!(
            "nothing ran yet: first write your prediction in my_prediction (in seconds), then run this cell"
        );
        return;
    }
    let kept = {
        let mut kept = KEPT.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        *kept.get_or_insert(prediction)
    };
    if kept != prediction {
        println!(
            "your first prediction, {kept:.2} s, is the one the check reads: a guess changed after seeing the cell run is not a prediction (a kernel restart starts afresh)"
        );
    }
    tasks();
}

/// The prediction kept by [`run_after_predicting`], if one was given.
pub fn kept_prediction() -> Option<f64> {
    *KEPT.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}
