//! Comms: tandem registers no comm targets yet, so opens are refused politely with a
//! `comm_close`, and messages to unknown comms are logged.

use super::{Handled, Reply, Request, ShellHandlers};
use crate::wire::content::{
    self, CommClose, CommInfoReply, CommInfoRequest, CommOpen, ReplyStatus,
};
use serde_json::Map;

pub fn info(_: &mut ShellHandlers, request: &mut Request) -> Handled {
    let _wanted: CommInfoRequest = request.content()?;
    Ok(Some(Reply::new(&CommInfoReply {
        status: ReplyStatus::Ok,
        comms: Map::new(),
    })))
}

pub fn open(_: &mut ShellHandlers, request: &mut Request) -> Handled {
    let open: CommOpen = request.content()?;
    log::warn!(
        "no comm target {:?} in tandem; closing comm {}",
        open.target_name,
        open.comm_id
    );
    request.publish(
        "comm_close",
        content::to_value(&CommClose {
            comm_id: open.comm_id,
            data: Map::new(),
        }),
    );
    Ok(None)
}

pub fn message(_: &mut ShellHandlers, request: &mut Request) -> Handled {
    log::warn!(
        "comm_msg for a comm tandem does not have: {}",
        request.message.content
    );
    Ok(None)
}

pub fn close(_: &mut ShellHandlers, _: &mut Request) -> Handled {
    Ok(None)
}
