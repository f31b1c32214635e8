//! A running cell's output on its way to iopub, as children of its execute request: the
//! sink the engine is handed. Silent requests get one that drops everything.

use super::super::Request;
use crate::engine::{Discard, OutputSink, StreamName};
use crate::server::Iopub;
use crate::wire::content::{self, ClearOutput, DisplayData, Stream};
use crate::wire::Message;
use serde_json::{json, Map, Value};
use std::sync::Arc;

/// Sends a running cell's output to iopub, as children of its execute request.
pub struct IopubSink {
    iopub: Iopub,
    parent: Message,
    /// The display that shows this cell's build progress, once there is one.
    progress_display: std::sync::Mutex<Option<String>>,
}

impl IopubSink {
    /// Output of a request's cell: to iopub, or nowhere for silent requests.
    pub fn for_request(request: &Request, silent: bool) -> Arc<dyn OutputSink> {
        if silent {
            Arc::new(Discard)
        } else {
            Arc::new(IopubSink {
                iopub: request.iopub.clone(),
                parent: request.message.clone(),
                progress_display: std::sync::Mutex::new(None),
            })
        }
    }

    fn publish(&self, msg_type: &str, content: Value) {
        self.iopub.publish(self.parent.child(msg_type, content));
    }

    /// What the cell itself printed or displayed: waits while a slow client has much of it.
    fn publish_output(&self, msg_type: &str, content: Value) {
        self.iopub
            .publish_output(self.parent.child(msg_type, content));
    }
}

impl OutputSink for IopubSink {
    fn stream(&self, name: StreamName, text: &str) {
        let stream = Stream {
            name: name.as_str(),
            text: text.to_owned(),
        };
        self.publish_output("stream", content::to_value(&stream));
    }

    fn display(&self, data: Map<String, Value>) {
        let display = DisplayData {
            data,
            metadata: Map::new(),
            transient: Map::new(),
        };
        self.publish_output("display_data", content::to_value(&display));
    }

    fn clear_output(&self, wait: bool) {
        self.publish("clear_output", content::to_value(&ClearOutput { wait }));
        // A progress display cleared away is gone: the next report starts a new one.
        if let Ok(mut display) = self.progress_display.lock() {
            *display = None;
        }
    }

    fn display_in_place(&self, id: &str, data: Map<String, Value>, update: bool) {
        let display = DisplayData {
            data,
            metadata: Map::new(),
            transient: with_display_id(id),
        };
        self.publish_output(displayed_as(update), content::to_value(&display));
    }

    /// The first report is a display with an id; later ones update it in place.
    fn progress(&self, text: &str) {
        let Ok(mut display) = self.progress_display.lock() else {
            return;
        };
        let update = display.is_some();
        let id = display.get_or_insert_with(|| format!("tandem-progress-{}", uuid::Uuid::new_v4()));
        let mut data = Map::new();
        data.insert("text/plain".into(), Value::String(text.to_owned()));
        let mut metadata = Map::new();
        metadata.insert("tandem".into(), json!({ "role": "progress" }));
        let report = DisplayData {
            data,
            metadata,
            transient: with_display_id(id),
        };
        self.publish(displayed_as(update), content::to_value(&report));
    }
}

/// A display's `transient` field, which names it for later updates.
fn with_display_id(id: &str) -> Map<String, Value> {
    let mut transient = Map::new();
    transient.insert("display_id".into(), Value::String(id.to_owned()));
    transient
}

/// The message that shows a display anew, or replaces one shown before.
fn displayed_as(update: bool) -> &'static str {
    if update {
        "update_display_data"
    } else {
        "display_data"
    }
}
