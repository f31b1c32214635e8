//! The heartbeat: a REP socket that echoes every ping straight back, on its own thread so
//! a busy cell never makes the client think the kernel died.

pub fn run(socket: zmq::Socket) {
    loop {
        match socket.recv_multipart(0) {
            Ok(frames) => {
                if let Err(error) = socket.send_multipart(frames, 0) {
                    log::warn!("heartbeat: send failed: {error}");
                }
            }
            Err(zmq::Error::ETERM) => return,
            Err(error) => log::warn!("heartbeat: receive failed: {error}"),
        }
    }
}
