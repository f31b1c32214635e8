//! The line protocol between the evcxr child process and the kernel. The child's stdout
//! filter and the helpers write these lines; the kernel's output forwarder reads them.
//! One place for all (the helpers' part is defined in their `kernel_link` module).

use std::sync::OnceLock;

/// How the kernel hands its marker key to the engine's child process, which takes it out
/// of its environment before any cell runs.
pub const KEY_VARIABLE: &str = "TANDEM_MARKER_KEY";

static KEY: OnceLock<u128> = OnceLock::new();
static EVENTS_CHANNEL: OnceLock<String> = OnceLock::new();
use tandem_helpers::kernel_link::EVENTS_CHANNEL_VARIABLE;

/// Chooses this kernel's secret marker key (128 random bits) and exports it for the
/// engine's child processes.
///
/// # Safety
/// It sets an environment variable: call it first thing, while the process has one thread.
pub unsafe fn choose_key() {
    let key = uuid::Uuid::new_v4().as_u128();
    // The events channel's name: random too, and unrelated to the key, since abstract
    // socket names are listed for every user to read (`/proc/net/unix`).
    let channel = format!("tandem-events-{}", uuid::Uuid::new_v4().simple());
    // SAFETY: the caller guarantees that no other thread exists yet.
    unsafe {
        std::env::set_var(KEY_VARIABLE, format!("{key:032x}"));
        std::env::set_var(EVENTS_CHANNEL_VARIABLE, &channel);
    }
    let _ = KEY.set(key);
    let _ = EVENTS_CHANNEL.set(channel);
}

/// The name of this kernel's events channel (see [`choose_key`]).
pub fn events_channel() -> Option<&'static str> {
    EVENTS_CHANNEL.get().map(String::as_str)
}

/// In the engine's child: takes the kernel's key out of the environment (`std::env`, and
/// so the programs a cell starts, no longer have it; `/proc/self/environ` still shows the
/// process's first environment, to code that looks for it on purpose) and hands it to
/// the helpers. Without a key from the kernel, a random one: markers then match nothing
/// the kernel reads, rather than a known prefix.
///
/// # Safety
/// It removes an environment variable: call it while the process has one thread.
pub unsafe fn take_key_from_environment() -> u128 {
    let key = std::env::var(KEY_VARIABLE)
        .ok()
        .and_then(|hex| u128::from_str_radix(hex.trim(), 16).ok())
        .unwrap_or_else(|| uuid::Uuid::new_v4().as_u128());
    // SAFETY: the caller guarantees a single thread.
    unsafe { std::env::remove_var(KEY_VARIABLE) };
    let _ = KEY.set(key);
    key
}

/// Every marker line starts with this: a unit separator and this kernel's secret key.
pub fn prefix() -> &'static str {
    static PREFIX: OnceLock<String> = OnceLock::new();
    PREFIX.get_or_init(|| {
        tandem_helpers::kernel_link::marker_prefix_for(KEY.get().copied().unwrap_or_default())
    })
}

/// A helper task finished: `PREFIX span <json of tandem_helpers::spans::Span>`.
pub use tandem_helpers::kernel_link::SPAN_MARKER as SPAN;

/// A display with an id, shown or changed in place: `PREFIX display-in-place <json of
/// tandem_helpers::kernel_link::DisplayInPlace>`.
pub use tandem_helpers::kernel_link::DISPLAY_IN_PLACE_MARKER as DISPLAY_IN_PLACE;

/// A mime bundle printed during the cell: `PREFIX display <json object of mime -> data>`.
pub const DISPLAY: &str = "display";
/// The cell's code panicked (evcxr caught it): `PREFIX panic`.
pub const PANIC: &str = "panic";
/// Written on stderr when a cell returns: everything the cell wrote there comes before it.
pub const STDERR_SYNC: &str = "stderr-sync";
/// The next stdout line is a piece of a longer one: no line break follows it. (The child
/// passes a line without end on in pieces, so that no one holds all of it.)
pub const LINE_CONTINUES: &str = "line-continues";
/// The stderr sync marker's payload when the cell ran a future on the preloaded runtime.
pub const RAN_A_FUTURE: &str = "ran-a-future";

/// Mime type a program prints (as an evcxr mime block) to clear the cell's output; the
/// block's body is `wait` to clear only when new output arrives.
pub const CLEAR_OUTPUT_MIME: &str = "application/vnd.tandem.clear-output";

/// If a mime bundle is a clear-output request, whether it asks to wait.
pub fn clear_output_request(bundle: &serde_json::Map<String, serde_json::Value>) -> Option<bool> {
    let body = bundle.get(CLEAR_OUTPUT_MIME)?;
    Some(body.as_str().map(str::trim) == Some("wait"))
}

/// The value of one mime type's content as evcxr prints it: JSON types (`application/json`,
/// `...+json`) are parsed (kept as text when they do not parse), others are text.
pub fn mime_value(mime: &str, text: String) -> serde_json::Value {
    if mime.contains("json") {
        serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text))
    } else {
        serde_json::Value::String(text)
    }
}

/// evcxr's own markers, which the child filter recognises.
pub const EVCXR_BEGIN: &str = "EVCXR_BEGIN_CONTENT ";
pub const EVCXR_END: &str = "EVCXR_END_CONTENT";
pub const EVCXR_PANIC: &str = "EVCXR_PANIC_NOTIFICATION";
pub const EVCXR_COMPLETE: &str = "EVCXR_EXECUTION_COMPLETE";

/// A marker line, as written by the child.
pub fn line(kind: &str, payload: &str) -> String {
    let prefix = prefix();
    if payload.is_empty() {
        format!("{prefix}{kind}")
    } else {
        format!("{prefix}{kind} {payload}")
    }
}

/// Splits a marker line into (kind, payload); `None` for ordinary output.
pub fn parse(line: &str) -> Option<(&str, &str)> {
    let rest = line.strip_prefix(prefix())?;
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
        // Without the key, the old fixed prefix is ordinary text.
        assert_eq!(parse("\u{1f}TANDEM display {}"), None);
        assert_eq!(parse("\u{1f}TANDEM-0 panic"), None);
        assert_eq!(parse("hello"), None);
    }
}
