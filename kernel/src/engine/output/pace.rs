//! Keeps one cell's flood of text from taking a shared machine: past a burst, printed text
//! goes on at most `TANDEM_OUTPUT_RATE` bytes a second, and the cell waits to print.
//!
//! Nothing is dropped by tandem, and the default pace stays under the rate past which
//! Jupyter's server drops stream output (1 MB a second over 3 s, counting whole messages).
//! Waiting to print is what a program writing to a slow terminal does; the forwarder
//! simply takes no more lines, evcxr's bounded channels fill, and the cell's `println!`
//! waits, costing no CPU, so the kernel, the Jupyter server and the browser each handle
//! a bounded stream instead of as much as one core can print.

use std::time::{Duration, Instant};

/// The default rate, in bytes of text a second: far more than anyone reads. With the burst
/// and the messages' own bytes (JSON doubles each line break) it stays under Jupyter's
/// `iopub_data_rate_limit`, 1,000,000 bytes a second averaged over 3 s.
const DEFAULT_RATE: f64 = 500_000.0;
/// Text that may go at once before the rate applies, in seconds of the rate.
const BURST_SECONDS: f64 = 1.0;
/// The slowest pace a setting may ask for: slower, one long line would wait for minutes.
const SLOWEST_RATE: f64 = 10_000.0;

/// A token bucket over the bytes of text handed to the client.
pub(super) struct Pacer {
    /// Bytes a second; `None`: no limit.
    rate: Option<f64>,
    /// Bytes that may go now.
    allowance: f64,
    refilled_at: Instant,
    /// The cell was told that its output is paced.
    told: bool,
}

impl Pacer {
    /// From `TANDEM_OUTPUT_RATE` (bytes a second, or `off`); a value that does not parse
    /// is logged and the default applies.
    pub(super) fn from_env() -> Pacer {
        let setting = std::env::var("TANDEM_OUTPUT_RATE").ok();
        let rate = match setting.as_deref().map(str::trim) {
            None | Some("") => Some(DEFAULT_RATE),
            Some("off") | Some("0") => None,
            Some(value) if value.eq_ignore_ascii_case("off") => None,
            Some(value) => match value.parse::<f64>() {
                Ok(rate) if rate.is_finite() && rate > 0.0 => Some(rate.max(SLOWEST_RATE)),
                _ => {
                    log::warn!(
                        "TANDEM_OUTPUT_RATE={value:?} is not a number of bytes a second or \
                         `off`; using {DEFAULT_RATE}"
                    );
                    Some(DEFAULT_RATE)
                }
            },
        };
        Pacer::new(rate, Instant::now())
    }

    pub(super) fn new(rate: Option<f64>, now: Instant) -> Pacer {
        Pacer {
            rate,
            allowance: rate.map_or(0.0, |rate| rate * BURST_SECONDS),
            refilled_at: now,
            told: false,
        }
    }

    /// How long to wait before `bytes` more may go, counting them as gone after it.
    pub(super) fn wait_before(&mut self, bytes: usize, now: Instant) -> Duration {
        let Some(rate) = self.rate else {
            return Duration::ZERO;
        };
        let elapsed = now
            .saturating_duration_since(self.refilled_at)
            .as_secs_f64();
        self.refilled_at = now;
        self.allowance = (self.allowance + elapsed * rate).min(rate * BURST_SECONDS);
        self.allowance -= bytes as f64;
        if self.allowance >= 0.0 {
            return Duration::ZERO;
        }
        let wait =
            Duration::try_from_secs_f64(-self.allowance / rate).unwrap_or(Duration::from_secs(60));
        // The wait pays for the debt: after it, the allowance starts from nothing.
        self.allowance = 0.0;
        self.refilled_at = now + wait;
        wait
    }

    /// The notice for the cell, the first time its output is paced (else `None`).
    pub(super) fn notice(&mut self) -> Option<String> {
        let rate = self.rate?;
        if std::mem::replace(&mut self.told, true) {
            return None;
        }
        Some(format!(
            "tandem: this cell prints more than {:.1} MB a second, so its printing now \
             waits to keep that pace (nothing is dropped; its run time includes the wait). \
             TANDEM_OUTPUT_RATE sets the pace, in bytes a second, or `off`.",
            rate / 1e6
        ))
    }

    /// A new cell is told again.
    pub(super) fn end_of_cell(&mut self) {
        self.told = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_goes_at_once_and_the_rest_at_the_rate() {
        let start = Instant::now();
        let mut pacer = Pacer::new(Some(1000.0), start);
        assert_eq!(pacer.wait_before(1000, start), Duration::ZERO);
        // 500 bytes more owe half a second.
        assert_eq!(pacer.wait_before(500, start), Duration::from_millis(500));
        // Sent at the end of that wait, another 1000 owe a second more.
        let later = start + Duration::from_millis(500);
        assert_eq!(pacer.wait_before(1000, later), Duration::from_secs(1));
        // A quiet spell earns the burst back, but no more than it.
        let quiet = later + Duration::from_secs(60);
        assert_eq!(pacer.wait_before(1000, quiet), Duration::ZERO);
        assert!(pacer.wait_before(1, quiet) > Duration::ZERO);
    }

    #[test]
    fn the_default_pace_stays_under_jupyters_drop_limit() {
        // Jupyter drops stream output past 1,000,000 bytes a second over 3 s, counting
        // whole messages: the burst and 3 s of the pace, with room for the messages' own
        // bytes, must stay under 3,000,000.
        let most_in_a_window = DEFAULT_RATE * (BURST_SECONDS + 3.0);
        assert!(most_in_a_window * 1.4 < 3e6, "{most_in_a_window}");
    }

    #[test]
    fn without_a_rate_nothing_waits_and_no_one_is_told() {
        let start = Instant::now();
        let mut pacer = Pacer::new(None, start);
        assert_eq!(pacer.wait_before(usize::MAX, start), Duration::ZERO);
        assert_eq!(pacer.notice(), None);
    }

    #[test]
    fn each_cell_is_told_once() {
        let mut pacer = Pacer::new(Some(5e5), Instant::now());
        assert!(pacer.notice().unwrap().contains("0.5 MB a second"));
        assert_eq!(pacer.notice(), None);
        pacer.end_of_cell();
        assert!(pacer.notice().is_some());
    }
}
