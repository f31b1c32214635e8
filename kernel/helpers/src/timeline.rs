//! The timeline picture: one row per task, a time axis in seconds, bars coloured by kind,
//! the total and the sum of the waits written on it. SVG for notebooks, characters for
//! terminals; shown as a cell's value through evcxr's display convention.

use crate::spans::{self, Kind, Span};
use std::fmt::Write;
use std::time::Duration;

/// The recorded spans of a cell, ready to show.
#[derive(Debug, Clone, PartialEq)]
pub struct Timeline {
    pub spans: Vec<Span>,
}

/// The timeline of what the helpers recorded since the clock last restarted.
pub fn timeline() -> Timeline {
    Timeline::new(spans::recorded())
}

const WIDTH: f64 = 640.0;
const LABEL: f64 = 130.0;
const ROW: f64 = 26.0;
const TOP: f64 = 34.0;
const TEXT: &str = "#8a8a8a";
/// Rows drawn at most; beyond that the last row says how many more tasks there were.
const MAX_ROWS: usize = 16;

fn colour(kind: Kind) -> &'static str {
    match kind {
        Kind::Blocking => "#e08a2c",
        Kind::Async => "#3b8fd9",
        Kind::Cpu => "#9b6bd6",
    }
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

impl Timeline {
    /// Spans sorted by start time.
    pub fn new(mut spans: Vec<Span>) -> Timeline {
        spans.sort_by(|a, b| a.start.cmp(&b.start).then_with(|| a.name.cmp(&b.name)));
        Timeline { spans }
    }

    /// From the earliest start to the latest end.
    pub fn total(&self) -> Duration {
        let start = self.spans.iter().map(|s| s.start).min().unwrap_or_default();
        let end = self.spans.iter().map(|s| s.end).max().unwrap_or_default();
        end.saturating_sub(start)
    }

    /// The tasks' durations added up: what running them one after another would take.
    pub fn sum(&self) -> Duration {
        self.spans.iter().map(Span::duration).sum()
    }

    /// Whether any two tasks were running at the same moment.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tandem_helpers::spans::{Kind, Span};
    /// use tandem_helpers::Timeline;
    /// let span = |from: f64, to: f64| Span {
    ///     name: "t".into(), kind: Kind::Async, thread: "main".into(),
    ///     start: Duration::from_secs_f64(from), end: Duration::from_secs_f64(to), task: None,
    /// };
    /// assert!(Timeline::new(vec![span(0.0, 2.0), span(1.0, 3.0)]).overlapped());
    /// assert!(!Timeline::new(vec![span(0.0, 1.0), span(1.0, 3.0)]).overlapped());
    /// ```
    pub fn overlapped(&self) -> bool {
        // Sorted by start: an overlap shows as a start before the latest end so far.
        let mut latest_end: Option<Duration> = None;
        for span in &self.spans {
            if latest_end.is_some_and(|end| span.start < end) {
                return true;
            }
            latest_end = latest_end.max(Some(span.end));
        }
        false
    }

    /// How many different threads the tasks ran on.
    pub fn threads(&self) -> usize {
        let mut threads: Vec<&str> = self.spans.iter().map(|s| s.thread.as_str()).collect();
        threads.sort_unstable();
        threads.dedup();
        threads.len()
    }

    /// How many tasks were recorded.
    pub fn tasks(&self) -> usize {
        self.spans.len()
    }

    /// `total 2.00 s · sum of tasks 3.00 s`
    pub fn caption(&self) -> String {
        format!(
            "total {:.2} s · sum of tasks {:.2} s",
            self.total().as_secs_f64(),
            self.sum().as_secs_f64()
        )
    }

    /// The picture as a standalone SVG document.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tandem_helpers::spans::{Kind, Span};
    /// use tandem_helpers::Timeline;
    /// let span = |name: &str, from: f64, to: f64| Span {
    ///     name: name.into(), kind: Kind::Async, thread: "main".into(),
    ///     start: Duration::from_secs_f64(from), end: Duration::from_secs_f64(to), task: None,
    /// };
    /// let svg = Timeline::new(vec![span("A", 0.0, 2.0), span("B", 0.0, 1.0)]).svg();
    /// assert!(svg.starts_with("<svg"));
    /// assert_eq!(svg.matches("class=\"bar\"").count(), 2);
    /// assert!(svg.contains("total 2.00 s · sum of tasks 3.00 s"));
    /// ```
    pub fn svg(&self) -> String {
        let origin = self.spans.iter().map(|s| s.start).min().unwrap_or_default();
        let span_seconds = self.total().as_secs_f64().max(0.001);
        let step = tick_step(span_seconds);
        let axis_end = (span_seconds / step).ceil() * step;
        let plot = WIDTH - LABEL - 20.0;
        let x = |t: f64| LABEL + plot * (t / axis_end);
        let (shown, hidden) = self.rows();
        let rows = shown.len() + usize::from(hidden > 0);
        let height = TOP + ROW * rows as f64 + 34.0;
        let mut svg = String::new();
        let _ = write!(
            svg,
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{WIDTH}\" height=\"{height}\" \
             viewBox=\"0 0 {WIDTH} {height}\" font-family=\"sans-serif\" font-size=\"12\">"
        );
        let _ = write!(
            svg,
            "<text x=\"{LABEL}\" y=\"18\" fill=\"{TEXT}\" font-weight=\"bold\">{}</text>",
            escape(&self.caption())
        );
        let axis_y = TOP + ROW * rows as f64 + 4.0;
        let mut t = 0.0;
        while t <= axis_end + 1e-9 {
            let _ = write!(
                svg,
                "<line x1=\"{0:.1}\" x2=\"{0:.1}\" y1=\"{TOP}\" y2=\"{axis_y}\" stroke=\"{TEXT}\" \
                 stroke-opacity=\"0.3\"/><text x=\"{0:.1}\" y=\"{1:.1}\" fill=\"{TEXT}\" \
                 text-anchor=\"middle\">{t:.1} s</text>",
                x(t),
                axis_y + 16.0
            );
            t += step;
        }
        for (row, span) in shown.iter().enumerate() {
            let y = TOP + ROW * row as f64;
            let start = span.start.saturating_sub(origin).as_secs_f64();
            let end = span.end.saturating_sub(origin).as_secs_f64();
            let _ = write!(
                svg,
                "<text x=\"{:.1}\" y=\"{:.1}\" fill=\"{TEXT}\" text-anchor=\"end\">{}</text>\
                 <rect class=\"bar\" data-name=\"{}\" data-kind=\"{}\" data-start=\"{start:.3}\" data-end=\"{end:.3}\" \
                 x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\" rx=\"3\" fill=\"{}\">\
                 <title>{} ({}, {}): {start:.2}–{end:.2} s</title></rect>",
                LABEL - 8.0,
                y + ROW * 0.62,
                escape(&span.name),
                escape(&span.name),
                span.kind.label(),
                x(start),
                y + 4.0,
                (x(end) - x(start)).max(1.5),
                ROW - 8.0,
                colour(span.kind),
                escape(&span.name),
                span.kind.label(),
                escape(&span.thread),
            );
        }
        if hidden > 0 {
            let _ = write!(
                svg,
                "<text x=\"{LABEL}\" y=\"{:.1}\" fill=\"{TEXT}\" font-style=\"italic\">… and \
                 {hidden} more tasks (counted in the total and the sum)</text>",
                TOP + ROW * shown.len() as f64 + ROW * 0.62
            );
        }
        svg.push_str("</svg>");
        svg
    }

    /// The picture drawn with characters, for terminals and plain-text exports.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tandem_helpers::spans::{Kind, Span};
    /// use tandem_helpers::Timeline;
    /// let span = |name: &str, kind, from: f64, to: f64| Span {
    ///     name: name.into(), kind, thread: "main".into(),
    ///     start: Duration::from_secs_f64(from), end: Duration::from_secs_f64(to), task: None,
    /// };
    /// let text = Timeline::new(vec![
    ///     span("A", Kind::Blocking, 0.0, 2.0),
    ///     span("B", Kind::Blocking, 2.0, 3.0),
    /// ]).text();
    /// assert_eq!(text.lines().next(), Some("total 3.00 s · sum of tasks 3.00 s"));
    /// assert!(text.contains("A  |#################################                 | 0.00–2.00 s blocking"));
    /// ```
    pub fn text(&self) -> String {
        const COLUMNS: f64 = 50.0;
        let origin = self.spans.iter().map(|s| s.start).min().unwrap_or_default();
        let total = self.total().as_secs_f64().max(0.001);
        let label = self
            .spans
            .iter()
            .map(|s| s.name.chars().count())
            .max()
            .unwrap_or(0);
        let mut out = self.caption();
        let (shown, hidden) = self.rows();
        for span in shown {
            let start = span.start.saturating_sub(origin).as_secs_f64();
            let end = span.end.saturating_sub(origin).as_secs_f64();
            let from = (start / total * COLUMNS).round() as usize;
            let to = ((end / total * COLUMNS).round() as usize)
                .max(from + 1)
                .min(50);
            let mark = match span.kind {
                Kind::Blocking => '#',
                Kind::Async => '=',
                Kind::Cpu => '*',
            };
            let bar: String = (0..50)
                .map(|i| if i >= from && i < to { mark } else { ' ' })
                .collect();
            let _ = write!(
                out,
                "\n{:<label$}  |{bar}| {start:.2}–{end:.2} s {}",
                span.name,
                span.kind.label()
            );
        }
        if hidden > 0 {
            let _ = write!(
                out,
                "\n… and {hidden} more tasks (counted in the total and the sum)"
            );
        }
        out
    }

    /// The spans drawn as rows, and how many more there were: a cell with hundreds of
    /// tasks gets a picture of readable size.
    fn rows(&self) -> (&[Span], usize) {
        if self.spans.len() <= MAX_ROWS {
            (&self.spans, 0)
        } else {
            let shown = MAX_ROWS - 1;
            (&self.spans[..shown], self.spans.len() - shown)
        }
    }

    /// evcxr's display hook: a cell whose value is a `Timeline` shows the picture, with the
    /// characters as the plain-text fallback.
    pub fn evcxr_display(&self) {
        crate::display::mime_block("text/plain", &self.text());
        crate::display::mime_block("image/svg+xml", &self.svg());
    }
}

/// A readable tick spacing for an axis `seconds` long (about 5–10 ticks).
fn tick_step(seconds: f64) -> f64 {
    [0.05, 0.1, 0.2, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0]
        .into_iter()
        .find(|step| seconds / step <= 10.0)
        .unwrap_or(120.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn span(name: &str, kind: Kind, from: f64, to: f64) -> Span {
        Span {
            name: name.into(),
            kind,
            thread: "t".into(),
            start: Duration::from_secs_f64(from),
            end: Duration::from_secs_f64(to),
            task: None,
        }
    }

    #[test]
    fn hundreds_of_tasks_draw_a_few_rows_and_count_the_rest() {
        let many: Vec<Span> = (0..200)
            .map(|i| span(&format!("GET /{i}"), Kind::Async, 0.0, 0.5))
            .collect();
        let timeline = Timeline::new(many);
        let svg = timeline.svg();
        assert_eq!(svg.matches("class=\"bar\"").count(), MAX_ROWS - 1);
        assert!(svg.contains("and 185 more tasks"));
        assert!(svg.contains("sum of tasks 100.00 s"));
        assert!(timeline
            .text()
            .ends_with("and 185 more tasks (counted in the total and the sum)"));
    }

    #[test]
    fn overlapping_tasks_total_the_longest_and_sum_the_waits() {
        let timeline = Timeline::new(vec![
            span("B", Kind::Async, 0.5, 1.5),
            span("A", Kind::Async, 0.5, 2.5),
        ]);
        assert_eq!(timeline.spans[0].name, "A", "sorted by start, then name");
        assert!((timeline.total().as_secs_f64() - 2.0).abs() < 1e-9);
        assert!((timeline.sum().as_secs_f64() - 3.0).abs() < 1e-9);
    }

    #[test]
    fn svg_bars_sit_where_the_spans_are() {
        let svg = Timeline::new(vec![
            span("first", Kind::Blocking, 1.0, 3.0),
            span("second", Kind::Cpu, 3.0, 4.0),
        ])
        .svg();
        // Times on the picture are relative to the first start.
        assert!(svg.contains("data-kind=\"blocking\" data-start=\"0.000\" data-end=\"2.000\""));
        assert!(svg.contains("data-kind=\"cpu\" data-start=\"2.000\" data-end=\"3.000\""));
        assert!(svg.contains(colour(Kind::Cpu)));
        assert!(svg.contains("3.0 s"), "the axis reaches the end");
    }

    #[test]
    fn names_are_escaped() {
        let svg = Timeline::new(vec![span("<b>&", Kind::Async, 0.0, 1.0)]).svg();
        assert!(svg.contains("&lt;b&gt;&amp;"));
        assert!(!svg.contains("<b>&"));
    }

    #[test]
    fn tick_steps_are_readable() {
        assert_eq!(tick_step(3.0), 0.5);
        assert_eq!(tick_step(0.3), 0.05);
        assert_eq!(tick_step(45.0), 5.0);
    }
}
