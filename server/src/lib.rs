//! A quicproquo server node.
//!
//! It serves the `NodeService` Cap'n Proto schema over QUIC and keeps routing state —
//! identities, device records, key packages, channel membership, per-device delivery queues,
//! encrypted blobs, push subscriptions — in SQLite (embedded default) or PostgreSQL (several nodes on one
//! database, woken through LISTEN/NOTIFY). It never sees plaintext: message payloads are MLS
//! ciphertext, and neither they nor keys are ever logged; users appear in logs only as keyed
//! pseudonyms (`log_key.rs`). Devices whose tabs are closed are woken by Web Push
//! (`push/`), with a payload that says nothing about the messages.
//!
//! It deliberately does not render, decrypt or interpret messages, and does not serve
//! browsers directly: the gateway does that.

mod config;
pub mod group_state;
mod log_key;
mod metrics;
mod mls_frame;
mod node;
pub mod rate;
pub mod push;
mod rpc;
pub mod storage;
pub mod turn;

pub use config::Config;
pub use rate::RateConfig;
pub use node::{spawn, Node, RunningNode};
