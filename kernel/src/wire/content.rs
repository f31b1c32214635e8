//! Typed contents of the messages tandem reads and writes, one struct per content type.
//! Requests default every optional field the way ipykernel does.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

fn yes() -> bool {
    true
}

// ----- requests -------------------------------------------------------------

#[derive(Debug, Clone, Deserialize)]
pub struct ExecuteRequest {
    pub code: String,
    #[serde(default)]
    pub silent: bool,
    #[serde(default = "yes")]
    pub store_history: bool,
    #[serde(default)]
    pub user_expressions: Map<String, Value>,
    #[serde(default)]
    pub allow_stdin: bool,
    #[serde(default = "yes")]
    pub stop_on_error: bool,
}

#[derive(Debug, Clone, Deserialize)]
pub struct CompleteRequest {
    pub code: String,
    pub cursor_pos: Option<usize>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct InspectRequest {
    pub code: String,
    pub cursor_pos: Option<usize>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct IsCompleteRequest {
    pub code: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct HistoryRequest {
    #[serde(default)]
    pub output: bool,
    #[serde(default = "tail")]
    pub hist_access_type: String,
    pub session: Option<i64>,
    pub start: Option<i64>,
    pub stop: Option<i64>,
    pub n: Option<usize>,
    pub pattern: Option<String>,
    #[serde(default)]
    pub unique: bool,
}

fn tail() -> String {
    "tail".to_owned()
}

#[derive(Debug, Clone, Deserialize)]
pub struct CommInfoRequest {}

#[derive(Debug, Clone, Deserialize)]
pub struct CommOpen {
    pub comm_id: String,
    pub target_name: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ShutdownRequest {
    #[serde(default)]
    pub restart: bool,
}

#[derive(Debug, Clone, Deserialize)]
pub struct InputReply {
    pub value: String,
}

// ----- replies and broadcasts ----------------------------------------------

/// The `status` of a reply that tells no other outcome (an execute reply's is its
/// `ExecuteOutcome`; an is_complete reply's, its `IsCompleteStatus`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ReplyStatus {
    Ok,
    Error,
}

/// What an `is_complete_reply` says of the code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum IsCompleteStatus {
    Complete,
    Incomplete,
    Invalid,
}

#[derive(Debug, Clone, Serialize)]
pub struct KernelInfoReply {
    pub status: ReplyStatus,
    pub protocol_version: &'static str,
    pub implementation: &'static str,
    pub implementation_version: &'static str,
    pub language_info: LanguageInfo,
    pub banner: String,
    pub help_links: Vec<HelpLink>,
    pub debugger: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct LanguageInfo {
    pub name: &'static str,
    pub version: String,
    pub mimetype: &'static str,
    pub file_extension: &'static str,
    pub pygments_lexer: &'static str,
    pub codemirror_mode: &'static str,
    pub nbconvert_exporter: &'static str,
}

#[derive(Debug, Clone, Serialize)]
pub struct HelpLink {
    pub text: &'static str,
    pub url: &'static str,
}

#[derive(Debug, Clone, Serialize)]
pub struct Status {
    pub execution_state: &'static str,
}

#[derive(Debug, Clone, Serialize)]
pub struct ExecuteInput {
    pub code: String,
    pub execution_count: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Stream {
    pub name: &'static str,
    pub text: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct DisplayData {
    pub data: Map<String, Value>,
    pub metadata: Map<String, Value>,
    pub transient: Map<String, Value>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ExecuteResult {
    pub execution_count: u64,
    pub data: Map<String, Value>,
    pub metadata: Map<String, Value>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ClearOutput {
    pub wait: bool,
}

/// The `error` broadcast on iopub, and the error fields of a reply.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ErrorContent {
    pub ename: String,
    pub evalue: String,
    pub traceback: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct InputRequest {
    pub prompt: String,
    pub password: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct CompleteReply {
    pub status: ReplyStatus,
    pub matches: Vec<String>,
    pub cursor_start: usize,
    pub cursor_end: usize,
    pub metadata: Map<String, Value>,
}

#[derive(Debug, Clone, Serialize)]
pub struct InspectReply {
    pub status: ReplyStatus,
    pub found: bool,
    pub data: Map<String, Value>,
    pub metadata: Map<String, Value>,
}

#[derive(Debug, Clone, Serialize)]
pub struct IsCompleteReply {
    pub status: IsCompleteStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub indent: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct HistoryReply {
    pub status: ReplyStatus,
    pub history: Vec<HistoryEntry>,
}

/// One line of history: `(session, line, input)`, or with `output`, `(session, line,
/// (input, output))`, as JSON arrays.
#[derive(Debug, Clone, Serialize)]
pub struct HistoryEntry(pub u32, pub u64, pub HistoryInput);

#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum HistoryInput {
    Input(String),
    WithOutput(String, Option<String>),
}

#[derive(Debug, Clone, Serialize)]
pub struct CommInfoReply {
    pub status: ReplyStatus,
    pub comms: Map<String, Value>,
}

#[derive(Debug, Clone, Serialize)]
pub struct CommClose {
    pub comm_id: String,
    pub data: Map<String, Value>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ShutdownReply {
    pub status: ReplyStatus,
    pub restart: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct InterruptReply {
    pub status: ReplyStatus,
}

/// `execute_reply`: how the cell ended, its count, and (after a cell that worked) the
/// values of the request's user expressions.
#[derive(Debug, Clone, Serialize)]
pub struct ExecuteReply {
    #[serde(flatten)]
    pub outcome: ExecuteOutcome,
    pub execution_count: u64,
    /// Absent from an aborted reply.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_expressions: Option<Map<String, Value>>,
}

/// The `status` of an `execute_reply` and what goes with it.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "status", rename_all = "lowercase")]
pub enum ExecuteOutcome {
    Ok {
        payload: Vec<PagePayload>,
    },
    Error(ErrorContent),
    /// Not run: a cell before it failed (`stop_on_error`).
    Aborted,
}

/// A payload that shows text in the frontend's pager (`:help`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PagePayload {
    pub source: &'static str,
    pub data: Map<String, Value>,
    pub start: u32,
}

impl PagePayload {
    pub fn plain_text(text: &str) -> PagePayload {
        let mut data = Map::new();
        data.insert("text/plain".into(), Value::String(text.to_owned()));
        PagePayload {
            source: "page",
            data,
            start: 0,
        }
    }
}

/// One user expression's value, as `user_expressions` holds it.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "status", rename_all = "lowercase")]
pub enum ExpressionValue {
    Ok {
        data: Map<String, Value>,
        metadata: Map<String, Value>,
    },
    Error(ErrorContent),
}

/// A reply whose status is `error`, for any request type.
#[derive(Debug, Clone, Serialize)]
pub struct ErrorReply {
    pub status: ReplyStatus,
    #[serde(flatten)]
    pub error: ErrorContent,
}

impl ErrorReply {
    pub fn new(error: ErrorContent) -> Self {
        ErrorReply {
            status: ReplyStatus::Error,
            error,
        }
    }
}

/// Serializes any content struct to JSON. Our structs hold only strings, numbers and JSON.
pub fn to_value<T: Serialize>(content: &T) -> Value {
    serde_json::to_value(content).unwrap_or(Value::Null)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn execute_request_defaults_like_ipykernel() {
        let req: ExecuteRequest = serde_json::from_value(json!({"code": "1"})).unwrap();
        assert!(!req.silent && req.store_history && req.stop_on_error && !req.allow_stdin);
    }

    #[test]
    fn execute_request_without_code_is_an_error() {
        assert!(serde_json::from_value::<ExecuteRequest>(json!({"silent": true})).is_err());
        assert!(serde_json::from_value::<ExecuteRequest>(json!({"code": 5})).is_err());
    }

    #[test]
    fn execute_replies_carry_their_status_beside_their_fields() {
        let error = ErrorContent {
            ename: "E".into(),
            evalue: "v".into(),
            traceback: Vec::new(),
        };
        let failed = ExecuteReply {
            outcome: ExecuteOutcome::Error(error.clone()),
            execution_count: 3,
            user_expressions: Some(Map::new()),
        };
        assert_eq!(
            to_value(&failed),
            json!({"status": "error", "ename": "E", "evalue": "v", "traceback": [],
                   "execution_count": 3, "user_expressions": {}})
        );
        let aborted = ExecuteReply {
            outcome: ExecuteOutcome::Aborted,
            execution_count: 3,
            user_expressions: None,
        };
        assert_eq!(
            to_value(&aborted),
            json!({"status": "aborted", "execution_count": 3})
        );
        let ok = ExecuteReply {
            outcome: ExecuteOutcome::Ok {
                payload: vec![PagePayload::plain_text("help")],
            },
            execution_count: 4,
            user_expressions: Some(Map::new()),
        };
        assert_eq!(
            to_value(&ok)["payload"],
            json!([{"source": "page", "data": {"text/plain": "help"}, "start": 0}])
        );
        assert_eq!(
            to_value(&ExpressionValue::Error(error))["status"],
            json!("error")
        );
    }

    #[test]
    fn error_reply_is_flat() {
        let reply = ErrorReply::new(ErrorContent {
            ename: "E".into(),
            evalue: "v".into(),
            traceback: vec!["t".into()],
        });
        assert_eq!(
            to_value(&reply),
            json!({"status": "error", "ename": "E", "evalue": "v", "traceback": ["t"]})
        );
    }
}
