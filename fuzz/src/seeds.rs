//! Seed inputs of each target, built with the code under test so they never go stale. A
//! target writes its seeds into the directory named by `QPQ_FUZZ_SEEDS` when it starts
//! (`scripts/fuzz.sh` points it at the target's corpus), so libFuzzer starts from valid
//! inputs rather than from nothing.

use std::path::Path;

use qpq_core::call::{CallId, CallPeer, CallSignal, IceCandidate};
use qpq_core::{AppMessage, Body, MessageId, ReceiptKind};
use qpq_proto::node_capnp::{commit_request, device_record, envelope, node_service, session};
use qpq_proto::{ChannelId, DeviceAddress, DeviceId, DeviceRecord, Envelope, EnvelopeKind, UserId};

use crate::rpc_frames::{self, entry_method, Target, FIRST_FREE_QUESTION, NODE_SERVICE, SESSION};

/// Writes `seeds` as files `<name>` into `$QPQ_FUZZ_SEEDS`, if it is set.
pub fn write_if_asked(seeds: impl FnOnce() -> Vec<(String, Vec<u8>)>) {
    let Some(dir) = std::env::var_os("QPQ_FUZZ_SEEDS") else { return };
    let dir = Path::new(&dir);
    std::fs::create_dir_all(dir).expect("the seed directory can be created");
    for (name, bytes) in seeds() {
        std::fs::write(dir.join(format!("seed-{name}")), bytes).expect("a seed can be written");
    }
}

fn words(m: &capnp::message::Builder<capnp::message::HeapAllocator>) -> Vec<u8> {
    capnp::serialize::write_message_to_words(m)
}

/// Application messages of every kind.
pub fn app_message() -> Vec<(String, Vec<u8>)> {
    let text = |t: &str, reply_to| AppMessage {
        id: MessageId([1; 16]),
        sent_at: 1_700_000_000_000,
        body: Body::Text { text: t.into(), reply_to },
    };
    vec![
        ("text".into(), text("hello", None).encode()),
        ("reply".into(), text("re: hello ✓", Some(MessageId([2; 16]))).encode()),
        ("empty-text".into(), text("", None).encode()),
        (
            "receipt".into(),
            AppMessage {
                id: MessageId([3; 16]),
                sent_at: 5,
                body: Body::Receipt { kind: ReceiptKind::Read, ids: vec![MessageId([4; 16]), MessageId([5; 16])] },
            }
            .encode(),
        ),
        (
            "unknown-kind".into(),
            AppMessage { id: MessageId([6; 16]), sent_at: 0, body: Body::Unsupported { kind: 300 } }.encode(),
        ),
        ("version-2".into(), vec![2, 1, 16]),
        ("call-offer".into(), call(CallSignal::Offer {
            call: CallId([7; 16]),
            to: CallPeer { user: UserId::parse("bob@example.org").expect("a user"), device: None },
            video: true,
            sdp: format!("v=0\r\na=fingerprint:{FINGERPRINT}\r\n"),
            fingerprint: FINGERPRINT.into(),
            restart: false,
        })),
        ("call-candidates".into(), call(CallSignal::Candidates {
            call: CallId([7; 16]),
            to: CallPeer { user: UserId::parse("alice@example.org").expect("a user"), device: Some(DeviceId([8; 16])) },
            candidates: vec![IceCandidate { mid: "0".into(), m_line: 0, line: "candidate:1 1 udp 1 192.0.2.1 5000 typ host".into() }],
        })),
        ("call-hangup".into(), call(CallSignal::Hangup { call: CallId([7; 16]) })),
        ("call-media".into(), call(CallSignal::Media { call: CallId([7; 16]), muted: true, camera_off: true })),
    ]
}

const FINGERPRINT: &str = "sha-256 01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF";

fn call(signal: CallSignal) -> Vec<u8> {
    AppMessage { id: MessageId([9; 16]), sent_at: 1_700_000_000_000, body: Body::Call(signal) }.encode()
}

fn tlv(out: &mut Vec<u8>, tag: u8, value: &[u8]) {
    // Tags and lengths below 128 are one-byte LEB128 varints.
    out.push(tag);
    out.push(u8::try_from(value.len()).expect("a short seed field"));
    out.extend_from_slice(value);
}

/// Group metadata of both kinds, written field by field (kind 1, name 2, creator 3, creation
/// time 4, the disappearing timer 5, and a tag no version knows), so that the seeds stay
/// valid inputs when `GroupMeta` gains fields.
pub fn group_meta() -> Vec<(String, Vec<u8>)> {
    let meta = |kind: u8, name: &str, extra: &[(u8, &[u8])]| {
        let mut out = Vec::new();
        tlv(&mut out, 1, &[kind]);
        tlv(&mut out, 2, name.as_bytes());
        tlv(&mut out, 3, b"alice@example.org");
        tlv(&mut out, 4, &1_700_000_000_000u64.to_be_bytes());
        for (tag, value) in extra {
            tlv(&mut out, *tag, value);
        }
        out
    };
    vec![
        ("group".into(), meta(2, "Team \u{1f680}", &[])),
        ("direct".into(), meta(1, "", &[])),
        ("timer".into(), meta(2, "timed", &[(5, &[0x90, 0x1c])])),
        ("unknown-field".into(), meta(2, "later", &[(60, b"?")])),
    ]
}

/// `engine_intake` inputs: each valid message alone and unchanged (as the kind it is and as
/// a Welcome), raw bytes, a mutated message, other channels.
pub fn engine_intake(bases: usize) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for i in 1..=bases.min(15) as u8 {
        out.push((format!("base{i}"), vec![i << 4, 0]));
        out.push((format!("base{i}-as-welcome"), vec![(i << 4) | 2, 0]));
    }
    out.push(("raw".into(), vec![0x00, 5, 0, 1, 2, 3, 4, 5]));
    out.push(("mutated".into(), vec![0x20, 2, 0, 10, 0, 0, 4, 40, 0, 7]));
    out.push(("unknown-channel".into(), vec![0x28, 0]));
    out.push(("odd-channel".into(), vec![0x2c, 3, 1, 2, 3]));
    out.push(("two-in-a-row".into(), vec![0x20, 0, 0x30, 0]));
    out
}

fn sample_record() -> DeviceRecord {
    DeviceRecord {
        user: UserId::parse("seed@localhost").expect("user"),
        device_id: DeviceId([9; 16]),
        device_key: [7; 32],
        created_at: 1,
        signature: [8; 64],
    }
}

/// Single Cap'n Proto messages of the types the wire readers take.
pub fn proto_wire() -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut m = capnp::message::Builder::new_default();
    let device = DeviceAddress { user: UserId::parse("a@b.c").expect("user"), device: DeviceId([2; 16]) };
    let env = Envelope {
        seq: 7,
        channel: ChannelId::from_slice(&[1; 16]).expect("channel"),
        kind: EnvelopeKind::Commit,
        payload: vec![1, 2, 3],
        server_time: 5,
        expires_at: 0,
    };
    qpq_proto::wire::write_envelope(m.init_root::<envelope::Builder>(), &env);
    out.push(("envelope".into(), words(&m)));
    let mut m = capnp::message::Builder::new_default();
    qpq_proto::wire::write_device_record(m.init_root::<device_record::Builder>(), &sample_record());
    out.push(("device-record".into(), words(&m)));
    let mut m = capnp::message::Builder::new_default();
    {
        let mut r = m.init_root::<commit_request::Builder>();
        r.set_channel_id(&[1; 16]);
        r.set_epoch(3);
        r.set_commit(&[1, 2, 3]);
        r.set_welcome(&[4, 5]);
        let mut adds = r.reborrow().init_add_devices(2);
        qpq_proto::wire::write_device_address(adds.reborrow().get(0), &device);
        qpq_proto::wire::write_device_address(adds.reborrow().get(1), &device);
        r.set_client_msg_id(&[3; 16]);
    }
    out.push(("commit-request".into(), words(&m)));
    out
}

fn session_call<P: capnp::traits::Owned>(
    q: &mut u32,
    method: u16,
    caps: &[u32],
    fill: impl FnOnce(P::Builder<'_>),
) -> Vec<u8> {
    let frame = rpc_frames::call::<P>(*q, Target::session(), SESSION, method, caps, fill);
    *q += 1;
    frame
}

/// Session method ordinals (see `proto/schema/node.capnp`).
mod m {
    pub const WHOAMI: u16 = 0;
    pub const LIST_DEVICES: u16 = 1;
    pub const ADD_DEVICE: u16 = 2;
    pub const REVOKE_DEVICE: u16 = 3;
    pub const UPLOAD_KEY_PACKAGES: u16 = 4;
    pub const CLAIM_KEY_PACKAGES: u16 = 5;
    pub const KEY_PACKAGE_COUNT: u16 = 6;
    pub const CREATE_CHANNEL: u16 = 7;
    pub const CHANNEL_INFO: u16 = 8;
    pub const COMMIT: u16 = 9;
    pub const ENQUEUE: u16 = 10;
    pub const FETCH: u16 = 11;
    pub const ACK: u16 = 12;
    pub const SUBSCRIBE: u16 = 13;
    pub const CREATE_BLOB: u16 = 14;
    pub const PUT_CHUNK: u16 = 15;
    pub const GET_CHUNK: u16 = 16;
    pub const BLOB_INFO: u16 = 17;
    pub const DELETE_ACCOUNT: u16 = 18;
}

/// `server_rpc` inputs: a mode byte (1 = after the harness's login) and an RPC stream.
pub fn server_rpc() -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let entry = |frames: Vec<Vec<u8>>| [vec![0u8], frames.concat()].concat();
    let logged_in = |frames: Vec<Vec<u8>>| [vec![1u8], frames.concat()].concat();
    let boot = rpc_frames::bootstrap(0);
    let e = Target::entry(0);

    out.push((
        "hello".into(),
        entry(vec![
            boot.clone(),
            rpc_frames::call::<node_service::hello_params::Owned>(
                1,
                e,
                NODE_SERVICE,
                entry_method::HELLO,
                &[],
                |mut p| {
                    p.set_protocol_version(qpq_proto::PROTOCOL_VERSION);
                    p.set_client("seed");
                },
            ),
            rpc_frames::finish(1),
        ]),
    ));
    out.push((
        "hello-too-old".into(),
        entry(vec![
            boot.clone(),
            rpc_frames::call::<node_service::hello_params::Owned>(
                1,
                e,
                NODE_SERVICE,
                entry_method::HELLO,
                &[],
                |mut p| {
                    p.set_protocol_version(0);
                },
            ),
        ]),
    ));
    // A registration (with a record that is not signed by the key) and a login attempt.
    let rec = sample_record();
    out.push((
        "register-challenge-login".into(),
        entry(vec![
            boot.clone(),
            rpc_frames::call::<node_service::register_identity_params::Owned>(
                1,
                e,
                NODE_SERVICE,
                entry_method::REGISTER_IDENTITY,
                &[],
                |mut p| {
                    p.set_user(rec.user.as_str());
                    p.set_identity_key(&[0x3b; 32]);
                    qpq_proto::wire::write_device_record(p.init_device(), &rec);
                },
            ),
            rpc_frames::call::<node_service::challenge_params::Owned>(
                2,
                e,
                NODE_SERVICE,
                entry_method::CHALLENGE,
                &[],
                |mut p| {
                    p.set_user(rec.user.as_str());
                    p.set_device_id(&rec.device_id.0);
                },
            ),
            rpc_frames::call::<node_service::login_params::Owned>(
                3,
                e,
                NODE_SERVICE,
                entry_method::LOGIN,
                &[],
                |mut p| {
                    p.set_user(rec.user.as_str());
                    p.set_device_id(&rec.device_id.0);
                    p.set_nonce(&[0; 32]);
                    p.set_signature(&[0; 64]);
                },
            ),
        ]),
    ));

    let mut q = FIRST_FREE_QUESTION;
    out.push((
        "whoami".into(),
        logged_in(vec![session_call::<session::whoami_params::Owned>(&mut q, m::WHOAMI, &[], |_| {})]),
    ));
    let mut q = FIRST_FREE_QUESTION;
    out.push((
        "devices".into(),
        logged_in(vec![
            session_call::<session::list_devices_params::Owned>(&mut q, m::LIST_DEVICES, &[], |mut p| {
                p.set_user("fuzz0@localhost")
            }),
            session_call::<session::add_device_params::Owned>(&mut q, m::ADD_DEVICE, &[], |p| {
                qpq_proto::wire::write_device_record(p.init_device(), &rec)
            }),
            session_call::<session::revoke_device_params::Owned>(&mut q, m::REVOKE_DEVICE, &[], |mut p| {
                p.set_device_id(&[9; 16])
            }),
        ]),
    ));
    let mut q = FIRST_FREE_QUESTION;
    out.push((
        "key-packages".into(),
        logged_in(vec![
            session_call::<session::upload_key_packages_params::Owned>(&mut q, m::UPLOAD_KEY_PACKAGES, &[], |mut p| {
                let mut l = p.reborrow().init_packages(2);
                l.set(0, &[1; 100]);
                l.set(1, &[2; 120]);
                p.set_last_resort(&[3; 90]);
            }),
            session_call::<session::key_package_count_params::Owned>(&mut q, m::KEY_PACKAGE_COUNT, &[], |_| {}),
            session_call::<session::claim_key_packages_params::Owned>(&mut q, m::CLAIM_KEY_PACKAGES, &[], |mut p| {
                p.set_user("fuzz0@localhost")
            }),
        ]),
    ));
    let channel = [7u8; 16];
    let me = DeviceAddress { user: UserId::parse("fuzz0@localhost").expect("user"), device: DeviceId([3; 16]) };
    let mut q = FIRST_FREE_QUESTION;
    out.push((
        "channel".into(),
        logged_in(vec![
            session_call::<session::create_channel_params::Owned>(&mut q, m::CREATE_CHANNEL, &[], |mut p| {
                p.set_channel_id(&channel)
            }),
            session_call::<session::channel_info_params::Owned>(&mut q, m::CHANNEL_INFO, &[], |mut p| {
                p.set_channel_id(&channel)
            }),
            session_call::<session::commit_params::Owned>(&mut q, m::COMMIT, &[], |p| {
                let mut r = p.init_request();
                r.set_channel_id(&channel);
                r.set_epoch(0);
                r.set_commit(&[1, 2, 3]);
                r.set_welcome(&[4, 5, 6]);
                qpq_proto::wire::write_device_address(r.reborrow().init_add_devices(1).get(0), &me);
                r.set_client_msg_id(&[5; 16]);
            }),
            session_call::<session::enqueue_params::Owned>(&mut q, m::ENQUEUE, &[], |mut p| {
                p.set_channel_id(&channel);
                p.set_payload(&[9; 40]);
                p.set_client_msg_id(&[6; 16]);
                p.set_ttl_seconds(60);
            }),
            session_call::<session::fetch_params::Owned>(&mut q, m::FETCH, &[], |mut p| {
                p.set_after(0);
                p.set_limit(10);
            }),
            session_call::<session::ack_params::Owned>(&mut q, m::ACK, &[], |mut p| p.set_up_to(1)),
        ]),
    ));
    // Subscribe with a listener the client hosts (export 0); the server calls it back.
    let mut q = FIRST_FREE_QUESTION;
    const MARK: u64 = 0x5eed_5eed_5eed_5eed;
    let mut sub =
        session_call::<session::subscribe_params::Owned>(&mut q, m::SUBSCRIBE, &[0], |mut p| p.set_after(MARK));
    rpc_frames::patch_capability_after(&mut sub, MARK, 0);
    out.push((
        "subscribe".into(),
        logged_in(vec![
            sub,
            session_call::<session::enqueue_params::Owned>(&mut q, m::ENQUEUE, &[], |mut p| {
                p.set_channel_id(&channel);
                p.set_payload(&[8; 30]);
                p.set_client_msg_id(&[7; 16]);
            }),
        ]),
    ));
    let mut q = FIRST_FREE_QUESTION;
    out.push((
        "blobs".into(),
        logged_in(vec![
            session_call::<session::create_blob_params::Owned>(&mut q, m::CREATE_BLOB, &[], |mut p| {
                p.set_channel_id(&channel);
                p.set_size(100);
                p.set_chunk_size(40);
            }),
            session_call::<session::put_chunk_params::Owned>(&mut q, m::PUT_CHUNK, &[], |mut p| {
                p.set_blob_id(&[0; 16]);
                p.set_index(0);
                p.set_data(&[1; 40]);
            }),
            session_call::<session::get_chunk_params::Owned>(&mut q, m::GET_CHUNK, &[], |mut p| {
                p.set_blob_id(&[0; 16]);
                p.set_index(0);
            }),
            session_call::<session::blob_info_params::Owned>(&mut q, m::BLOB_INFO, &[], |mut p| {
                p.set_blob_id(&[0; 16])
            }),
        ]),
    ));
    let mut q = FIRST_FREE_QUESTION;
    out.push((
        "delete-account".into(),
        logged_in(vec![session_call::<session::delete_account_params::Owned>(&mut q, m::DELETE_ACCOUNT, &[], |_| {})]),
    ));
    out
}
