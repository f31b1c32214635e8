//! A minimal ZeroMQ Jupyter client for integration tests: starts the real `tandem` binary
//! with a connection file and talks to it on its sockets, using tandem's own wire layer.

#![allow(dead_code)]

use serde_json::{json, Map, Value};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command};
use std::time::{Duration, Instant};
use tandem::wire::{Header, Message, Signer};

pub const KEY: &str = "a0436f6c-1916-498b-8eb9-e81ab9368e84";

pub struct Kernel {
    pub child: Child,
    pub shell: zmq::Socket,
    pub control: zmq::Socket,
    pub iopub: zmq::Socket,
    pub heartbeat: zmq::Socket,
    /// Raw socket on the shell port for sending hand-made frames.
    pub raw_shell: zmq::Socket,
    pub signer: Signer,
    _context: zmq::Context,
    dir: PathBuf,
}

/// A port free now and not handed to another test of this process: tests run in
/// parallel, and a port released by one call could otherwise be handed out again.
fn free_port() -> u16 {
    static HANDED_OUT: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    loop {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free port");
        let mut handed_out = HANDED_OUT.lock().unwrap_or_else(|e| e.into_inner());
        if !handed_out.contains(&port) {
            handed_out.push(port);
            return port;
        }
    }
}

/// A fresh folder for one test's files.
fn test_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "tandem-test-{}-{}",
        std::process::id(),
        uuid::Uuid::new_v4()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn connection_json(ports: &[u16]) -> Value {
    json!({
        "shell_port": ports[0], "iopub_port": ports[1], "stdin_port": ports[2],
        "control_port": ports[3], "hb_port": ports[4], "ip": "127.0.0.1",
        "key": KEY, "transport": "tcp", "signature_scheme": "hmac-sha256",
    })
}

/// A test folder with a connection file on fresh ports (changed by `change`), and the
/// command that runs the kernel on it: its own engine, in a private scratch folder of its
/// own, as any kernel. Returns (folder, ports, command).
fn kernel_command(change: impl FnOnce(&mut Value)) -> (PathBuf, Vec<u16>, Command) {
    let dir = test_dir();
    let ports: Vec<u16> = (0..5).map(|_| free_port()).collect();
    let mut connection = connection_json(&ports);
    change(&mut connection);
    let file = dir.join("connection.json");
    std::fs::write(&file, connection.to_string()).unwrap();
    let mut command = Command::new(env!("CARGO_BIN_EXE_tandem"));
    command
        .arg("kernel")
        .arg("--connection-file")
        .arg(&file)
        .env("TANDEM_STANDBY", "off");
    (dir, ports, command)
}

/// Runs the kernel on a connection file changed by `change` and waits for it to exit:
/// its exit status and what it wrote on stderr.
pub fn run_with_connection(change: impl FnOnce(&mut Value)) -> (std::process::ExitStatus, String) {
    let (dir, _, mut command) = kernel_command(change);
    let output = command.output().expect("running tandem");
    let _ = std::fs::remove_dir_all(dir);
    (
        output.status,
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

impl Kernel {
    pub fn start() -> Kernel {
        Kernel::start_with_env(&[])
    }

    /// A kernel whose process gets `env` on top of the test's environment.
    pub fn start_with_env(env: &[(&str, &str)]) -> Kernel {
        let (dir, ports, mut command) = kernel_command(|_| {});
        let child = command
            .envs(env.iter().copied())
            .spawn()
            .expect("starting tandem");
        let context = zmq::Context::new();
        let connect = |kind, port: u16| {
            let socket = context.socket(kind).unwrap();
            socket.set_linger(0).unwrap();
            socket.connect(&format!("tcp://127.0.0.1:{port}")).unwrap();
            socket
        };
        let identity = uuid::Uuid::new_v4().to_string();
        let shell = connect(zmq::DEALER, ports[0]);
        shell.set_identity(identity.as_bytes()).unwrap();
        let raw_shell = connect(zmq::DEALER, ports[0]);
        let iopub = connect(zmq::SUB, ports[1]);
        iopub.set_subscribe(b"").unwrap();
        let control = connect(zmq::DEALER, ports[3]);
        let heartbeat = connect(zmq::REQ, ports[4]);
        let kernel = Kernel {
            child,
            shell,
            control,
            iopub,
            heartbeat,
            raw_shell,
            signer: Signer::new(KEY),
            _context: context,
            dir,
        };
        // Wait until the kernel answers, so tests start from a serving kernel.
        let reply = kernel.request(&kernel.shell, "kernel_info_request", json!({}));
        assert_eq!(reply.content["status"], "ok");
        kernel
    }

    pub fn message(msg_type: &str, content: Value) -> Message {
        Message {
            identities: Vec::new(),
            header: Header {
                session: "test-session".into(),
                ..Header::new(msg_type)
            },
            parent_header: None,
            metadata: Map::new(),
            content,
            buffers: Vec::new(),
        }
    }

    /// Sends a request and returns its reply (other replies are skipped).
    pub fn request(&self, socket: &zmq::Socket, msg_type: &str, content: Value) -> Message {
        let message = Self::message(msg_type, content);
        socket
            .send_multipart(message.to_frames(&self.signer), 0)
            .unwrap();
        self.reply_to(socket, &message.header.msg_id, Duration::from_secs(120))
            .unwrap_or_else(|| panic!("no reply to {msg_type}"))
    }

    pub fn reply_to(
        &self,
        socket: &zmq::Socket,
        msg_id: &str,
        timeout: Duration,
    ) -> Option<Message> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() || socket.poll(zmq::POLLIN, left.as_millis() as i64).unwrap() == 0 {
                return None;
            }
            let frames = socket.recv_multipart(0).unwrap();
            let message = Message::from_frames(frames, &self.signer).expect("kernel signs replies");
            if message.parent_header.as_ref().map(|p| p.msg_id.as_str()) == Some(msg_id) {
                return Some(message);
            }
        }
    }

    /// Executes code and returns (reply, iopub messages for it up to idle).
    pub fn execute(&self, code: &str) -> (Message, Vec<Message>) {
        let message = Self::message("execute_request", json!({"code": code}));
        self.shell
            .send_multipart(message.to_frames(&self.signer), 0)
            .unwrap();
        let reply = self
            .reply_to(
                &self.shell,
                &message.header.msg_id,
                Duration::from_secs(300),
            )
            .expect("execute_reply");
        let outputs = self.iopub_until_idle(&message.header.msg_id);
        (reply, outputs)
    }

    pub fn iopub_until_idle(&self, msg_id: &str) -> Vec<Message> {
        let mut outputs = Vec::new();
        loop {
            assert!(
                self.iopub.poll(zmq::POLLIN, 60_000).unwrap() > 0,
                "iopub went quiet"
            );
            let frames = self.iopub.recv_multipart(0).unwrap();
            let message = Message::from_frames(frames, &self.signer).unwrap();
            if message.parent_header.as_ref().map(|p| p.msg_id.as_str()) != Some(msg_id) {
                continue;
            }
            let idle =
                message.header.msg_type == "status" && message.content["execution_state"] == "idle";
            outputs.push(message);
            if idle {
                return outputs;
            }
        }
    }

    /// Waits until the request's stdout has said `text` (the cell is running).
    pub fn iopub_until_stdout(&self, msg_id: &str, text: &str) {
        let mut said = String::new();
        while !said.contains(text) {
            assert!(
                self.iopub.poll(zmq::POLLIN, 120_000).unwrap() > 0,
                "iopub went quiet before {text:?}"
            );
            let frames = self.iopub.recv_multipart(0).unwrap();
            let message = Message::from_frames(frames, &self.signer).unwrap();
            if message.parent_header.as_ref().map(|p| p.msg_id.as_str()) == Some(msg_id) {
                said.push_str(&Self::stdout(std::slice::from_ref(&message)));
            }
        }
    }

    /// All stdout text in a list of iopub messages.
    pub fn stdout(outputs: &[Message]) -> String {
        outputs
            .iter()
            .filter(|m| m.header.msg_type == "stream" && m.content["name"] == "stdout")
            .filter_map(|m| m.content["text"].as_str())
            .collect()
    }

    pub fn scratch(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }
}

impl Drop for Kernel {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
