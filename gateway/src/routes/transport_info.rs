//! `GET /transport.json`: where a page finds WebTransport, and which certificate hashes to
//! trust for it.
//!
//! ```json
//! { "webtransport": { "url": "https://127.0.0.1:8443/wt", "certHashes": ["<base64 SHA-256>"] } }
//! ```
//!
//! `certHashes` lists the development certificate and, while a renewal is announced, its
//! successor (see [`crate::tls`]); it is empty with a configured `--tls-cert`, which pages
//! trust the usual way. `webtransport` is `null` when the gateway serves no HTTP/3.
//!
//! The URL's host is the one the page used (its `Host`), on the HTTPS port — except that
//! `localhost` becomes the listener's loopback address, since browsers may resolve
//! `localhost` to `::1` while the gateway listens on `127.0.0.1`. `--webtransport-url`
//! replaces it (behind a port mapping or load balancer).

use std::net::{IpAddr, SocketAddr};

use axum::extract::State;
use axum::http::{header, HeaderMap, Uri};
use axum::routing::get;
use axum::{Json, Router};
use base64::Engine as _;

use crate::session::webtransport;
use crate::state::AppState;

/// The body of `/transport.json`.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TransportInfo {
    /// The WebTransport endpoint, or `None` when the gateway serves no HTTP/3.
    pub webtransport: Option<WebTransportInfo>,
}

/// Where WebTransport sessions go.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WebTransportInfo {
    /// `https://HOST:PORT/wt`.
    pub url: String,
    /// Base64 SHA-256 of each certificate to trust by hash (`serverCertificateHashes`);
    /// empty for a certificate from a public CA.
    pub cert_hashes: Vec<String>,
}

/// The `/transport.json` route.
pub(crate) fn routes(state: &AppState) -> Router {
    Router::new().route("/transport.json", get(transport_json)).with_state(state.clone())
}

async fn transport_json(State(state): State<AppState>, headers: HeaderMap, uri: Uri) -> Json<TransportInfo> {
    Json(TransportInfo { webtransport: webtransport_info(&state, &headers, &uri) })
}

fn webtransport_info(state: &AppState, headers: &HeaderMap, uri: &Uri) -> Option<WebTransportInfo> {
    let listeners = state.listeners();
    let https = listeners.https.filter(|_| listeners.http3)?;
    let cert_hashes = state
        .certificates()
        .map(|c| c.info().published_hashes())
        .unwrap_or_default()
        .iter()
        .map(|h| base64::engine::general_purpose::STANDARD.encode(h))
        .collect();
    let url = match state.webtransport_url() {
        Some(u) => u.to_string(),
        None => {
            let host = headers
                .get(header::HOST)
                .and_then(|h| h.to_str().ok())
                .map(str::to_string)
                .or_else(|| uri.authority().map(|a| a.to_string()));
            format!("https://{}:{}{}", url_host(host.as_deref(), https), https.port(), webtransport::PATH)
        }
    };
    Some(WebTransportInfo { url, cert_hashes })
}

/// The host part of the WebTransport URL for a page that used `host` (`name[:port]`).
fn url_host(host: Option<&str>, https: SocketAddr) -> String {
    let literal = |ip: IpAddr| match ip {
        IpAddr::V6(v6) => format!("[{v6}]"),
        v4 => v4.to_string(),
    };
    let listen_ip = if https.ip().is_unspecified() { IpAddr::from([127, 0, 0, 1]) } else { https.ip() };
    let name = host.map(|h| {
        if h.starts_with('[') {
            h.split_inclusive(']').next().unwrap_or(h).to_string()
        } else {
            h.rsplit_once(':').map_or(h, |(n, _)| n).to_string()
        }
    });
    match name {
        Some(n) if !n.is_empty() && !n.eq_ignore_ascii_case("localhost") => n,
        Some(_) if https.ip().is_loopback() => literal(https.ip()),
        Some(n) if !n.is_empty() => n,
        _ => literal(listen_ip),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_url_keeps_the_page_host_but_not_localhost() {
        let https: SocketAddr = "127.0.0.1:8443".parse().unwrap();
        assert_eq!(url_host(Some("127.0.0.1:8080"), https), "127.0.0.1");
        assert_eq!(url_host(Some("chat.example"), https), "chat.example");
        assert_eq!(url_host(Some("localhost:8080"), https), "127.0.0.1");
        assert_eq!(url_host(Some("[::1]:8080"), "[::1]:8443".parse().unwrap()), "[::1]");
        assert_eq!(url_host(Some("localhost"), "[::1]:8443".parse().unwrap()), "[::1]");
        assert_eq!(url_host(None, "0.0.0.0:8443".parse().unwrap()), "127.0.0.1");
        assert_eq!(url_host(Some("localhost:8080"), "0.0.0.0:8443".parse().unwrap()), "localhost");
    }
}
