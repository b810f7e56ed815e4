//! Which nodes the gateway talks to and how it trusts them: `--node HOST:PORT` addresses,
//! and node certificates pinned by SHA-256 (`--node-fingerprint`, or the hash of a
//! `--node-cert` file read again on every connection attempt).

use std::path::PathBuf;

use sha2::{Digest, Sha256};

use crate::config::Config;
use crate::error::GatewayError;

/// Pins node certificates: fixed fingerprints plus the hashes of certificate files, read
/// again on every connection attempt (a node may regenerate its certificate).
#[derive(Clone, Debug)]
pub(super) struct NodeTrust {
    pins: Vec<[u8; 32]>,
    cert_files: Vec<PathBuf>,
}

impl NodeTrust {
    /// The pins of `--node-fingerprint` (64 hex digits each) and the `--node-cert` files.
    pub(super) fn from_config(config: &Config) -> Result<Self, GatewayError> {
        let pins = config
            .node_fingerprints
            .iter()
            .map(|f| {
                hex::decode(f.trim())
                    .ok()
                    .and_then(|v| <[u8; 32]>::try_from(v).ok())
                    .ok_or_else(|| GatewayError::BadFingerprint(f.clone()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(NodeTrust { pins, cert_files: config.node_cert_files() })
    }

    /// The SHA-256 hashes a node certificate may have now.
    pub(super) fn current(&self) -> Result<Vec<[u8; 32]>, String> {
        let mut pins = self.pins.clone();
        let mut unreadable = Vec::new();
        for f in &self.cert_files {
            match std::fs::read(f) {
                Ok(der) => pins.push(Sha256::digest(&der).into()),
                Err(e) => unreadable.push(format!("{}: {e}", f.display())),
            }
        }
        if pins.is_empty() {
            return Err(format!("no node certificate to trust ({})", unreadable.join("; ")));
        }
        Ok(pins)
    }
}

/// Checks `HOST:PORT` and returns the host (the TLS server name; brackets removed).
pub(super) fn parse_node(s: &str) -> Result<String, GatewayError> {
    let bad = || GatewayError::BadNode(s.to_string());
    let (host, port) = s.rsplit_once(':').ok_or_else(bad)?;
    port.parse::<u16>().map_err(|_| bad())?;
    let host = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host);
    if host.is_empty() || host.contains(['/', ' ']) {
        return Err(bad());
    }
    Ok(host.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_addresses_are_host_and_port() {
        assert_eq!(parse_node("127.0.0.1:7443").unwrap(), "127.0.0.1");
        assert_eq!(parse_node("[::1]:7443").unwrap(), "::1");
        assert_eq!(parse_node("node1.example:7443").unwrap(), "node1.example");
        for bad in ["node1.example", ":7443", "a:b", "a:70000"] {
            assert!(parse_node(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn missing_certificate_files_leave_nothing_to_trust() {
        let t = NodeTrust { pins: vec![], cert_files: vec![PathBuf::from("/nonexistent/cert.der")] };
        let e = t.current().unwrap_err();
        assert!(e.contains("/nonexistent/cert.der"), "{e}");
        let t = NodeTrust { pins: vec![[7; 32]], cert_files: vec![PathBuf::from("/nonexistent/cert.der")] };
        assert_eq!(t.current().unwrap(), vec![[7; 32]]);
    }
}
