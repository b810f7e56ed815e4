//! The HTTP application: [`app`] merges the route sets of [`crate::routes`] into one
//! `Router` and puts the security headers and `Cache-Control` on every response (the chat
//! widget's page and script get theirs, [`security::embed_headers`]). Nothing
//! imports this module but the crate root and `gateway.rs`, which serves the router.

use axum::http::{header, HeaderValue};
use axum::middleware;
use axum::Router;
use tower_http::set_header::SetResponseHeaderLayer;

use crate::routes::{self, assets, echo, health, transport_info};
use crate::security;
use crate::state::AppState;

/// The gateway's HTTP application: `/ws`, `/healthz`, `/transport.json`, the static files
/// and, with `--bench-echo` only, `/echo`, with the security headers and `Cache-Control` on
/// every response (404s included).
pub fn app(state: AppState) -> Router {
    let (www, pkg) = state.asset_dirs();
    let mut router = routes::websocket(&state);
    if state.bench_echo() {
        router = router.merge(echo::routes(&state));
    }
    let mut router = router
        .merge(health::routes(&state))
        .merge(transport_info::routes(&state))
        .merge(assets::routes(www, pkg))
        .layer(middleware::from_fn(assets::cache_control));
    for layer in security::header_layers(state.security_headers().to_vec()) {
        router = router.layer(layer);
    }
    // Outside the common headers, so that the widget's page keeps its own CSP.
    router.layer(middleware::from_fn_with_state(state.embed_page_csp().clone(), security::embed_headers))
}

/// The application on the HTTPS listeners (TCP and HTTP/3): the same as [`app`], plus
/// `Alt-Svc: h3=":PORT"; ma=86400` announcing HTTP/3 when it is served.
pub fn https_app(state: AppState) -> Router {
    let l = state.listeners();
    let router = app(state);
    match l.https.filter(|_| l.http3) {
        Some(addr) => {
            let value = HeaderValue::from_str(&format!("h3=\":{}\"; ma=86400", addr.port())).expect("header value");
            router.layer(SetResponseHeaderLayer::overriding(header::ALT_SVC, value))
        }
        None => router,
    }
}
