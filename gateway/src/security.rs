//! The gateway's browser-facing policy, shared by the routes and the session adapters:
//! security headers on every response (the WebTransport `CONNECT` answers included), and the
//! `Origin` check that guards `/ws` and `/wt`. It depends on nothing but [`crate::error`].
//!
//! The Content-Security-Policy allows no inline script and no `eval` (only
//! `'wasm-unsafe-eval'`, which WebAssembly compilation needs); `frame-ancestors` is the one
//! part a deployment may change (`--frame-ancestors`), for an embeddable widget.
//!
//! The `Origin` check stops other web sites from opening sessions with a visitor's browser
//! (cross-site WebSocket hijacking; WebTransport `CONNECT` requests carry an `Origin` too): a
//! session is accepted only from the gateway's own origins — the host of the request (the
//! `Host` header, or the `:authority` in HTTP/2 and HTTP/3) on the request's port or on any
//! port the gateway itself listens on, so a page from `http://127.0.0.1:8080` may open
//! WebTransport to `https://127.0.0.1:8443/wt` — or one listed with `--allow-origin`. A
//! request without any `Origin` header is not from a web page (browsers always send one on a
//! WebSocket or WebTransport session) and is accepted: a program can claim any origin it
//! likes anyway.

use axum::http::{header, HeaderMap, HeaderName, HeaderValue, Uri};
use tower_http::set_header::SetResponseHeaderLayer;

use crate::error::GatewayError;

/// `Cache-Control` of every response but a found content-hashed asset (see
/// [`crate::assets`]), refusals given outside the router included.
pub const NO_CACHE: &str = "no-cache";

/// The Content-Security-Policy for the given `frame-ancestors` sources.
pub fn content_security_policy(frame_ancestors: &str) -> String {
    format!(
        "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; style-src 'self'; \
         img-src 'self' blob: data:; connect-src 'self' ws: wss: https:; worker-src 'self'; \
         manifest-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; \
         frame-ancestors {frame_ancestors}"
    )
}

/// The headers every response carries.
pub(crate) fn headers(frame_ancestors: &str) -> Result<Vec<(HeaderName, HeaderValue)>, GatewayError> {
    let bad = || GatewayError::BadFrameAncestors(frame_ancestors.to_string());
    if frame_ancestors.trim().is_empty() || frame_ancestors.contains([';', ',']) {
        return Err(bad());
    }
    let csp = HeaderValue::from_str(&content_security_policy(frame_ancestors.trim())).map_err(|_| bad())?;
    Ok(vec![
        (header::CONTENT_SECURITY_POLICY, csp),
        (header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")),
        (header::REFERRER_POLICY, HeaderValue::from_static("no-referrer")),
        (HeaderName::from_static("cross-origin-opener-policy"), HeaderValue::from_static("same-origin")),
    ])
}

/// Layers that set `headers` on every response, replacing any a handler set.
pub(crate) fn header_layers(
    headers: Vec<(HeaderName, HeaderValue)>,
) -> impl Iterator<Item = SetResponseHeaderLayer<HeaderValue>> {
    headers.into_iter().map(|(name, value)| SetResponseHeaderLayer::overriding(name, value))
}

/// An origin reduced to what browsers compare: scheme, host and port.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Origin {
    scheme: Scheme,
    host: String,
    port: u16,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Scheme {
    Http,
    Https,
}

impl Scheme {
    fn default_port(self) -> u16 {
        match self {
            Scheme::Http => 80,
            Scheme::Https => 443,
        }
    }
}

impl Origin {
    /// Parses `scheme://host[:port]` (a trailing `/` is tolerated, for flags).
    pub(crate) fn parse(s: &str) -> Option<Origin> {
        let (scheme, rest) = s.trim().split_once("://")?;
        let scheme = match scheme.to_ascii_lowercase().as_str() {
            "http" => Scheme::Http,
            "https" => Scheme::Https,
            _ => return None,
        };
        let authority = rest.strip_suffix('/').unwrap_or(rest);
        if authority.contains(['/', '?', '#', '@']) {
            return None;
        }
        let (host, port) = split_authority(authority)?;
        Some(Origin { scheme, host, port: port.unwrap_or(scheme.default_port()) })
    }
}

/// Splits `host[:port]` (IPv6 literals in brackets); the host is lower-cased.
fn split_authority(authority: &str) -> Option<(String, Option<u16>)> {
    let (host, port) = if let Some(rest) = authority.strip_prefix('[') {
        let (h, after) = rest.split_once(']')?;
        let port = match after {
            "" => None,
            p => Some(p.strip_prefix(':')?.parse().ok()?),
        };
        (format!("[{}]", h.to_ascii_lowercase()), port)
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h.to_ascii_lowercase(), Some(p.parse().ok()?)),
            None => (authority.to_ascii_lowercase(), None),
        }
    };
    if host.is_empty() || host == "[]" {
        return None;
    }
    Some((host, port))
}

/// Why a WebSocket was refused by the origin check.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum OriginRefusal {
    /// `Origin` names another site (or is `null` or malformed).
    Foreign,
}

/// Which origins may open sessions.
#[derive(Clone, Debug, Default)]
pub(crate) struct OriginPolicy {
    allowed: Vec<Origin>,
}

impl OriginPolicy {
    /// A policy accepting the gateway's own origin and `allowed`.
    pub(crate) fn new(allowed: &[String]) -> Result<Self, GatewayError> {
        let allowed = allowed
            .iter()
            .map(|a| Origin::parse(a).ok_or_else(|| GatewayError::BadOrigin(a.clone())))
            .collect::<Result<_, _>>()?;
        Ok(OriginPolicy { allowed })
    }

    /// Checks the `Origin` of a request against its own `Host` (or URI authority, in HTTP/2
    /// and HTTP/3) on its own port or one of `own_ports`, and the allowed list.
    pub(crate) fn check(&self, headers: &HeaderMap, uri: &Uri, own_ports: &[u16]) -> Result<(), OriginRefusal> {
        let Some(origin) = headers.get(header::ORIGIN) else { return Ok(()) };
        let origin = origin.to_str().ok().and_then(Origin::parse).ok_or(OriginRefusal::Foreign)?;
        if self.allowed.contains(&origin) {
            return Ok(());
        }
        let host = headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .map(str::to_string)
            .or_else(|| uri.authority().map(|a| a.to_string()));
        let own = host.as_deref().and_then(split_authority);
        match own {
            Some((host, port))
                if host == origin.host
                    && (port.unwrap_or(origin.scheme.default_port()) == origin.port
                        || own_ports.contains(&origin.port)) =>
            {
                Ok(())
            }
            _ => Err(OriginRefusal::Foreign),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(origin: Option<&str>, host: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, HeaderValue::from_str(host).unwrap());
        if let Some(o) = origin {
            h.insert(header::ORIGIN, HeaderValue::from_str(o).unwrap());
        }
        h
    }

    #[test]
    fn own_origin_is_accepted_with_or_without_default_ports() {
        let p = OriginPolicy::new(&[]).unwrap();
        let uri = Uri::from_static("/ws");
        assert!(p.check(&req(Some("http://localhost:8080"), "localhost:8080"), &uri, &[]).is_ok());
        assert!(p.check(&req(Some("https://Chat.Example"), "chat.example"), &uri, &[]).is_ok());
        assert!(p.check(&req(Some("https://chat.example"), "chat.example:443"), &uri, &[]).is_ok());
        assert!(p.check(&req(Some("http://[::1]:8080"), "[::1]:8080"), &uri, &[]).is_ok());
        assert!(p.check(&req(None, "chat.example"), &uri, &[]).is_ok(), "not a browser");
    }

    #[test]
    fn a_page_from_another_listener_of_the_gateway_is_its_own() {
        let p = OriginPolicy::new(&[]).unwrap();
        // WebTransport to https://127.0.0.1:8443/wt from the page at http://127.0.0.1:8080.
        let h3 = Uri::from_static("https://127.0.0.1:8443/wt");
        let mut h = HeaderMap::new();
        h.insert(header::ORIGIN, HeaderValue::from_static("http://127.0.0.1:8080"));
        assert!(p.check(&h, &h3, &[8080, 8443]).is_ok());
        assert_eq!(p.check(&h, &h3, &[8443]), Err(OriginRefusal::Foreign), "8080 is not the gateway's");
        h.insert(header::ORIGIN, HeaderValue::from_static("http://evil.example:8080"));
        assert_eq!(p.check(&h, &h3, &[8080, 8443]), Err(OriginRefusal::Foreign), "another host");
    }

    #[test]
    fn other_origins_are_refused_unless_allowed() {
        let p = OriginPolicy::new(&["https://shop.example/".to_string()]).unwrap();
        let uri = Uri::from_static("/ws");
        for bad in
            ["http://evil.example:8080", "http://localhost:8081", "null", "localhost:8080", "ftp://localhost:8080"]
        {
            assert_eq!(p.check(&req(Some(bad), "localhost:8080"), &uri, &[8080]), Err(OriginRefusal::Foreign), "{bad}");
        }
        assert!(p.check(&req(Some("https://shop.example"), "chat.example"), &uri, &[]).is_ok());
        assert!(OriginPolicy::new(&["shop.example".to_string()]).is_err());
    }

    #[test]
    fn frame_ancestors_cannot_smuggle_directives() {
        assert!(headers("'none'").is_ok());
        assert!(headers("https://shop.example https://blog.example").is_ok());
        assert!(headers("'none'; script-src *").is_err());
        assert!(headers("").is_err());
    }
}
