//! The connection file a Jupyter client writes before starting a kernel: transport, ip,
//! the five ports, and the signing key and scheme.

use anyhow::{bail, Context, Result};
use serde::Deserialize;
use std::path::Path;

/// Contents of a Jupyter connection file (`kernel-*.json`).
#[derive(Debug, Clone, Deserialize)]
pub struct ConnectionInfo {
    pub transport: String,
    pub ip: String,
    pub shell_port: u16,
    pub iopub_port: u16,
    pub stdin_port: u16,
    pub control_port: u16,
    pub hb_port: u16,
    #[serde(default)]
    pub key: String,
    #[serde(default = "default_signature_scheme")]
    pub signature_scheme: String,
}

fn default_signature_scheme() -> String {
    "hmac-sha256".to_owned()
}

impl ConnectionInfo {
    /// Reads and checks a connection file.
    pub fn from_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading connection file {}", path.display()))?;
        Self::from_json(&text).with_context(|| format!("in connection file {}", path.display()))
    }

    /// Parses connection-file JSON and rejects what the kernel cannot honour.
    pub fn from_json(text: &str) -> Result<Self> {
        let info: ConnectionInfo = serde_json::from_str(text).context("invalid JSON")?;
        if info.signature_scheme != "hmac-sha256" {
            bail!(
                "unsupported signature_scheme {:?} (tandem supports hmac-sha256)",
                info.signature_scheme
            );
        }
        if info.transport != "tcp" && info.transport != "ipc" {
            bail!("unsupported transport {:?}", info.transport);
        }
        Ok(info)
    }

    /// Refuses a connection file without a key, unless `TANDEM_ALLOW_UNSIGNED=1`: then no
    /// message is signed, and any program on this machine that reaches the ports could run
    /// code as this user. Allowed, it is said loudly in the log.
    pub fn refuse_empty_key(&self) -> Result<()> {
        if !self.key.is_empty() {
            return Ok(());
        }
        let allowed = std::env::var("TANDEM_ALLOW_UNSIGNED")
            .is_ok_and(|value| matches!(value.trim(), "1" | "yes" | "true" | "on"));
        if !allowed {
            bail!(
                "the connection file has an empty key: messages would not be signed, and \
                 any program on this machine that reaches the ports could run code as you \
                 (set TANDEM_ALLOW_UNSIGNED=1 to run so anyway)"
            );
        }
        log::warn!(
            "UNSIGNED: the connection file has an empty key and TANDEM_ALLOW_UNSIGNED is set; \
             any program that reaches this kernel's ports can run code as this user"
        );
        Ok(())
    }

    /// The ZeroMQ endpoint for one port, e.g. `tcp://127.0.0.1:5555` or `ipc://path-5555`.
    pub fn endpoint(&self, port: u16) -> String {
        if self.transport == "ipc" {
            format!("ipc://{}-{}", self.ip, port)
        } else {
            format!("tcp://{}:{}", self.ip, port)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = r#"{"shell_port": 1, "iopub_port": 2, "stdin_port": 3,
        "control_port": 4, "hb_port": 5, "ip": "127.0.0.1", "key": "k",
        "transport": "tcp", "signature_scheme": "hmac-sha256", "kernel_name": "tandem"}"#;

    #[test]
    fn parses_tcp_connection_file() {
        let info = ConnectionInfo::from_json(SAMPLE).unwrap();
        assert_eq!(info.endpoint(info.shell_port), "tcp://127.0.0.1:1");
        assert_eq!(info.key, "k");
    }

    #[test]
    fn ipc_endpoints_use_ip_as_path_prefix() {
        let text = SAMPLE
            .replace("\"tcp\"", "\"ipc\"")
            .replace("127.0.0.1", "/tmp/k");
        let info = ConnectionInfo::from_json(&text).unwrap();
        assert_eq!(info.endpoint(info.hb_port), "ipc:///tmp/k-5");
    }

    #[test]
    fn rejects_unknown_signature_scheme() {
        let text = SAMPLE.replace("hmac-sha256", "hmac-md5");
        let err = ConnectionInfo::from_json(&text).unwrap_err();
        assert!(format!("{err:#}").contains("hmac-md5"));
    }

    #[test]
    fn rejects_missing_ports() {
        assert!(ConnectionInfo::from_json(r#"{"ip": "127.0.0.1"}"#).is_err());
    }
}
