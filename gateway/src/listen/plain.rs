//! Plain HTTP on TCP (`--listen`): the router served by axum until the shutdown token is
//! cancelled, with each client's address available to handlers (`ConnectInfo`).

use std::future::IntoFuture;
use std::net::SocketAddr;

use axum::serve::ListenerExt;
use axum::Router;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Serves `router` on `listener` on a task of its own until `stop`.
pub(crate) fn serve(listener: tokio::net::TcpListener, router: Router, stop: CancellationToken) -> JoinHandle<()> {
    let listener = listener.tap_io(super::no_delay);
    let service = router.into_make_service_with_connect_info::<SocketAddr>();
    let server = axum::serve(listener, service).with_graceful_shutdown(stop.cancelled_owned());
    tokio::spawn(async move {
        let _ = server.into_future().await;
    })
}
