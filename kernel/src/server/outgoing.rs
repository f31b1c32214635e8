//! A message waiting on iopub, and how waiting stream text of one request is merged so a
//! client that fell behind catches up on fewer, larger messages.

use crate::wire::{Message, Signer};
use serde_json::Value;

/// The most text one stream message grows to while waiting.
pub const MAX_MERGED_TEXT: usize = 64 * 1024;

/// A message waiting to go. It is signed when first tried, so stream text can still be
/// appended to it until then.
pub(super) struct Outgoing {
    pub(super) message: Message,
    pub(super) frames: Option<Vec<Vec<u8>>>,
    /// About how many bytes it holds.
    pub(super) bytes: usize,
    /// The cell output in it, as counted in the backlog.
    pub(super) output_bytes: usize,
    /// tandem's own notice (not counted as output sent while letting go).
    pub(super) notice: bool,
}

impl Outgoing {
    /// Its frames, signed the first time they are asked for (no merging after that).
    pub(super) fn frames(&mut self, signer: &Signer) -> &[Vec<u8>] {
        self.frames
            .get_or_insert_with(|| self.message.to_frames(signer))
    }

    /// Appends `more`'s text if both are waiting text of the same stream and request, and
    /// the result stays within [`MAX_MERGED_TEXT`]; whether it did.
    pub(super) fn merge(&mut self, more: &Message) -> bool {
        if self.frames.is_some()
            || self.notice
            || !same_stream(&self.message, more)
            || self.message.identities != more.identities
        {
            return false;
        }
        let added = stream_text(more).unwrap_or_default();
        let Some(Value::String(text)) = self.message.content.get_mut("text") else {
            return false;
        };
        if text.len() + added.len() > MAX_MERGED_TEXT {
            return false;
        }
        text.push_str(added);
        self.bytes += added.len();
        true
    }
}

pub(super) fn stream_text(message: &Message) -> Option<&str> {
    message.content.get("text").and_then(Value::as_str)
}

fn same_stream(a: &Message, b: &Message) -> bool {
    let name = |m: &Message| m.content.get("name").cloned();
    let parent = |m: &Message| m.parent_header.as_ref().map(|h| h.msg_id.clone());
    a.header.msg_type == "stream"
        && b.header.msg_type == "stream"
        && name(a) == name(b)
        && parent(a) == parent(b)
        && stream_text(b).is_some()
}

/// The bytes a message's content stands for: a stream's text, else its content as JSON.
pub(super) fn content_bytes(message: &Message) -> usize {
    stream_text(message).map_or_else(
        || serde_json::to_vec(&message.content).map_or(0, |v| v.len()),
        str::len,
    )
}

/// About how many bytes a message takes once signed: its content (`content_bytes` when
/// already counted), its buffers and headers.
pub(super) fn size_of(message: &Message, content: Option<usize>) -> usize {
    const HEADERS: usize = 600;
    let content = content.unwrap_or_else(|| content_bytes(message));
    let buffers: usize = message.buffers.iter().map(Vec::len).sum();
    content + buffers + HEADERS
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::Header;
    use serde_json::Map;

    fn waiting(parent: &Header, name: &str, text: &str) -> Outgoing {
        let message = stream(parent, name, text);
        Outgoing {
            bytes: size_of(&message, None),
            message,
            frames: None,
            output_bytes: text.len(),
            notice: false,
        }
    }

    fn stream(parent: &Header, name: &str, text: &str) -> Message {
        Message {
            identities: vec![b"kernel.tandem.stream".to_vec()],
            header: Header::new("stream"),
            parent_header: Some(parent.clone()),
            metadata: Map::new(),
            content: serde_json::json!({ "name": name, "text": text }),
            buffers: Vec::new(),
        }
    }

    #[test]
    fn waiting_text_of_one_stream_and_request_is_merged_in_order() {
        let cell = Header::new("execute_request");
        let mut last = waiting(&cell, "stdout", "one\n");
        assert!(last.merge(&stream(&cell, "stdout", "two\n")));
        assert_eq!(stream_text(&last.message), Some("one\ntwo\n"));
        assert!(!last.merge(&stream(&cell, "stderr", "apart\n")));
        let other_cell = Header::new("execute_request");
        assert!(!last.merge(&stream(&other_cell, "stdout", "apart\n")));
        let too_long = "x".repeat(MAX_MERGED_TEXT);
        assert!(!last.merge(&stream(&cell, "stdout", &too_long)));
        last.frames = Some(Vec::new());
        assert!(!last.merge(&stream(&cell, "stdout", "signed already\n")));
        assert_eq!(stream_text(&last.message), Some("one\ntwo\n"));
    }
}
