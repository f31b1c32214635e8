//! The line protocol between the evcxr child process and the kernel. The child's stdout
//! filter and the helpers write these lines; the kernel's output forwarder reads them.
//! One place for all (the helpers' part is defined in their `session` module).

/// Every marker line starts with this (a unit separator keeps it out of ordinary output).
pub use tandem_helpers::session::MARKER_PREFIX as PREFIX;
/// A helper task finished: `PREFIX span <json of tandem_helpers::spans::Span>`.
pub use tandem_helpers::session::SPAN_MARKER as SPAN;

/// A mime bundle printed during the cell: `PREFIX display <json object of mime -> data>`.
pub const DISPLAY: &str = "display";
/// The cell's code panicked (evcxr caught it): `PREFIX panic`.
pub const PANIC: &str = "panic";
/// Written on stderr when a cell returns: everything the cell wrote there comes before it.
pub const STDERR_SYNC: &str = "stderr-sync";

/// Mime type a program prints (as an evcxr mime block) to clear the cell's output; the
/// block's body is `wait` to clear only when new output arrives.
pub const CLEAR_OUTPUT_MIME: &str = "application/vnd.tandem.clear-output";

/// If a mime bundle is a clear-output request, whether it asks to wait.
pub fn clear_output_request(bundle: &serde_json::Map<String, serde_json::Value>) -> Option<bool> {
    let body = bundle.get(CLEAR_OUTPUT_MIME)?;
    Some(body.as_str().map(str::trim) == Some("wait"))
}

/// evcxr's own markers, which the child filter recognises.
pub const EVCXR_BEGIN: &str = "EVCXR_BEGIN_CONTENT ";
pub const EVCXR_END: &str = "EVCXR_END_CONTENT";
pub const EVCXR_PANIC: &str = "EVCXR_PANIC_NOTIFICATION";
pub const EVCXR_COMPLETE: &str = "EVCXR_EXECUTION_COMPLETE";

/// A marker line, as written by the child.
pub fn line(kind: &str, payload: &str) -> String {
    if payload.is_empty() {
        format!("{PREFIX}{kind}")
    } else {
        format!("{PREFIX}{kind} {payload}")
    }
}

/// Splits a marker line into (kind, payload); `None` for ordinary output.
pub fn parse(line: &str) -> Option<(&str, &str)> {
    let rest = line.strip_prefix(PREFIX)?;
    Some(rest.split_once(' ').unwrap_or((rest, "")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marker_round_trip() {
        assert_eq!(parse(&line(PANIC, "")), Some((PANIC, "")));
        assert_eq!(
            parse(&line(DISPLAY, r#"{"a": 1}"#)),
            Some((DISPLAY, r#"{"a": 1}"#))
        );
        assert_eq!(parse("TANDEM display x"), None);
        assert_eq!(parse("hello"), None);
    }
}
