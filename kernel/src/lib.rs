//! tandem: a Jupyter kernel for Rust, built for learning synchronous versus asynchronous
//! programming. Layers: `wire` (messages, signing), `server` (sockets, threads),
//! `handlers` (what each message does), `engine` (evcxr), `install` (kernelspec).

pub mod engine;
pub mod handlers;
pub mod install;
pub mod server;
pub mod wire;
