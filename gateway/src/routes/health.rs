//! `GET /healthz`: whether the gateway can serve sessions, and how each node is doing.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};

use crate::nodes::NodeStatus;
use crate::state::AppState;

/// The body of `/healthz`.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Health {
    /// `"ok"` when at least one node is up (HTTP 200), else `"unavailable"` (HTTP 503).
    pub status: String,
    /// Every node, in the order given.
    pub nodes: Vec<NodeStatus>,
}

/// The `/healthz` route.
pub(crate) fn routes(state: &AppState) -> Router {
    Router::new().route("/healthz", get(healthz)).with_state(state.clone())
}

async fn healthz(State(state): State<AppState>) -> (StatusCode, Json<Health>) {
    let nodes = state.nodes().status();
    let (code, status) = if nodes.iter().any(|n| n.up) {
        (StatusCode::OK, "ok")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "unavailable")
    };
    (code, Json(Health { status: status.into(), nodes }))
}
