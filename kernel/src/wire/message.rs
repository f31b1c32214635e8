//! A Jupyter message and its ZeroMQ multipart form:
//! `[identities..., "<IDS|MSG>", signature, header, parent_header, metadata, content, buffers...]`.

use super::signing::Signer;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The protocol version tandem speaks.
pub const PROTOCOL_VERSION: &str = "5.3";

const DELIMITER: &[u8] = b"<IDS|MSG>";

/// Why a multipart message was refused. Each is logged and the message dropped.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum WireError {
    #[error("no <IDS|MSG> delimiter among {0} frames")]
    NoDelimiter(usize),
    #[error("{0} frames after the delimiter; at least 5 are needed")]
    TooFewFrames(usize),
    #[error("bad signature")]
    BadSignature,
    #[error("{frame} is not valid JSON: {reason}")]
    InvalidJson { frame: &'static str, reason: String },
    #[error("header is missing or has a malformed field: {0}")]
    BadHeader(String),
}

/// The header of a message. Unknown fields are kept so a parent header echoes intact.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Header {
    pub msg_id: String,
    pub session: String,
    pub username: String,
    pub date: String,
    pub msg_type: String,
    pub version: String,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl Header {
    /// A fresh header for a message this kernel sends.
    pub fn new(msg_type: &str) -> Self {
        Header {
            msg_id: uuid::Uuid::new_v4().to_string(),
            session: kernel_session().to_owned(),
            username: "tandem".to_owned(),
            date: now_iso8601(),
            msg_type: msg_type.to_owned(),
            version: PROTOCOL_VERSION.to_owned(),
            extra: Map::new(),
        }
    }
}

/// This kernel process's session id, sent in the header of every message it writes.
pub fn kernel_session() -> &'static str {
    static SESSION: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    SESSION.get_or_init(|| uuid::Uuid::new_v4().to_string())
}

/// ISO 8601 UTC timestamp with microseconds, as Jupyter clients expect.
pub fn now_iso8601() -> String {
    chrono::Utc::now()
        .format("%Y-%m-%dT%H:%M:%S%.6fZ")
        .to_string()
}

/// A decoded Jupyter message. `content` stays JSON here; handlers parse it into the typed
/// request they expect (see `content`).
#[derive(Debug, Clone)]
pub struct Message {
    pub identities: Vec<Vec<u8>>,
    pub header: Header,
    pub parent_header: Option<Header>,
    pub metadata: Map<String, Value>,
    pub content: Value,
    pub buffers: Vec<Vec<u8>>,
}

impl Message {
    /// Decodes and verifies multipart frames. Nothing in `frames` can make this panic.
    pub fn from_frames(frames: Vec<Vec<u8>>, signer: &Signer) -> Result<Message, WireError> {
        let total = frames.len();
        let delimiter = frames
            .iter()
            .position(|f| f == DELIMITER)
            .ok_or(WireError::NoDelimiter(total))?;
        let mut frames = frames;
        let after: Vec<Vec<u8>> = frames.split_off(delimiter + 1);
        frames.pop(); // the delimiter itself
        let identities = frames;
        if after.len() < 5 {
            return Err(WireError::TooFewFrames(after.len()));
        }
        let mut after = after.into_iter();
        let signature = after.next().unwrap_or_default();
        let header_raw = after.next().unwrap_or_default();
        let parent_raw = after.next().unwrap_or_default();
        let metadata_raw = after.next().unwrap_or_default();
        let content_raw = after.next().unwrap_or_default();
        let buffers: Vec<Vec<u8>> = after.collect();

        if !signer.verify(
            &signature,
            &[&header_raw, &parent_raw, &metadata_raw, &content_raw],
        ) {
            return Err(WireError::BadSignature);
        }

        let header_value = parse_json("header", &header_raw)?;
        let header: Header = serde_json::from_value(header_value)
            .map_err(|e| WireError::BadHeader(e.to_string()))?;
        let parent_value = parse_json("parent_header", &parent_raw)?;
        // An empty object means "no parent"; anything unreadable is treated the same way.
        let parent_header = match &parent_value {
            Value::Object(map) if map.is_empty() => None,
            _ => serde_json::from_value(parent_value).ok(),
        };
        let metadata = match parse_json("metadata", &metadata_raw).unwrap_or(Value::Null) {
            Value::Object(map) => map,
            _ => Map::new(),
        };
        // Unreadable content still leaves an identifiable request: handlers answer it with
        // an error reply instead of dropping it silently.
        let content = parse_json("content", &content_raw).unwrap_or(Value::Null);
        Ok(Message {
            identities,
            header,
            parent_header,
            metadata,
            content,
            buffers,
        })
    }

    /// Encodes and signs the message as multipart frames.
    pub fn to_frames(&self, signer: &Signer) -> Vec<Vec<u8>> {
        let header = to_json_bytes(&self.header);
        let parent = match &self.parent_header {
            Some(parent) => to_json_bytes(parent),
            None => b"{}".to_vec(),
        };
        let metadata = to_json_bytes(&self.metadata);
        let content = to_json_bytes(&self.content);
        let signature = signer.sign(&[&header, &parent, &metadata, &content]);
        let mut frames = self.identities.clone();
        frames.push(DELIMITER.to_vec());
        frames.push(signature.into_bytes());
        frames.push(header);
        frames.push(parent);
        frames.push(metadata);
        frames.push(content);
        frames.extend(self.buffers.iter().cloned());
        frames
    }

    /// A new message of `msg_type` whose parent is this message, sent to the same peer.
    pub fn child(&self, msg_type: &str, content: Value) -> Message {
        Message {
            identities: self.identities.clone(),
            header: Header::new(msg_type),
            parent_header: Some(self.header.clone()),
            metadata: Map::new(),
            content,
            buffers: Vec::new(),
        }
    }
}

fn parse_json(frame: &'static str, raw: &[u8]) -> Result<Value, WireError> {
    serde_json::from_slice(raw).map_err(|e| WireError::InvalidJson {
        frame,
        reason: e.to_string(),
    })
}

fn to_json_bytes<T: Serialize>(value: &T) -> Vec<u8> {
    // Headers, maps and JSON values always serialize.
    serde_json::to_vec(value).unwrap_or_else(|_| b"{}".to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn request(signer: &Signer) -> Vec<Vec<u8>> {
        let msg = Message {
            identities: vec![b"client-1".to_vec()],
            header: Header {
                session: "client-session".into(),
                ..Header::new("execute_request")
            },
            parent_header: None,
            metadata: Map::new(),
            content: json!({"code": "1 + 1"}),
            buffers: vec![b"raw".to_vec()],
        };
        msg.to_frames(signer)
    }

    #[test]
    fn round_trip_keeps_everything() {
        let signer = Signer::new("k");
        let msg = Message::from_frames(request(&signer), &signer).unwrap();
        assert_eq!(msg.identities, vec![b"client-1".to_vec()]);
        assert_eq!(msg.header.msg_type, "execute_request");
        assert_eq!(msg.content["code"], "1 + 1");
        assert_eq!(msg.buffers, vec![b"raw".to_vec()]);
        assert!(msg.parent_header.is_none());
    }

    #[test]
    fn child_message_carries_parent_and_identity() {
        let signer = Signer::new("k");
        let parent = Message::from_frames(request(&signer), &signer).unwrap();
        let child = parent.child("status", json!({"execution_state": "busy"}));
        assert_eq!(child.parent_header.as_ref(), Some(&parent.header));
        assert_eq!(child.identities, parent.identities);
        assert_eq!(child.header.session, kernel_session());
        assert_ne!(child.header.msg_id, parent.header.msg_id);
    }

    #[test]
    fn unknown_header_fields_survive_as_parent() {
        let signer = Signer::new("");
        let mut frames = request(&signer);
        let header_index = frames.len() - 5;
        let mut header: Value = serde_json::from_slice(&frames[header_index]).unwrap();
        header["subshell_id"] = json!("abc");
        frames[header_index] = serde_json::to_vec(&header).unwrap();
        let msg = Message::from_frames(frames, &signer).unwrap();
        let child = msg.child("status", json!({}));
        let echoed = serde_json::to_value(child.parent_header.unwrap()).unwrap();
        assert_eq!(echoed["subshell_id"], "abc");
    }

    #[test]
    fn tampered_content_is_rejected() {
        let signer = Signer::new("k");
        let mut frames = request(&signer);
        let content_index = frames.len() - 2;
        frames[content_index] = br#"{"code": "evil()"}"#.to_vec();
        assert_eq!(
            Message::from_frames(frames, &signer).unwrap_err(),
            WireError::BadSignature
        );
    }

    #[test]
    fn missing_signature_is_rejected_when_key_set() {
        let frames = request(&Signer::new(""));
        assert_eq!(
            Message::from_frames(frames, &Signer::new("k")).unwrap_err(),
            WireError::BadSignature
        );
    }

    #[test]
    fn garbage_is_rejected_without_panic() {
        let signer = Signer::new("");
        assert_eq!(
            Message::from_frames(vec![b"junk".to_vec()], &signer).unwrap_err(),
            WireError::NoDelimiter(1)
        );
        assert_eq!(
            Message::from_frames(vec![], &signer).unwrap_err(),
            WireError::NoDelimiter(0)
        );
        let short = vec![DELIMITER.to_vec(), b"".to_vec(), b"{}".to_vec()];
        assert_eq!(
            Message::from_frames(short, &signer).unwrap_err(),
            WireError::TooFewFrames(2)
        );
        let bad_json = vec![
            DELIMITER.to_vec(),
            b"".to_vec(),
            b"{not json".to_vec(),
            b"{}".to_vec(),
            b"{}".to_vec(),
            b"{}".to_vec(),
        ];
        assert!(matches!(
            Message::from_frames(bad_json, &signer).unwrap_err(),
            WireError::InvalidJson {
                frame: "header",
                ..
            }
        ));
        let no_type = vec![
            DELIMITER.to_vec(),
            b"".to_vec(),
            br#"{"msg_id": "1", "session": "s"}"#.to_vec(),
            b"{}".to_vec(),
            b"{}".to_vec(),
            b"{}".to_vec(),
        ];
        assert!(matches!(
            Message::from_frames(no_type, &signer).unwrap_err(),
            WireError::BadHeader(_)
        ));
        let binary = vec![
            DELIMITER.to_vec(),
            vec![0xff, 0xfe],
            vec![0xff; 9],
            b"{}".to_vec(),
            b"{}".to_vec(),
            b"{}".to_vec(),
        ];
        assert!(Message::from_frames(binary, &signer).is_err());
    }

    #[test]
    fn unreadable_content_keeps_the_request_identifiable() {
        let signer = Signer::new("k");
        let mut frames = request(&signer);
        let n = frames.len();
        frames[n - 2] = b"{broken".to_vec();
        let header = frames[n - 5].clone();
        let parent = frames[n - 4].clone();
        let metadata = frames[n - 3].clone();
        frames[n - 6] = signer
            .sign(&[&header, &parent, &metadata, b"{broken"])
            .into_bytes();
        let msg = Message::from_frames(frames, &signer).unwrap();
        assert_eq!(msg.header.msg_type, "execute_request");
        assert!(msg.content.is_null());
    }

    #[test]
    fn signature_is_hex_sha256() {
        let frames = request(&Signer::new("k"));
        let signature = &frames[2];
        assert_eq!(signature.len(), 64);
        assert!(signature.iter().all(|b| b.is_ascii_hexdigit()));
    }
}
