//! A running cell's output on its way to iopub, as children of its execute request: the
//! sink the engine is handed, which also draws the event loop live. Silent requests get one
//! that drops everything.

use super::super::Request;
use crate::engine::{Discard, OutputSink, RuntimeTrace, StreamName};
use crate::presentation;
use crate::server::Iopub;
use crate::timing;
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
    /// The display that shows the event loop while the cell runs, once there is one.
    event_loop_display: std::sync::Mutex<Option<String>>,
}

/// Where a request's cell output goes.
pub enum CellOutput {
    Iopub(Arc<IopubSink>),
    /// A silent request's: nowhere.
    Silent,
}

impl CellOutput {
    /// The sink the engine is handed.
    pub fn sink(&self) -> Arc<dyn OutputSink> {
        match self {
            CellOutput::Iopub(sink) => sink.clone(),
            CellOutput::Silent => Arc::new(Discard),
        }
    }

    /// The final picture of the event loop: in place of the live one, if it was drawn.
    pub fn event_loop(&self, (data, metadata): timing::Bundle) {
        let CellOutput::Iopub(sink) = self else {
            return;
        };
        let live = (sink.event_loop_display.lock())
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        // In place of the live one (all displays of the id change), or anew.
        sink.publish_picture(live.as_deref(), live.is_some(), (data, metadata));
    }
}

impl IopubSink {
    /// Output of a request's cell: to iopub, or nowhere for silent requests.
    pub fn for_request(request: &Request, silent: bool) -> CellOutput {
        if silent {
            CellOutput::Silent
        } else {
            CellOutput::Iopub(Arc::new(IopubSink {
                iopub: request.iopub.clone(),
                parent: request.message.clone(),
                progress_display: std::sync::Mutex::new(None),
                event_loop_display: std::sync::Mutex::new(None),
            }))
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

    /// The first picture is a display with an id; later ones update it in place.
    fn runtime_so_far(&self, trace: &RuntimeTrace) {
        let Some((data, metadata)) = presentation::event_loop_so_far(trace) else {
            return;
        };
        let mut display = (self.event_loop_display.lock()).unwrap_or_else(|p| p.into_inner());
        let update = display.is_some();
        let id =
            display.get_or_insert_with(|| format!("tandem-event-loop-{}", uuid::Uuid::new_v4()));
        self.publish_picture(Some(id), update, (data, metadata));
    }
}

impl IopubSink {
    /// An event-loop picture: a display (with the `id` that names it, if any), or
    /// (`update`) the new content of the display `id` names.
    fn publish_picture(&self, id: Option<&str>, update: bool, (data, metadata): timing::Bundle) {
        let picture = DisplayData {
            data,
            metadata,
            transient: id.map(with_display_id).unwrap_or_default(),
        };
        self.publish(displayed_as(update), content::to_value(&picture));
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
