//! Static files: the browser app (`--www`, at `/`) and the wasm-bindgen output (`--pkg`, at
//! `/pkg/`), compressed and with caching headers.
//!
//! **Hashed assets.** A file whose name carries its content hash never changes, so browsers
//! may keep it forever. The rule, for both directories: the last path segment contains a
//! dot-delimited part of at least 8 hex digits, `NAME.HASH.EXT`, e.g. `app.3f9a1c2b.js` or
//! `web_client_bg.0c1d2e3f4a5b.wasm`. Such a file (when found) gets
//! `Cache-Control: public, max-age=31536000, immutable`; every other response, `index.html`
//! and the service worker included, gets `no-cache` (the browser revalidates with
//! `Last-Modified`). A build that wants long caching renames its outputs so; one that does not
//! still works, just revalidated.
//!
//! **Types and compression.** `.wasm` is `application/wasm` (what streaming compilation
//! demands), `.js`/`.mjs` are `text/javascript`, `.webmanifest` is
//! `application/manifest+json`. Responses are compressed with brotli or gzip as the browser
//! asks (`.wasm` included); a precompressed `FILE.br` or `FILE.gz` next to a file is served
//! instead when present.

use std::path::Path;

use axum::extract::Request;
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::Router;
use tower_http::compression::CompressionLayer;
use tower_http::services::ServeDir;

/// `Cache-Control` of hashed assets.
pub const IMMUTABLE: &str = "public, max-age=31536000, immutable";
/// `Cache-Control` of everything else.
pub use crate::security::NO_CACHE;

/// Serves `www` at `/` and `pkg` at `/pkg/`.
pub(crate) fn routes<S: Clone + Send + Sync + 'static>(www: &Path, pkg: &Path) -> Router<S> {
    let dir = |d: &Path| ServeDir::new(d).precompressed_br().precompressed_gzip();
    Router::new()
        .nest_service("/pkg", dir(pkg))
        .fallback_service(dir(www))
        .layer(middleware::from_fn(content_type))
        .layer(CompressionLayer::new())
}

/// True when the last segment of `path` names a content-hashed file (see the module docs).
pub fn is_hashed(path: &str) -> bool {
    let name = path.rsplit('/').next().unwrap_or("");
    let parts: Vec<&str> = name.split('.').collect();
    parts.len() >= 3
        && parts[1..parts.len() - 1].iter().any(|p| p.len() >= 8 && p.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// The MIME type the gateway insists on for `path`, where the generic table is wrong or
/// too lax.
fn content_type_for(path: &str) -> Option<&'static str> {
    let ext = path.rsplit_once('.')?.1;
    Some(match ext.to_ascii_lowercase().as_str() {
        "wasm" => "application/wasm",
        "js" | "mjs" => "text/javascript",
        "webmanifest" => "application/manifest+json",
        _ => return None,
    })
}

/// Sets the MIME type of a served file where [`content_type_for`] knows better.
async fn content_type(req: Request, next: Next) -> Response {
    let path = req.uri().path().to_string();
    let mut resp = next.run(req).await;
    if resp.status().is_success() {
        if let Some(ct) = content_type_for(&path) {
            resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(ct));
        }
    }
    resp
}

/// Sets `Cache-Control` on every response: immutable for a hashed asset that was found,
/// `no-cache` for everything else.
pub(crate) async fn cache_control(req: Request, next: Next) -> Response {
    let hashed = is_hashed(req.uri().path());
    let mut resp = next.run(req).await;
    let found = resp.status().is_success() || resp.status() == StatusCode::NOT_MODIFIED;
    let value = if hashed && found { IMMUTABLE } else { NO_CACHE };
    resp.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static(value));
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashed_names_have_a_dotted_hex_part_of_eight_or_more() {
        for yes in [
            "/app.3f9a1c2b.js",
            "/pkg/web_client_bg.0c1d2e3f4a5b6c7d.wasm",
            "/x.DEADBEEF01.css",
            "/a.b.12345678.min.js",
        ] {
            assert!(is_hashed(yes), "{yes}");
        }
        for no in [
            "/",
            "/index.html",
            "/app.js",
            "/app.3f9a1c2.js",
            "/3f9a1c2b.js",
            "/app.3f9a1c2g.js",
            "/app-3f9a1c2b.js",
            "/pkg/web_client_bg.wasm",
            "/12345678",
        ] {
            assert!(!is_hashed(no), "{no}");
        }
    }

    #[test]
    fn script_and_wasm_types_are_fixed() {
        assert_eq!(content_type_for("/pkg/x_bg.wasm"), Some("application/wasm"));
        assert_eq!(content_type_for("/app.MJS"), Some("text/javascript"));
        assert_eq!(content_type_for("/manifest.webmanifest"), Some("application/manifest+json"));
        assert_eq!(content_type_for("/index.html"), None);
    }
}
