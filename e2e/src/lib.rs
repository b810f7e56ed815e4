//! quicproquo's cross-crate end-to-end tests live in `tests/` of this crate, with one shared
//! harness (`tests/support`): real server nodes on SQLite or PostgreSQL, a real gateway, and
//! native clients over QUIC, WebSocket and WebTransport. Keeping them here lets the crates
//! under test (gateway, native) keep their dev-dependencies to what their unit tests need.
//! This library is empty on purpose; a package needs one target besides its tests.
