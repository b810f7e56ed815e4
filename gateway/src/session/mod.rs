//! Browser sessions, whichever transport carries them.
//!
//! - [`pipe`] (`pipe.rs`): the one transport-neutral session logic — bytes both ways between a
//!   browser transport and a [`Peer`], the idle timeout, shutdown, and why a session ended
//!   ([`SessionEnd`], with the close code both transports send for it).
//! - `admission.rs`: the steps every session passes before it exists — origin check, session
//!   limits ([`limits`]), then a peer: a server node, or for benchmarks an in-process one
//!   ([`Target`], `peer.rs`).
//! - the two adapters onto [`pipe`]: [`websocket`] (`GET /ws`) and [`webtransport`]
//!   (`CONNECT /wt` over HTTP/3), with the WebTransport wire details (capsules, stream
//!   header, answering a `CONNECT`) in `wt_protocol.rs` and the message-size limit on a
//!   WebTransport byte stream in [`stream_limit`].
//! - [`Sessions`] (`shared.rs`): what all of them share.
//!
//! Nothing here knows the router or the listeners: routes hand in a [`Sessions`] and a
//! [`Target`], the HTTP/3 listener hands `CONNECT`s to [`webtransport`].

mod admission;
pub mod limits;
mod peer;
mod pipe;
mod shared;
pub mod stream_limit;
pub mod websocket;
pub mod webtransport;
mod wt_protocol;

pub use admission::Refusal;
pub use peer::{Peer, Target};
pub use pipe::{pipe, Inbound, SessionControl, SessionEnd};
pub use shared::Sessions;
