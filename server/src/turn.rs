//! The ICE servers a node hands its clients for calls: STUN and TURN URLs, and short-lived
//! TURN credentials in the shared-secret scheme TURN servers implement (coturn's
//! `use-auth-secret`, the "TURN REST API" draft):
//!
//! ```text
//! username   = "<expiry, Unix seconds>:<who>"
//! credential = base64(HMAC-SHA1(secret, username))
//! ```
//!
//! The TURN server, holding the same secret, recomputes the credential from the username and
//! refuses it once the expiry has passed; the node stores nothing. `who` is the caller's log
//! pseudonym (`log_key.rs`), so the TURN server's logs do not name people either.

use base64::Engine as _;
use hmac::{Hmac, Mac as _};
use sha1::Sha1;

/// One entry of `RTCConfiguration.iceServers`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IceServer {
    /// `stun:` or `turn:`/`turns:` URLs.
    pub urls: Vec<String>,
    /// The TURN username ("" for STUN).
    pub username: String,
    /// The TURN credential ("" for STUN).
    pub credential: String,
}

/// What the node's flags say about ICE servers.
#[derive(Clone, Debug, Default)]
pub struct IceSettings {
    /// STUN URLs handed out as they are.
    pub stun_urls: Vec<String>,
    /// TURN URLs, handed out with credentials (only when `secret` is set).
    pub turn_urls: Vec<String>,
    /// The secret shared with the TURN server.
    pub secret: Option<String>,
    /// How long a credential is valid, in seconds.
    pub ttl_secs: u64,
}

impl IceSettings {
    /// The servers for the user whose pseudonym is `who` at `now_secs`, and when their
    /// credentials expire (Unix seconds; 0 when there are none).
    pub fn servers(&self, who: &str, now_secs: u64) -> (Vec<IceServer>, u64) {
        let mut out = Vec::new();
        if !self.stun_urls.is_empty() {
            out.push(IceServer { urls: self.stun_urls.clone(), username: String::new(), credential: String::new() });
        }
        let mut expiry = 0;
        if let (Some(secret), false) = (&self.secret, self.turn_urls.is_empty()) {
            expiry = now_secs.saturating_add(self.ttl_secs.max(1));
            let (username, credential) = turn_credential(secret.as_bytes(), expiry, who);
            out.push(IceServer { urls: self.turn_urls.clone(), username, credential });
        }
        (out, expiry)
    }
}

/// The TURN REST username and credential for `who`, valid until `expiry` (Unix seconds).
pub fn turn_credential(secret: &[u8], expiry: u64, who: &str) -> (String, String) {
    let username = format!("{expiry}:{who}");
    let mut mac = <Hmac<Sha1>>::new_from_slice(secret).expect("HMAC takes any key length");
    mac.update(username.as_bytes());
    let credential = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    (username, credential)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_are_the_hmac_sha1_coturn_recomputes() {
        // Known answer, computed independently:
        // printf '%s' '1700000000:0123abcd' | openssl dgst -sha1 -hmac 'north-secret' -binary | base64
        let (user, cred) = turn_credential(b"north-secret", 1_700_000_000, "0123abcd");
        assert_eq!(user, "1700000000:0123abcd");
        assert_eq!(cred, "tVHta/gPeu1/zl8UboTaaeOz67w=");
    }

    #[test]
    fn servers_carry_credentials_only_for_turn_and_only_with_a_secret() {
        let mut s = IceSettings {
            stun_urls: vec!["stun:turn.example.org:3478".into()],
            turn_urls: vec!["turn:turn.example.org:3478?transport=udp".into()],
            secret: None,
            ttl_secs: 600,
        };
        let (servers, expiry) = s.servers("p", 1000);
        assert_eq!((servers.len(), expiry), (1, 0), "no secret: STUN only");
        s.secret = Some("k".into());
        let (servers, expiry) = s.servers("p", 1000);
        assert_eq!(expiry, 1600);
        assert_eq!(servers[1].username, "1600:p");
        assert_eq!(servers[1].credential, turn_credential(b"k", 1600, "p").1);
        assert!(servers[0].username.is_empty());
    }
}
