//! The gateway's HTTP side, called in-process with `tower::ServiceExt::oneshot`: static
//! files, their types and caching, compression, security headers, the origin check and
//! `/healthz`.

use std::io::Read as _;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use axum::Router;
use http_body_util::BodyExt;
use qpq_gateway::{app, AppState, Config, Health};
use tower::ServiceExt;

/// An unused port: nothing answers there.
const NOWHERE: &str = "127.0.0.1:9";

struct Site {
    _dir: tempfile::TempDir,
    config: Config,
}

/// A www/ and pkg/ like the real build's, and a gateway configuration serving them.
fn site(nodes: &[(SocketAddr, &str)]) -> Site {
    let dir = tempfile::tempdir().unwrap();
    let (www, pkg) = (dir.path().join("www"), dir.path().join("pkg"));
    std::fs::create_dir_all(&www).unwrap();
    std::fs::create_dir_all(&pkg).unwrap();
    let write = |p: &Path, s: &str| std::fs::write(p, s).unwrap();
    write(
        &www.join("index.html"),
        "<!doctype html><title>qpq</title><script type=module src=/app.3f9a1c2b.js></script>",
    );
    write(&www.join("app.3f9a1c2b.js"), "import init from '/pkg/web_client.js'; await init();");
    write(&www.join("app.js"), "export const version = 1;");
    write(&www.join("mod.mjs"), "export const x = 1;");
    write(&www.join("sw.js"), "self.addEventListener('fetch', () => {});");
    write(&www.join("manifest.webmanifest"), r#"{"name":"quicproquo","start_url":"/"}"#);
    write(&pkg.join("web_client.js"), "export default async function init() {}");
    // Compressible, and well above the compression threshold.
    let wasm: Vec<u8> = b"\0asm\x01\0\0\0".iter().copied().chain((0..8192u32).map(|i| (i % 7) as u8)).collect();
    std::fs::write(pkg.join("web_client_bg.wasm"), &wasm).unwrap();
    std::fs::write(pkg.join("web_client_bg.0c1d2e3f4a5b.wasm"), &wasm).unwrap();
    let nodes: Vec<(SocketAddr, &str)> =
        if nodes.is_empty() { vec![(NOWHERE.parse().unwrap(), "00".repeat(32).leak())] } else { nodes.to_vec() };
    let config = Config::for_tests(&nodes, www, pkg);
    Site { _dir: dir, config }
}

fn router(config: &Config) -> Router {
    app(AppState::new(config).expect("valid configuration"))
}

async fn get(router: &Router, path: &str, headers: &[(&str, &str)]) -> axum::response::Response {
    let mut req = Request::get(path);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    router.clone().oneshot(req.body(Body::empty()).unwrap()).await.unwrap()
}

async fn body(resp: axum::response::Response) -> Vec<u8> {
    resp.into_body().collect().await.unwrap().to_bytes().to_vec()
}

fn header_of<'a>(resp: &'a axum::response::Response, name: &str) -> &'a str {
    resp.headers().get(name).map(|v| v.to_str().unwrap()).unwrap_or("")
}

const CSP: &str = "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; style-src 'self'; \
                   img-src 'self' blob: data:; connect-src 'self' ws: wss: https:; worker-src 'self'; \
                   manifest-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; \
                   frame-ancestors 'none'";

fn assert_security_headers(resp: &axum::response::Response, what: &str) {
    assert_eq!(header_of(resp, "content-security-policy"), CSP, "{what}");
    assert_eq!(header_of(resp, "x-content-type-options"), "nosniff", "{what}");
    assert_eq!(header_of(resp, "referrer-policy"), "no-referrer", "{what}");
    assert_eq!(header_of(resp, "cross-origin-opener-policy"), "same-origin", "{what}");
}

#[tokio::test]
async fn root_serves_index_html_without_caching() {
    let s = site(&[]);
    let r = router(&s.config);
    let resp = get(&r, "/", &[]).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(header_of(&resp, "content-type").starts_with("text/html"));
    assert_eq!(header_of(&resp, "cache-control"), "no-cache");
    assert!(String::from_utf8(body(resp).await).unwrap().contains("<title>qpq</title>"));
}

#[tokio::test]
async fn scripts_wasm_and_manifest_have_the_right_types() {
    let s = site(&[]);
    let r = router(&s.config);
    for (path, want) in [
        ("/pkg/web_client_bg.wasm", "application/wasm"),
        ("/pkg/web_client.js", "text/javascript"),
        ("/app.js", "text/javascript"),
        ("/mod.mjs", "text/javascript"),
        ("/manifest.webmanifest", "application/manifest+json"),
    ] {
        let resp = get(&r, path, &[]).await;
        assert_eq!(resp.status(), StatusCode::OK, "{path}");
        assert_eq!(header_of(&resp, "content-type"), want, "{path}");
    }
}

#[tokio::test]
async fn hashed_assets_are_immutable_and_everything_else_revalidates() {
    let s = site(&[]);
    let r = router(&s.config);
    for path in ["/app.3f9a1c2b.js", "/pkg/web_client_bg.0c1d2e3f4a5b.wasm"] {
        let resp = get(&r, path, &[]).await;
        assert_eq!(resp.status(), StatusCode::OK, "{path}");
        assert_eq!(header_of(&resp, "cache-control"), "public, max-age=31536000, immutable", "{path}");
    }
    for path in
        ["/", "/index.html", "/app.js", "/sw.js", "/pkg/web_client_bg.wasm", "/manifest.webmanifest", "/healthz"]
    {
        let resp = get(&r, path, &[]).await;
        assert_eq!(header_of(&resp, "cache-control"), "no-cache", "{path}");
    }
    // A hashed name that does not exist must not be cached forever.
    let resp = get(&r, "/app.00000000.js", &[]).await;
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    assert_eq!(header_of(&resp, "cache-control"), "no-cache");
}

#[tokio::test]
async fn every_response_carries_the_security_headers() {
    let s = site(&[]);
    let r = router(&s.config);
    for (path, status) in [
        ("/", StatusCode::OK),
        ("/pkg/web_client_bg.wasm", StatusCode::OK),
        ("/no/such/file", StatusCode::NOT_FOUND),
        ("/pkg/missing.wasm", StatusCode::NOT_FOUND),
        ("/healthz", StatusCode::SERVICE_UNAVAILABLE),
    ] {
        let resp = get(&r, path, &[]).await;
        assert_eq!(resp.status(), status, "{path}");
        assert_security_headers(&resp, path);
    }
    let refused = get(&r, "/ws", &[("host", "chat.example"), ("origin", "https://evil.example")]).await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    assert_security_headers(&refused, "refused WebSocket");
}

#[tokio::test]
async fn frame_ancestors_opens_the_widget_page_and_nothing_else() {
    let mut s = site(&[]);
    std::fs::write(s.config.www.join("embed.html"), "<!doctype html><title>chat</title>").unwrap();
    std::fs::write(s.config.www.join("embed.js"), "customElements.define('qpq-chat', class extends HTMLElement {});")
        .unwrap();
    s.config.frame_ancestors = "https://shop.example".into();
    let r = router(&s.config);
    let resp = get(&r, "/embed.html?peer=support", &[]).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let widget_csp = CSP.replace("frame-ancestors 'none'", "frame-ancestors https://shop.example");
    assert_eq!(header_of(&resp, "content-security-policy"), widget_csp);
    // The app itself, and everything else, still cannot be framed.
    for path in ["/", "/index.html", "/app.js", "/no/such/file"] {
        assert_security_headers(&get(&r, path, &[]).await, path);
    }
    // The widget's script: a script, loadable by other sites' pages (even those demanding CORP).
    let script = get(&r, "/embed.js", &[]).await;
    assert_eq!(script.status(), StatusCode::OK);
    assert_eq!(header_of(&script, "content-type"), "text/javascript");
    assert_eq!(header_of(&script, "cross-origin-resource-policy"), "cross-origin");
    assert_eq!(header_of(&get(&r, "/app.js", &[]).await, "cross-origin-resource-policy"), "");
    s.config.frame_ancestors = "'none'; script-src *".into();
    assert!(AppState::new(&s.config).is_err(), "a directive cannot be smuggled in");
}

#[tokio::test]
async fn wasm_is_compressed_as_the_browser_asks() {
    let s = site(&[]);
    let r = router(&s.config);
    let original = std::fs::read(s.config.pkg.join("web_client_bg.wasm")).unwrap();

    let resp = get(&r, "/pkg/web_client_bg.wasm", &[("accept-encoding", "br")]).await;
    assert_eq!(header_of(&resp, "content-encoding"), "br");
    assert_eq!(header_of(&resp, "content-type"), "application/wasm");
    let compressed = body(resp).await;
    assert!(compressed.len() < original.len() / 4, "brotli shrinks it: {} bytes", compressed.len());
    let mut unbrotli = Vec::new();
    brotli_decompressor::Decompressor::new(&compressed[..], 4096).read_to_end(&mut unbrotli).unwrap();
    assert_eq!(unbrotli, original, "brotli round-trips");

    let resp = get(&r, "/pkg/web_client_bg.wasm", &[("accept-encoding", "gzip")]).await;
    assert_eq!(header_of(&resp, "content-encoding"), "gzip");
    let mut unzipped = Vec::new();
    flate2::read::GzDecoder::new(&body(resp).await[..]).read_to_end(&mut unzipped).unwrap();
    assert_eq!(unzipped, original, "gzip round-trips");

    let resp = get(&r, "/pkg/web_client_bg.wasm", &[]).await;
    assert_eq!(header_of(&resp, "content-encoding"), "", "identity when nothing is accepted");
    assert_eq!(body(resp).await, original);
}

#[tokio::test]
async fn a_websocket_from_a_foreign_origin_is_refused_with_403() {
    let mut s = site(&[]);
    s.config.allow_origins = vec!["https://shop.example".into()];
    let r = router(&s.config);
    let ws_headers = |origin: &'static str| {
        [
            ("host", "chat.example:8080"),
            ("origin", origin),
            ("connection", "upgrade"),
            ("upgrade", "websocket"),
            ("sec-websocket-version", "13"),
            ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="),
        ]
    };
    for bad in ["https://evil.example", "http://chat.example:8081", "null"] {
        let resp = get(&r, "/ws", &ws_headers(bad)).await;
        assert_eq!(resp.status(), StatusCode::FORBIDDEN, "{bad}");
        assert!(String::from_utf8(body(resp).await).unwrap().contains("origin"));
    }
    // Allowed origins pass the check; without a real connection the upgrade itself cannot
    // happen, so the answer is the upgrade's refusal, not 403.
    for good in ["http://chat.example:8080", "https://shop.example"] {
        let resp = get(&r, "/ws", &ws_headers(good)).await;
        assert_ne!(resp.status(), StatusCode::FORBIDDEN, "{good}");
    }
}

#[tokio::test]
async fn healthz_is_503_while_no_node_is_up() {
    let s = site(&[]);
    let resp = get(&router(&s.config), "/healthz", &[]).await;
    assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(header_of(&resp, "content-type"), "application/json");
    let h: Health = serde_json::from_slice(&body(resp).await).unwrap();
    assert_eq!(h.status, "unavailable");
    assert_eq!(h.nodes.len(), 1);
    assert_eq!((h.nodes[0].addr.as_str(), h.nodes[0].up, h.nodes[0].sessions), (NOWHERE, false, 0));
}

#[tokio::test]
async fn public_healthz_says_only_whether_the_gateway_is_healthy() {
    let mut s = site(&[]);
    s.config.healthz_details = false;
    let resp = get(&router(&s.config), "/healthz", &[]).await;
    assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
    let text = String::from_utf8(body(resp).await).unwrap();
    assert_eq!(text, r#"{"status":"unavailable"}"#, "no node addresses or session counts");
    assert!(!text.contains(NOWHERE));
}

#[tokio::test]
async fn healthz_reports_a_node_that_is_up() {
    let dir = tempfile::tempdir().unwrap();
    let node = qpq_server::spawn(qpq_server::Config::for_tests(dir.path())).unwrap();
    let s = site(&[(node.addr(), node.fingerprint()), (NOWHERE.parse().unwrap(), node.fingerprint())]);
    let state = AppState::new(&s.config).unwrap();
    state.nodes().start();
    tokio::time::timeout(Duration::from_secs(10), state.nodes().wait_up(1)).await.expect("the node comes up");
    let resp = get(&app(state.clone()), "/healthz", &[]).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let raw = body(resp).await;
    let json: serde_json::Value = serde_json::from_slice(&raw).unwrap();
    assert_eq!(
        json,
        serde_json::json!({
            "status": "ok",
            "nodes": [
                { "addr": node.addr().to_string(), "up": true, "sessions": 0 },
                { "addr": NOWHERE, "up": false, "sessions": 0 },
            ]
        })
    );
    state.nodes().close(Duration::from_secs(1)).await;
    node.stop();
}

#[tokio::test]
async fn security_headers_are_set_even_on_unknown_methods() {
    let s = site(&[]);
    let resp = router(&s.config)
        .oneshot(Request::post("/index.html").header(header::CONTENT_LENGTH, "0").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert!(resp.status().is_client_error());
    assert_security_headers(&resp, "POST");
}
