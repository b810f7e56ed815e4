//! A quicproquo server node.
//!
//! It serves the `NodeService` Cap'n Proto schema over QUIC and keeps routing state —
//! identities, device records, key packages, channel membership, per-device delivery queues,
//! encrypted blobs — in SQLite (embedded default) or PostgreSQL (several nodes on one
//! database, woken through LISTEN/NOTIFY). It never sees plaintext: message payloads are MLS
//! ciphertext and are never logged.

pub mod storage;
