//! The server's request handling fed arbitrary bytes as a Cap'n Proto RPC stream, through the
//! real path: a QUIC stream to a running node (SQLite storage in a temporary directory),
//! `serve_stream` with the server's reader options, the entry object and, after login, a
//! `Session`. Input: one mode byte (bit 0: the harness logs in first, so the bytes may call
//! the session; question ids 0–2 are then taken) and the bytes of the stream.
//!
//! A panic anywhere in the server aborts the process (libFuzzer's panic hook), and a session
//! the server does not end after the client closed its side fails the run.

#![no_main]

use std::sync::{Mutex, OnceLock};

use libfuzzer_sys::fuzz_target;
use qpq_fuzz::server_fixture::ServerFixture;

static SERVER: OnceLock<Mutex<ServerFixture>> = OnceLock::new();

fuzz_target!(init: qpq_fuzz::seeds::write_if_asked(qpq_fuzz::seeds::server_rpc), |data: &[u8]| {
    let Some((&mode, stream)) = data.split_first() else { return };
    let server = SERVER.get_or_init(|| Mutex::new(ServerFixture::start()));
    let mut server = server.lock().unwrap_or_else(|e| e.into_inner());
    server.run(mode & 1 == 1, stream);
});
