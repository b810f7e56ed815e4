//! The NodeService implementation: one RPC system per QUIC bidirectional stream.
//!
//! The entry object ([`entry::Entry`]) is all an unauthenticated stream can reach; a
//! successful challenge–response login hands out a [`session::SessionImpl`] capability bound
//! to one device, and every method of it checks that device against the data it touches.

mod delivery;
mod entry;
mod links;
mod session;

use std::rc::Rc;
use std::sync::Arc;

use capnp_rpc::{rpc_twoparty_capnp::Side, twoparty, RpcSystem};
use qpq_proto::{wire, ErrorCode};
use tokio_util::compat::{TokioAsyncReadCompatExt, TokioAsyncWriteCompatExt};

use crate::config::Config;
use crate::log_key::LogKey;
use crate::metrics::NodeMetrics;
use crate::rate::NodeRates;
use crate::storage::{Storage, StoreError};

pub(crate) use delivery::WakeHub;
use delivery::StreamKill;

/// How long a stream whose device is gone may still flush answers before it is closed.
const KILL_GRACE: std::time::Duration = std::time::Duration::from_millis(100);

/// What every RPC object of a node shares.
pub(crate) struct Ctx {
    pub storage: Arc<dyn Storage>,
    pub config: Config,
    pub hub: Rc<WakeHub>,
    /// The secret behind the pseudonyms that stand for users in logs.
    pub log_key: LogKey,
    /// The node's rate limits (per account, and node-wide for registrations).
    pub rates: NodeRates,
    /// The cluster's VAPID key, whose public half browsers subscribe with.
    pub vapid: Rc<crate::push::Vapid>,
    /// What `/metrics` reports.
    pub metrics: Arc<NodeMetrics>,
}

pub(crate) use crate::storage::now_ms;

/// Maps a storage refusal to the exception a client sees. Backend failures are logged (by
/// operation, never with data) and reported as `internal`.
pub(crate) fn store_err(op: &'static str, e: StoreError) -> capnp::Error {
    let code = match &e {
        StoreError::UserExists => ErrorCode::UserExists,
        StoreError::NoSuchUser => ErrorCode::NoSuchUser,
        StoreError::NoSuchDevice => ErrorCode::NoSuchDevice,
        StoreError::DeviceExists => ErrorCode::BadRequest,
        StoreError::TooManyDevices => ErrorCode::TooManyDevices,
        StoreError::KeyPackageReused => ErrorCode::KeyPackageReused,
        StoreError::NoSuchChannel => ErrorCode::NoSuchChannel,
        StoreError::ChannelExists => ErrorCode::ChannelExists,
        StoreError::NotMember => ErrorCode::NotMember,
        StoreError::StaleEpoch { .. } => ErrorCode::StaleEpoch,
        StoreError::FutureEpoch { .. } => ErrorCode::BadRequest,
        StoreError::NoSuchBlob => ErrorCode::NoSuchBlob,
        StoreError::QuotaExceeded(_) => ErrorCode::QuotaExceeded,
        StoreError::BadChunk(_) => ErrorCode::BadChunk,
        StoreError::NoSuchLink => ErrorCode::NoSuchLink,
        StoreError::LinkExists | StoreError::LinkAnswered | StoreError::BlockSelf => ErrorCode::BadRequest,
        StoreError::NotAllowed(_) => ErrorCode::NotAllowed,
        StoreError::Revoked => {
            return wire::error(ErrorCode::DeviceRevoked, e.to_string());
        }
        StoreError::Config(_) | StoreError::Backend(_) => {
            tracing::error!(op, error = %e, "storage failed");
            return wire::error(ErrorCode::Internal, "the server could not complete the request; try again");
        }
    };
    wire::error(code, e.to_string())
}


/// A `rate_limited` refusal for `what`, with the time to wait.
pub(crate) fn rate_err(what: &str, retry_after_ms: u64) -> capnp::Error {
    wire::error(ErrorCode::RateLimited, qpq_proto::rate_limited_sentence(what, retry_after_ms))
}

/// Serves one bidirectional stream as an RPC session until it ends. `binding` is the TLS
/// exporter value of the stream's connection, which a direct client's login signs.
pub(crate) async fn serve_stream(
    ctx: Rc<Ctx>,
    send: quinn::SendStream,
    recv: quinn::RecvStream,
    binding: [u8; qpq_proto::LOGIN_BINDING_LEN],
) {
    let mut opts = capnp::message::ReaderOptions::new();
    // Room for the largest message or chunk plus framing; larger frames are refused by the
    // reader before anything is allocated for them.
    let words = (ctx.config.max_message_bytes.max(ctx.config.max_chunk_bytes as usize) + (64 << 10)) / 8 * 2;
    opts.traversal_limit_in_words(Some(words)).nesting_limit(64);
    let network = twoparty::VatNetwork::new(recv.compat(), send.compat_write(), Side::Server, opts);
    let _open = ctx.metrics.streams.track();
    // Fired when the device this stream logged in as is revoked or its account deleted.
    let kill = Rc::new(StreamKill::default());
    let entry: qpq_proto::node_capnp::node_service::Client =
        capnp_rpc::new_client(entry::Entry::new(ctx, kill.clone(), binding));
    let rpc = RpcSystem::new(Box::new(network), Some(entry.client));
    tokio::pin!(rpc);
    tokio::select! {
        r = &mut rpc => if let Err(e) = r {
            tracing::debug!(error = %e, "session ended with an error");
        },
        _ = kill.fired() => {
            // A moment for answers already on their way (the deleteAccount or revokeDevice
            // that ended this very device gets its reply); new calls meanwhile are refused
            // with `device_revoked`. Then dropping the RPC system drops the stream: every
            // call of the session fails, its subscriptions end, and the peer sees it finish.
            let _ = tokio::time::timeout(KILL_GRACE, &mut rpc).await;
            tracing::info!("session closed: its device was revoked or its account deleted");
        }
    }
}
