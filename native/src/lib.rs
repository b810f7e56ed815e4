//! The native quicproquo client: what `qpq-client` needs to run outside a browser.
//!
//! - [`QuicConnector`] opens QUIC streams to a server node (one connection, one stream per
//!   session), trusting the server by certificate fingerprint or roots;
//! - [`FileStore`] keeps engine state in an append-only file of checksummed changesets;
//! - [`TokioPlatform`] supplies the clock, timers and local task spawning;
//! - [`DiskSource`] and [`DiskSink`] are files on disk as the ends of file transfers.
//!
//! The `qpq` binary is a small REPL over these; the end-to-end tests drive the same pieces.

mod connector;
mod disk_file;
mod file_store;
mod platform;

pub use connector::QuicConnector;
pub use disk_file::{DiskSink, DiskSource};
pub use file_store::FileStore;
pub use platform::TokioPlatform;

/// The client type of native programs.
pub type NativeClient = qpq_client::Client<FileStore, TokioPlatform>;
