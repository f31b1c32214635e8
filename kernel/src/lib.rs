//! tandem: a Jupyter kernel for Rust, built for learning synchronous versus asynchronous
//! programming. Layers: `wire` (messages, signing), `server` (sockets, threads),
//! `handlers` (what each message does), `engine` (evcxr), `timing` (compile vs run,
//! the footer), `presentation` (a finished cell's value, pictures and error, shown alike
//! by the kernel and `tandem run`), `install` (the kernelspec; `--system`, for every user),
//! `layout` (where tandem's own files are: its checkout or a system install), `lab` (the
//! learner's one command), `notebook` (`tandem run`: a notebook in the terminal, no
//! Jupyter), `standby` (a kernel started ahead of time, handed to the next notebook),
//! `private_dirs` (folders only this user can reach, where no one else's cargo
//! configuration is read). ARCHITECTURE.md draws how they fit.

pub mod engine;
pub mod handlers;
pub mod install;
pub mod lab;
pub mod layout;
pub mod notebook;
pub mod presentation;
pub mod private_dirs;
pub mod server;
pub mod standby;
pub mod timing;
pub mod wire;
