//! What the forwarder has read and not yet handed to the cell's sink: text on one stream
//! merged while more is already waiting, cut into pieces of at most 64 KiB on the way out.

use super::{OutputSink, StreamName, MAX_BATCH_BYTES};
use serde_json::{Map, Value};
use tandem_helpers::kernel_link::DisplayInPlace;

/// One piece of a cell's output.
pub(super) enum Event {
    Stream(StreamName, String),
    Display(Map<String, Value>),
    Clear(bool),
    /// A display with an id, shown or replaced in place.
    InPlace(DisplayInPlace),
}

/// Output waiting to go to the sink, in the order it was printed.
#[derive(Default)]
pub(super) struct Batch {
    events: Vec<Event>,
    bytes: usize,
}

impl Batch {
    /// How much text waits.
    pub(super) fn bytes(&self) -> usize {
        self.bytes
    }

    pub(super) fn push(&mut self, event: Event) {
        self.events.push(event);
    }

    /// One line printed on `name` (without its newline).
    pub(super) fn push_text(&mut self, name: StreamName, line: String) {
        self.push_piece(name, line, true);
    }

    /// Text with its line break, or (`ends_line` false) a piece of a longer line.
    pub(super) fn push_piece(&mut self, name: StreamName, mut line: String, ends_line: bool) {
        if ends_line {
            line.push('\n');
        }
        self.bytes += line.len();
        if let Some(Event::Stream(last, text)) = self.events.last_mut() {
            if *last == name {
                text.push_str(&line);
                return;
            }
        }
        self.events.push(Event::Stream(name, line));
    }

    /// Hands everything to `sink` (or drops it, when no cell is listening).
    pub(super) fn send_to(&mut self, sink: Option<&dyn OutputSink>) {
        self.bytes = 0;
        let Some(sink) = sink else {
            self.events.clear();
            return;
        };
        for event in self.events.drain(..) {
            match event {
                Event::Stream(name, text) => {
                    for piece in pieces(&text, MAX_BATCH_BYTES) {
                        sink.stream(name, piece);
                    }
                }
                Event::Display(data) => sink.display(data),
                Event::Clear(wait) => sink.clear_output(wait),
                Event::InPlace(shown) => sink.display_in_place(&shown.id, shown.data, shown.update),
            }
        }
    }
}

/// `text` in pieces of at most `most` bytes (one longer character excepted), cut at
/// character boundaries: a single long line becomes several messages.
fn pieces(text: &str, most: usize) -> impl Iterator<Item = &str> {
    let mut rest = text;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let mut end = most.min(rest.len());
        while !rest.is_char_boundary(end) {
            end -= 1;
        }
        if end == 0 {
            end = rest.chars().next().map_or(rest.len(), char::len_utf8);
        }
        let (piece, after) = rest.split_at(end);
        rest = after;
        Some(piece)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_text_goes_in_pieces_cut_between_characters() {
        let text = "é".repeat(5) + "x";
        let cut: Vec<&str> = pieces(&text, 4).collect();
        assert_eq!(cut, ["éé", "éé", "éx"]);
        assert_eq!(pieces("", 4).count(), 0);
        assert_eq!(pieces("🦀", 1).collect::<Vec<_>>(), ["🦀"]);
    }
}
