//! One RFC 8030 push request: `POST` to the subscription's endpoint over HTTP/1.1 (TLS for
//! `https`, checked against the system's roots), reading back only the status and
//! `Retry-After`. A push service answers with an empty or tiny body, so this small client
//! is all the node needs; it opens one connection per push (`Connection: close`).

use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use super::PushError;

/// How long one request may take, connecting included.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(20);
/// Most response-header bytes read.
const MAX_HEAD: usize = 16 << 10;

/// What a push request carries besides its body (RFC 8030 §5, RFC 8291 §4, RFC 8292 §3).
pub struct PushRequest<'a> {
    /// The subscription's endpoint.
    pub endpoint: &'a str,
    /// The `Authorization: vapid …` value.
    pub authorization: &'a str,
    /// `TTL`, seconds the push service keeps the message for an offline browser.
    pub ttl_secs: u32,
    /// `Urgency`: very-low, low, normal or high.
    pub urgency: &'a str,
    /// `Topic`: a later message with the same topic replaces a waiting one.
    pub topic: &'a str,
    /// The `aes128gcm` body.
    pub body: &'a [u8],
}

/// The push service's answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PushResponse {
    /// The HTTP status.
    pub status: u16,
    /// `Retry-After`, when given in seconds.
    pub retry_after: Option<Duration>,
}

/// Sends `request`; `tls` is used for `https` endpoints, `http` ones are refused unless
/// `allow_http` (a local push service in tests).
pub async fn post(request: &PushRequest<'_>, tls: &Arc<rustls::ClientConfig>, allow_http: bool) -> Result<PushResponse, PushError> {
    tokio::time::timeout(REQUEST_TIMEOUT, exchange(request, tls, allow_http))
        .await
        .map_err(|_| PushError::Unreachable("the push service did not answer in time"))?
}

async fn exchange(request: &PushRequest<'_>, tls: &Arc<rustls::ClientConfig>, allow_http: bool) -> Result<PushResponse, PushError> {
    let target = Target::parse(request.endpoint)?;
    let tcp = TcpStream::connect((target.host.as_str(), target.port))
        .await
        .map_err(|_| PushError::Unreachable("could not connect to the push service"))?;
    let head = head(request, &target);
    if target.tls {
        let name = ServerName::try_from(target.host.clone()).map_err(|_| PushError::Endpoint)?;
        let stream = TlsConnector::from(tls.clone())
            .connect(name, tcp)
            .await
            .map_err(|_| PushError::Unreachable("the TLS handshake with the push service failed"))?;
        round_trip(stream, &head, request.body).await
    } else if allow_http {
        round_trip(tcp, &head, request.body).await
    } else {
        Err(PushError::Endpoint)
    }
}

/// The request line and headers.
fn head(request: &PushRequest<'_>, target: &Target) -> String {
    format!(
        "POST {path} HTTP/1.1\r\nHost: {host}\r\nTTL: {ttl}\r\nUrgency: {urgency}\r\nTopic: {topic}\r\n\
         Content-Encoding: aes128gcm\r\nContent-Type: application/octet-stream\r\nContent-Length: {len}\r\n\
         Authorization: {auth}\r\nConnection: close\r\n\r\n",
        path = target.path,
        host = target.authority,
        ttl = request.ttl_secs,
        urgency = request.urgency,
        topic = request.topic,
        len = request.body.len(),
        auth = request.authorization,
    )
}

async fn round_trip<S: AsyncRead + AsyncWrite + Unpin>(mut stream: S, head: &str, body: &[u8]) -> Result<PushResponse, PushError> {
    let failed = |_| PushError::Unreachable("the connection to the push service failed");
    stream.write_all(head.as_bytes()).await.map_err(failed)?;
    stream.write_all(body).await.map_err(failed)?;
    stream.flush().await.map_err(failed)?;
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = stream.read(&mut chunk).await.map_err(failed)?;
        if n == 0 || buf.len() > MAX_HEAD {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    parse_response(&buf)
}

/// The status and `Retry-After` of a response head.
fn parse_response(head: &[u8]) -> Result<PushResponse, PushError> {
    let text = String::from_utf8_lossy(head);
    let mut lines = text.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.strip_prefix("HTTP/1."))
        .and_then(|l| l.get(2..5))
        .and_then(|s| s.parse::<u16>().ok())
        .ok_or(PushError::Unreachable("the push service's answer was not HTTP"))?;
    let retry_after = lines
        .take_while(|l| !l.is_empty())
        .filter_map(|l| l.split_once(':'))
        .find(|(name, _)| name.trim().eq_ignore_ascii_case("retry-after"))
        .and_then(|(_, v)| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs);
    Ok(PushResponse { status, retry_after })
}

/// Where a request goes.
struct Target {
    tls: bool,
    host: String,
    port: u16,
    authority: String,
    path: String,
}

impl Target {
    fn parse(endpoint: &str) -> Result<Target, PushError> {
        if endpoint.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(PushError::Endpoint);
        }
        let (scheme, rest) = endpoint.split_once("://").ok_or(PushError::Endpoint)?;
        let tls = match scheme.to_ascii_lowercase().as_str() {
            "https" => true,
            "http" => false,
            _ => return Err(PushError::Endpoint),
        };
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        let path = path.split('#').next().unwrap_or("/");
        if authority.is_empty() || authority.contains('@') {
            return Err(PushError::Endpoint);
        }
        let default_port = if tls { 443 } else { 80 };
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let (host, after) = v6.split_once(']').ok_or(PushError::Endpoint)?;
            let port = match after.strip_prefix(':') {
                Some(p) => p.parse().map_err(|_| PushError::Endpoint)?,
                None => default_port,
            };
            (host.to_owned(), port)
        } else {
            match authority.rsplit_once(':') {
                Some((h, p)) => (h.to_owned(), p.parse().map_err(|_| PushError::Endpoint)?),
                None => (authority.to_owned(), default_port),
            }
        };
        Ok(Target { tls, host, port, authority: authority.to_owned(), path: path.to_owned() })
    }
}

/// The TLS settings for push services: the system's root certificates.
pub fn tls_config() -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    let found = rustls_native_certs::load_native_certs();
    let (added, _) = roots.add_parsable_certificates(found.certs);
    if added == 0 {
        tracing::warn!("no system root certificates found: pushes to https push services will fail");
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map(|b| b.with_root_certificates(roots).with_no_client_auth())
        .unwrap_or_else(|_| unreachable!("the ring provider supports the default protocol versions"));
    Arc::new(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_and_answers_are_read() {
        let t = Target::parse("https://fcm.googleapis.com/fcm/send/abc:def").expect("endpoint");
        assert!(t.tls);
        assert_eq!((t.host.as_str(), t.port, t.path.as_str()), ("fcm.googleapis.com", 443, "/fcm/send/abc:def"));
        let t = Target::parse("http://127.0.0.1:9000").expect("endpoint");
        assert_eq!((t.host.as_str(), t.port, t.path.as_str(), t.tls), ("127.0.0.1", 9000, "/", false));
        let t = Target::parse("https://[::1]:8443/p").expect("endpoint");
        assert_eq!((t.host.as_str(), t.port), ("::1", 8443));
        assert!(Target::parse("https://a b/").is_err());
        assert!(Target::parse("https://x/a\r\nInjected: 1").is_err());
        assert!(Target::parse("file:///etc/passwd").is_err());

        let r = parse_response(b"HTTP/1.1 429 Too Many Requests\r\nretry-after: 30\r\n\r\n").expect("answer");
        assert_eq!(r, PushResponse { status: 429, retry_after: Some(Duration::from_secs(30)) });
        assert_eq!(parse_response(b"HTTP/1.1 201 Created\r\n\r\n").expect("answer").status, 201);
        assert!(parse_response(b"garbage").is_err());
    }
}
