//! Shared pieces of the quicproquo fuzz targets (`fuzz_targets/`): raw Cap'n Proto RPC frames
//! for driving the server, the running server node the `server_rpc` target talks to, and the
//! prepared engine the `engine_intake` target feeds.
//!
//! Nothing here is used outside fuzzing. See `README.md` in this directory.

pub mod engine_fixture;
pub mod rpc_frames;
pub mod seeds;
pub mod server_fixture;

/// The simulated delivery service and clients of the engine tests, reused to prepare engine
/// state exactly as the tests do.
#[allow(missing_docs, dead_code, clippy::all)]
#[path = "../../core/tests/support/mod.rs"]
mod support;
