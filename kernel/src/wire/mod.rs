//! The messaging layer: connection files, HMAC signing, and the translation between
//! ZeroMQ multipart frames and typed Jupyter messages. Knows nothing of Rust or sockets.

pub mod connection;
pub mod content;
pub mod message;
pub mod signing;

pub use connection::ConnectionInfo;
pub use message::{now_iso8601, Header, Message, PROTOCOL_VERSION};
pub use signing::Signer;
