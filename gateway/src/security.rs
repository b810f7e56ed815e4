//! The gateway's browser-facing policy, shared by the routes and the session adapters:
//! security headers on every response (the WebTransport `CONNECT` answers included), and the
//! `Origin` check that guards `/ws` and `/wt`. It depends on nothing but [`crate::error`].
//!
//! The Content-Security-Policy allows no inline script and no `eval` (only
//! `'wasm-unsafe-eval'`, which WebAssembly compilation needs) and no framing
//! (`frame-ancestors 'none'`), but for one page: the chat widget's ([`EMBED_PAGE`]), whose
//! `frame-ancestors` a deployment sets with `--frame-ancestors` (the sites that embed the
//! widget). Allowing the widget never makes the full app frameable. The widget's script
//! ([`EMBED_SCRIPT`]) is loaded by those sites' `<script>` tags: a classic script needs no
//! CORS, and `Cross-Origin-Resource-Policy: cross-origin` lets pages that demand it for every
//! resource (COEP `require-corp`) load it too. [`embed_headers`] sets both.
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

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, Uri};
use axum::middleware::Next;
use axum::response::Response;
use tower_http::set_header::SetResponseHeaderLayer;

use crate::error::GatewayError;

/// `Cache-Control` of every response but a found content-hashed asset (see
/// [`crate::assets`]), refusals given outside the router included.
pub const NO_CACHE: &str = "no-cache";

/// The page other sites may frame: the chat widget's iframe (`www/embed.html`).
pub const EMBED_PAGE: &str = "/embed.html";
/// The widget's script (`www/embed.js`), which other sites load with a `<script>` tag.
pub const EMBED_SCRIPT: &str = "/embed.js";

/// The Content-Security-Policy for the given `frame-ancestors` sources.
pub fn content_security_policy(frame_ancestors: &str) -> String {
    format!(
        "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; style-src 'self'; \
         img-src 'self' blob: data:; connect-src 'self' ws: wss: https:; worker-src 'self'; \
         manifest-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; \
         frame-ancestors {frame_ancestors}"
    )
}

/// The headers every response carries (the widget's page then gets its own CSP).
pub(crate) fn headers() -> Vec<(HeaderName, HeaderValue)> {
    let csp = HeaderValue::from_str(&content_security_policy("'none'")).expect("a valid header value");
    vec![
        (header::CONTENT_SECURITY_POLICY, csp),
        (header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")),
        (header::REFERRER_POLICY, HeaderValue::from_static("no-referrer")),
        (HeaderName::from_static("cross-origin-opener-policy"), HeaderValue::from_static("same-origin")),
    ]
}

/// The Content-Security-Policy of [`EMBED_PAGE`]: framed by `frame_ancestors`
/// (`--frame-ancestors`) only; a value that would smuggle in another directive is refused.
pub(crate) fn embed_page_csp(frame_ancestors: &str) -> Result<HeaderValue, GatewayError> {
    let bad = || GatewayError::BadFrameAncestors(frame_ancestors.to_string());
    if frame_ancestors.trim().is_empty() || frame_ancestors.contains([';', ',']) {
        return Err(bad());
    }
    HeaderValue::from_str(&content_security_policy(frame_ancestors.trim())).map_err(|_| bad())
}

/// Middleware over the common headers: the widget's page gets `csp` (see
/// [`embed_page_csp`]), its script `Cross-Origin-Resource-Policy: cross-origin`.
pub(crate) async fn embed_headers(State(csp): State<HeaderValue>, req: Request, next: Next) -> Response {
    let path = req.uri().path();
    let (page, script) = (path == EMBED_PAGE, path == EMBED_SCRIPT);
    let mut resp = next.run(req).await;
    if page {
        resp.headers_mut().insert(header::CONTENT_SECURITY_POLICY, csp);
    } else if script {
        resp.headers_mut()
            .insert(HeaderName::from_static("cross-origin-resource-policy"), HeaderValue::from_static("cross-origin"));
    }
    resp
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
        assert!(embed_page_csp("'none'").is_ok());
        let two = embed_page_csp("https://shop.example https://blog.example").unwrap();
        assert!(two.to_str().unwrap().ends_with("; frame-ancestors https://shop.example https://blog.example"));
        assert!(embed_page_csp("'none'; script-src *").is_err());
        assert!(embed_page_csp("https://a.example, *").is_err());
        assert!(embed_page_csp("").is_err());
    }

    #[test]
    fn only_the_widget_page_may_be_framed() {
        let common = headers();
        let csp = common.iter().find(|(n, _)| n == header::CONTENT_SECURITY_POLICY).unwrap().1.to_str().unwrap();
        assert!(csp.ends_with("; frame-ancestors 'none'"), "{csp}");
    }
}
