//! Admitting a browser session, whichever transport and route carries it: the same origin
//! check, session limits and peer ([`Target`]: a node, or the benchmark's in-process echo)
//! for a WebSocket upgrade on `/ws` or `/echo` and a WebTransport `CONNECT` on `/wt` or
//! `/echo`. A refusal is a plain HTTP status with a sentence, given before any session
//! exists.

use std::net::IpAddr;

use axum::http::{header, HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};

use crate::metrics::GatewayMetrics;
use crate::session::limits::{LimitRefusal, SessionPermit};
use crate::session::{Peer, Sessions, Target};

/// Seconds a refused browser is asked to wait before retrying.
pub(crate) const RETRY_AFTER_SECS: &str = "5";

/// Why a session was not opened, as an HTTP answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Refusal {
    /// 403, 429 or 503.
    pub status: StatusCode,
    /// A sentence for people.
    pub text: &'static str,
    /// For a rate limit: when a new session will be admitted (0: the usual retry time).
    pub retry_after_ms: u64,
}

impl Refusal {
    const FOREIGN_ORIGIN: Refusal =
        Refusal { status: StatusCode::FORBIDDEN, text: "this origin may not open sessions here", retry_after_ms: 0 };
    const FULL: Refusal = Refusal {
        status: StatusCode::SERVICE_UNAVAILABLE,
        text: "the gateway is full; try again shortly",
        retry_after_ms: 0,
    };
    const TOO_MANY: Refusal = Refusal {
        status: StatusCode::TOO_MANY_REQUESTS,
        text: "too many sessions from your address; close some and try again",
        retry_after_ms: 0,
    };
    const NO_NODE: Refusal = Refusal {
        status: StatusCode::SERVICE_UNAVAILABLE,
        text: "no server node is available; try again shortly",
        retry_after_ms: 0,
    };

    /// A rate-limit refusal: retry after `ms`.
    fn rate_limited(ms: u64) -> Refusal {
        Refusal {
            status: StatusCode::TOO_MANY_REQUESTS,
            text: "rate_limited: too many new sessions from your address; retry after the time in Retry-After",
            retry_after_ms: ms,
        }
    }

    /// Whether the browser should retry later (it gets a `Retry-After`, in whole seconds).
    pub(crate) fn retry_after(self) -> Option<HeaderValue> {
        if self.retry_after_ms > 0 {
            return Some(HeaderValue::from(self.retry_after_ms.div_ceil(1000)));
        }
        (self.status != StatusCode::FORBIDDEN).then(|| HeaderValue::from_static(RETRY_AFTER_SECS))
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let mut resp = (self.status, self.text).into_response();
        if let Some(v) = self.retry_after() {
            resp.headers_mut().insert(header::RETRY_AFTER, v);
        }
        resp
    }
}

/// Checks that the request comes from a page allowed to open sessions.
pub(crate) fn check_origin(
    sessions: &Sessions,
    headers: &HeaderMap,
    uri: &Uri,
    ip: IpAddr,
    transport: &'static str,
) -> Result<(), Refusal> {
    sessions.origins().check(headers, uri, &sessions.own_ports()).map_err(|_| {
        sessions.metrics().refused.with(&["origin"]).inc();
        tracing::info!(transport, "session refused: origin not allowed");
        tracing::debug!(%ip, transport, origin = ?headers.get(header::ORIGIN), "session refused: origin not allowed");
        Refusal::FOREIGN_ORIGIN
    })
}

/// Takes a session slot for `ip` (the session limits).
fn take_slot(sessions: &Sessions, ip: IpAddr, transport: &'static str) -> Result<SessionPermit, Refusal> {
    sessions.limiter().admit(ip).map_err(|refusal| {
        tracing::info!(transport, refusal = %refusal, "session refused: limit");
        tracing::debug!(%ip, transport, refusal = %refusal, "session refused: limit");
        let (reason, answer) = match refusal {
            LimitRefusal::Full => ("full", Refusal::FULL),
            LimitRefusal::TooManyFromAddress => ("per_address", Refusal::TOO_MANY),
            LimitRefusal::RateLimited { retry_after_ms } => ("rate_limited", Refusal::rate_limited(retry_after_ms)),
        };
        sessions.metrics().refused.with(&[reason]).inc();
        answer
    })
}

/// Takes a session slot for `ip` and opens the session's peer (a stream to a node, or an
/// in-process peer).
pub(crate) async fn admit(
    sessions: &Sessions,
    ip: IpAddr,
    transport: &'static str,
    target: Target,
) -> Result<(SessionPermit, Box<dyn Peer>), Refusal> {
    let mut permit = take_slot(sessions, ip, transport)?;
    let metrics = sessions.metrics();
    let start = std::time::Instant::now();
    let peer: Box<dyn Peer> = match target {
        Target::Nodes => Box::new(sessions.nodes().open_session().await.map_err(|e| {
            metrics.refused.with(&["no_node"]).inc();
            tracing::warn!(transport, "session refused: {e}");
            Refusal::NO_NODE
        })?),
        Target::Local(open) => open(),
    };
    let label = GatewayMetrics::transport(transport);
    metrics.setup.with(&[label]).observe_duration(start.elapsed());
    metrics.opened.with(&[label]).inc();
    permit.count_in(&metrics.sessions.with(&[label]));
    Ok((permit, peer))
}
