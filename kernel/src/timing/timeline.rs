//! The timeline picture under a cell whose helper tasks reported spans: SVG for notebooks
//! with a character drawing as `text/plain`, marked in its metadata so clients (and tests)
//! can tell it from the cell's own output.

use serde_json::{json, Map, Value};
use tandem_helpers::spans::Span;
use tandem_helpers::Timeline;

/// Marks the timeline among a cell's outputs (`metadata.tandem.role`).
pub const TIMELINE_ROLE: &str = "timeline";

/// The picture as a `display_data` mime bundle and its metadata; `None` without spans.
pub fn picture(spans: &[Span]) -> Option<super::Bundle> {
    if spans.is_empty() {
        return None;
    }
    let timeline = Timeline::new(spans.to_vec());
    let svg = timeline.svg();
    let mut data = Map::new();
    // JupyterLab shows `image/svg+xml` as an <img>; the same picture inline in HTML is
    // part of the page (its tooltips work, and it can be inspected and tested).
    data.insert(
        "text/html".into(),
        json!(format!("<div class=\"tandem-timeline\">{svg}</div>")),
    );
    data.insert("image/svg+xml".into(), json!(svg));
    data.insert("text/plain".into(), json!(timeline.text()));
    let mut metadata = Map::new();
    // The figures behind the picture, for tests and tools that read executed notebooks.
    let tasks: Vec<Value> = timeline
        .spans
        .iter()
        .map(|span| {
            json!({
                "name": span.name,
                "kind": span.kind.label(),
                "thread": span.thread,
                "start": span.start.as_secs_f64(),
                "end": span.end.as_secs_f64(),
            })
        })
        .collect();
    metadata.insert(
        "tandem".into(),
        json!({
            "role": TIMELINE_ROLE,
            "total_seconds": timeline.total().as_secs_f64(),
            "sum_seconds": timeline.sum().as_secs_f64(),
            "overlapped": timeline.overlapped(),
            "threads": timeline.threads(),
            "tasks": tasks,
        }),
    );
    Some((data, metadata))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;
    use tandem_helpers::spans::Kind;

    #[test]
    fn spans_become_svg_and_text_marked_as_the_timeline() {
        assert!(picture(&[]).is_none());
        let span = Span {
            name: "A".into(),
            kind: Kind::Blocking,
            thread: "main".into(),
            start: Duration::ZERO,
            end: Duration::from_secs(1),
            task: None,
        };
        let (data, metadata) = picture(&[span]).unwrap();
        assert!(data["image/svg+xml"].as_str().unwrap().starts_with("<svg"));
        assert!(data["text/html"].as_str().unwrap().contains("<svg"));
        assert!(data["text/plain"].as_str().unwrap().contains('A'));
        assert_eq!(metadata["tandem"]["role"], TIMELINE_ROLE);
        assert_eq!(metadata["tandem"]["sum_seconds"], 1.0);
        assert_eq!(metadata["tandem"]["tasks"][0]["kind"], "blocking");
    }
}
