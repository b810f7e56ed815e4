//! `GET /healthz`: whether the gateway can serve sessions. Publicly that is all it says;
//! with `--healthz-details` (for an operator's private network) it also lists each node's
//! address, state and session count.

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
    /// Every node, in the order given — only with `--healthz-details`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
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
    let nodes = if state.healthz_details() { nodes } else { Vec::new() };
    (code, Json(Health { status: status.into(), nodes }))
}
