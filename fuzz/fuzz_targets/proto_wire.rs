//! The `qpq_proto::wire` readers on arbitrary Cap'n Proto messages, read with the reader
//! options the server uses for its RPC streams: reading never panics, and what reads back
//! survives a write/read round trip. (`server_rpc` drives the same readers through the real
//! server; this target reaches them a thousand times faster.)

#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use qpq_proto::node_capnp::{commit_request, device_address, device_record, envelope};
use qpq_proto::wire;

fn server_reader_options() -> capnp::message::ReaderOptions {
    static OPTS: OnceLock<capnp::message::ReaderOptions> = OnceLock::new();
    *OPTS.get_or_init(|| {
        // As `serve_stream` in server/src/rpc/mod.rs computes them from the default configuration.
        let c = qpq_server::Config::for_tests("unused");
        let words = (c.max_message_bytes.max(c.max_chunk_bytes as usize) + (64 << 10)) / 8 * 2;
        let mut o = capnp::message::ReaderOptions::new();
        o.traversal_limit_in_words(Some(words)).nesting_limit(64);
        o
    })
}

fn check(msg: &capnp::message::Reader<impl capnp::message::ReaderSegments>) {
    if let Ok(r) = msg.get_root::<envelope::Reader>() {
        if let Ok(e) = wire::read_envelope(r) {
            let mut b = capnp::message::Builder::new_default();
            wire::write_envelope(b.init_root(), &e);
            assert_eq!(wire::read_envelope(b.get_root_as_reader().expect("root")).expect("re-read"), e);
        }
    }
    if let Ok(r) = msg.get_root::<device_record::Reader>() {
        if let Ok(d) = wire::read_device_record(r) {
            let mut b = capnp::message::Builder::new_default();
            wire::write_device_record(b.init_root(), &d);
            assert_eq!(wire::read_device_record(b.get_root_as_reader().expect("root")).expect("re-read"), d);
        }
    }
    if let Ok(r) = msg.get_root::<device_address::Reader>() {
        if let Ok(a) = wire::read_device_address(r) {
            let mut b = capnp::message::Builder::new_default();
            wire::write_device_address(b.init_root(), &a);
            assert_eq!(wire::read_device_address(b.get_root_as_reader().expect("root")).expect("re-read"), a);
        }
    }
    if let Ok(r) = msg.get_root::<commit_request::Reader>() {
        // As the server's `commit` reads it: lists are bounded first, then read until the
        // first bad entry.
        let _ = r.get_channel_id().map(|c| wire::read_channel(c, "channelId"));
        let _ = r.get_client_msg_id().map(qpq_proto::ClientMsgId::from_slice);
        for list in [r.get_add_devices(), r.get_remove_devices()].into_iter().flatten() {
            if list.len() <= 1000 {
                let _ = list.iter().map(wire::read_device_address).collect::<Result<Vec<_>, _>>();
            }
        }
        let _ = (r.get_commit(), r.get_welcome(), r.get_epoch());
    }
    if let Ok(t) = msg.get_root::<capnp::text::Reader>() {
        let _ = wire::read_user(t, "user");
    }
}

fuzz_target!(init: qpq_fuzz::seeds::write_if_asked(qpq_fuzz::seeds::proto_wire), |data: &[u8]| {
    let opts = server_reader_options();
    // As a stream reader sees it (segment table first), and as a flat slice.
    if let Ok(msg) = capnp::serialize::read_message(&mut &data[..], opts) {
        check(&msg);
    }
    let mut slice = data;
    if let Ok(msg) = capnp::serialize::read_message_from_flat_slice(&mut slice, opts) {
        check(&msg);
    }
});
