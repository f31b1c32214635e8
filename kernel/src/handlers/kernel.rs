//! One kernel, assembled: the sockets of a connection file, served by this core's shell
//! and control handlers around one engine. `tandem kernel` and a standby that is handed a
//! connection file both start here.

use super::{ControlHandlers, ShellHandlers};
use crate::engine::{Interrupter, Starting};
use crate::server::{self, Parent, ShutdownSignal};
use crate::wire::{ConnectionInfo, Signer};
use anyhow::Result;
use std::sync::Arc;

/// Serves `connection` until the kernel is shut down (or its parent is gone). `engine`
/// starts the engine `interrupter` is attached to; it is called once the sockets are
/// bound, with the signal that stops the kernel. `origin` ends the log line that says the
/// kernel is serving.
pub fn serve(
    connection: &ConnectionInfo,
    parent: Parent,
    origin: &str,
    interrupter: Arc<Interrupter>,
    engine: impl FnOnce(&ShutdownSignal) -> Result<Starting>,
) -> Result<()> {
    let sockets = server::Sockets::bind(connection)?;
    log::info!(
        "tandem {} serving on {} ({}){origin}",
        env!("CARGO_PKG_VERSION"),
        connection.ip,
        connection.transport,
    );
    server::serve(
        sockets,
        Signer::new(&connection.key),
        parent,
        |iopub, shutdown| {
            let engine = engine(&shutdown);
            let shell =
                ShellHandlers::new(iopub.clone(), shutdown.clone(), engine, interrupter.clone());
            let control = ControlHandlers::new(iopub, interrupter.clone(), shutdown);
            server::Handlers {
                shell,
                control,
                stop: Box::new(move || interrupter.kill_engine()),
            }
        },
    )
}
