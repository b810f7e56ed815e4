//! Bad input and privacy at the server: every refusal is clear, the server keeps serving,
//! and nothing readable is stored.

mod support;

use std::time::Duration;

use qpq_proto::{ChannelId, DeviceId, ErrorCode};
use support::*;

/// Proves the node still serves: a message goes from one client to another.
async fn still_serves(a: &qpq_native::NativeClient, b: &qpq_native::NativeClient, conv: &ChannelId, text: &str) {
    a.send_text(conv, text).await.unwrap();
    let ok = b
        .wait_for(10_000, |e| {
            e.history(conv).iter().any(|m| matches!(&m.content, qpq_core::Content::Text { text: t, .. } if t == text))
        })
        .await;
    assert!(ok, "the server still delivers after: {text}");
}

async fn read_to_close(recv: &mut quinn::RecvStream) -> bool {
    let mut buf = vec![0u8; 4096];
    let r = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match recv.read(&mut buf).await {
                Ok(None) | Err(_) => return,
                Ok(Some(_)) => {}
            }
        }
    })
    .await;
    r.is_ok()
}

#[test]
fn malformed_frames_and_refused_calls_leave_the_server_serving() {
    run(async {
        let dir = tempfile::tempdir().unwrap();
        let node = sqlite_node(dir.path());
        let alice = client(&node, dir.path(), "alice").await;
        let bob = client(&node, dir.path(), "bob").await;
        let mallory = client(&node, dir.path(), "mallory").await;
        let conv = alice.start_chat(&user("bob")).await.unwrap();
        wait_conversation(&bob, &conv).await;
        still_serves(&alice, &bob, &conv, "baseline").await;

        let raw = raw_connection(&node).await;

        // Garbage instead of a Cap'n Proto frame: that stream is closed.
        let (mut send, mut recv) = raw.open_bi().await.unwrap();
        send.write_all(&[0xde, 0xad, 0xbe, 0xef, 0xff, 0xff, 0xff, 0x7f, 1, 2, 3, 4, 5, 6, 7, 8]).await.unwrap();
        assert!(read_to_close(&mut recv).await, "garbage closes the stream");
        still_serves(&alice, &bob, &conv, "after garbage").await;

        // A truncated frame, then the stream ends.
        let (mut send, mut recv) = raw.open_bi().await.unwrap();
        send.write_all(&[0, 0, 0, 0, 10, 0, 0, 0, 0, 0]).await.unwrap();
        send.finish().unwrap();
        assert!(read_to_close(&mut recv).await, "a truncated frame ends the stream");

        // A frame header announcing a gigabyte: refused before anything is allocated.
        let (mut send, mut recv) = raw.open_bi().await.unwrap();
        send.write_all(&[0, 0, 0, 0, 0, 0, 0, 0x08]).await.unwrap();
        send.write_all(&[0u8; 64]).await.unwrap();
        assert!(read_to_close(&mut recv).await, "an oversize frame closes the stream");
        still_serves(&bob, &alice, &conv, "after oversize frame").await;

        // A call that needs a session, made before login, on the bootstrap capability.
        let c = rpc(&raw).await;
        let as_session: qpq_proto::node_capnp::session::Client =
            capnp::capability::FromClientHook::new(c.node_service().client.hook);
        let mut req = as_session.enqueue_request();
        req.get().set_channel_id(conv.as_bytes());
        req.get().set_payload(b"sneaky");
        req.get().set_client_msg_id(&[1; 16]);
        let err = req.send().promise.await.err().expect("refused before login");
        assert!(err.extra.contains("not implemented") || err.extra.contains("unimplemented"), "{}", err.extra);

        // Login with a wrong signature, and with a reused challenge.
        let nonce = c.challenge(&user("alice"), &alice.with_engine(|e| e.device_id())).await.unwrap();
        let err = c.login(&user("alice"), &alice.with_engine(|e| e.device_id()), &nonce, &[7; 64]).await.err().unwrap();
        assert_eq!(err.remote_code(), Some(ErrorCode::LoginFailed));
        let sig = alice.with_engine(|e| e.sign_login(&nonce, &[]));
        let err = c.login(&user("alice"), &alice.with_engine(|e| e.device_id()), &nonce, &sig).await.err().unwrap();
        assert_eq!(err.remote_code(), Some(ErrorCode::LoginFailed), "a challenge is single-use");
        // Registering a name of another domain, or a taken one.
        let err = c
            .register_identity(&alice.with_engine(|e| e.identity_public_key()), &alice.with_engine(|e| e.device_record().clone()))
            .await
            .err()
            .unwrap();
        assert_eq!(err.remote_code(), Some(ErrorCode::UserExists));

        // Mallory's session: another user's channel, an unknown channel, an oversize message.
        let ms = mallory.session().unwrap();
        let err = ms.channel_info(&conv).await.err().unwrap();
        assert_eq!(err.remote_code(), Some(ErrorCode::NotMember));
        let enqueue = |channel: ChannelId, payload: Vec<u8>| qpq_core::Outbound {
            id: qpq_proto::ClientMsgId([9; 16]),
            op: qpq_core::OutboundOp::Enqueue { channel, payload, ttl_secs: 0 },
        };
        match ms.send_outbound(&enqueue(conv.clone(), mls::application(&conv, 1, b"x"))).await.unwrap() {
            qpq_core::OutboundResult::Refused { code, .. } => assert_eq!(code, Some(ErrorCode::NotMember)),
            r => panic!("mallory posted into alice's chat: {r:?}"),
        }
        // The channel id the node's account hints use cannot be a conversation's.
        let reserved = qpq_core::Outbound {
            id: qpq_proto::ClientMsgId([8; 16]),
            op: qpq_core::OutboundOp::CreateChannel { channel: ChannelId::account(), group_info: vec![] },
        };
        match ms.send_outbound(&reserved).await.unwrap() {
            qpq_core::OutboundResult::Refused { code, message } => {
                assert_eq!(code, Some(ErrorCode::BadRequest), "{message}");
                assert!(message.contains("reserved"), "{message}");
            }
            r => panic!("the reserved channel was created: {r:?}"),
        }
        let unknown = ChannelId::from_slice(&[0x42; 16]).unwrap();
        match ms.send_outbound(&enqueue(unknown.clone(), mls::application(&unknown, 0, b"x"))).await.unwrap() {
            qpq_core::OutboundResult::Refused { code, .. } => assert_eq!(code, Some(ErrorCode::NoSuchChannel)),
            r => panic!("unknown channel accepted: {r:?}"),
        }
        let bs = bob.session().unwrap();
        match bs.send_outbound(&enqueue(conv.clone(), vec![0; (1 << 20) + 1])).await.unwrap() {
            qpq_core::OutboundResult::Refused { code, message } => {
                assert_eq!(code, Some(ErrorCode::TooLarge));
                assert!(message.contains("at most"), "{message}");
            }
            r => panic!("oversize message accepted: {r:?}"),
        }
        still_serves(&alice, &bob, &conv, "after refusals").await;

        node.stop();
    });
}

#[test]
fn sixth_device_and_reused_key_package_are_refused() {
    run(async {
        let dir = tempfile::tempdir().unwrap();
        let node = sqlite_node(dir.path());
        let alice = client(&node, dir.path(), "alice").await;
        let bob = client(&node, dir.path(), "bob").await;
        let s = alice.session().unwrap();

        // Alice has one device; four more are fine, the sixth is refused.
        for i in 0..5u8 {
            let key = ed25519_dalek::SigningKey::from_bytes(&[i + 10; 32]).verifying_key().to_bytes();
            let rec = alice.with_engine(|e| e.sign_device_record(DeviceId([i + 1; 16]), key, 1));
            let r = s.add_device(&rec).await;
            if i < 4 {
                r.unwrap();
            } else {
                assert_eq!(r.unwrap_err().remote_code(), Some(ErrorCode::TooManyDevices));
            }
        }
        let (_, devices) = s.list_devices(&user("alice")).await.unwrap();
        assert_eq!(devices.len(), 5);
        // A record not signed by Alice's identity key.
        let mut forged = alice.with_engine(|e| e.sign_device_record(DeviceId([99; 16]), [3; 32], 1));
        forged.created_at = 2;
        assert!(s.add_device(&forged).await.is_err());

        // Bob's key package, once claimed, cannot be put back.
        let claimed = s.claim_key_packages(&user("bob")).await.unwrap();
        assert_eq!(claimed.len(), 1);
        let bs = bob.session().unwrap();
        let err = bs.upload_key_packages(&[claimed[0].key_package.clone()], None).await.unwrap_err();
        assert_eq!(err.remote_code(), Some(ErrorCode::KeyPackageReused));
        // Claiming again yields a different package.
        let again = s.claim_key_packages(&user("bob")).await.unwrap();
        assert_ne!(again[0].key_package, claimed[0].key_package);
        // An unknown user.
        let err = s.claim_key_packages(&user("nobody")).await.unwrap_err();
        assert_eq!(err.remote_code(), Some(ErrorCode::NoSuchUser));

        let conv = alice.start_chat(&user("bob")).await.unwrap();
        wait_conversation(&bob, &conv).await;
        still_serves(&alice, &bob, &conv, "devices and packages checked").await;
        node.stop();
    });
}

const CANARY: &str = "canary-7f3a91c2-plaintext-must-never-be-stored";
/// A display name and status text, which travel only inside the conversations.
const CANARY_NAME: &str = "Canary Display Name 51e0";
const CANARY_STATUS: &str = "canary status text 0b9d";
/// A group's name: sealed in the group context, which commits (sent in clear for the node to
/// check) carry when the timer changes.
const CANARY_GROUP: &str = "Canary Group Name 8c44";

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn no_plaintext_at_rest_in_sqlite() {
    run(async {
        let dir = tempfile::tempdir().unwrap();
        let node = sqlite_node(dir.path());
        let alice = client(&node, dir.path(), "alice").await;
        let bob = client(&node, dir.path(), "bob").await;
        let conv = alice.start_chat(&user("bob")).await.unwrap();
        wait_conversation(&bob, &conv).await;
        let group = alice.create_group(CANARY_GROUP, &[user("bob")]).await.unwrap();
        wait_conversation(&bob, &group).await;
        // Bob goes offline so the message, Alice's profile and the group's new timer (a commit
        // carrying the group's metadata) stay queued on the server.
        bob.stop();
        alice.set_profile(CANARY_NAME, CANARY_STATUS, None).await.unwrap();
        alice.send_text(&conv, CANARY).await.unwrap();
        alice.set_disappearing(&group, 3600).await.unwrap();
        wait_outbox_empty(&alice).await;
        node.stop();
        let mut scanned = 0;
        for entry in std::fs::read_dir(dir.path()).unwrap() {
            let p = entry.unwrap().path();
            let name = p.file_name().unwrap().to_string_lossy().to_string();
            if name.starts_with("qpq.sqlite") {
                // The WAL and shared-memory files may vanish as the last connection closes.
                let Ok(bytes) = std::fs::read(&p) else { continue };
                scanned += bytes.len();
                for secret in [CANARY, CANARY_NAME, CANARY_STATUS, CANARY_GROUP] {
                    assert!(!contains(&bytes, secret.as_bytes()), "{name} contains {secret:?}");
                }
            }
        }
        assert!(scanned > 0, "the database files were scanned");
        // The client's own state does hold it (that is the point of the history).
        assert!(contains(&std::fs::read(state_path(dir.path(), "alice")).unwrap(), CANARY.as_bytes()));
    });
}

#[test]
fn no_plaintext_at_rest_in_postgres() {
    run(async {
        let db = create_database().await;
        let dir = tempfile::tempdir().unwrap();
        let node = pg_node(dir.path(), &db.url);
        let alice = client(&node, dir.path(), "alice").await;
        let bob = client(&node, dir.path(), "bob").await;
        let conv = alice.start_chat(&user("bob")).await.unwrap();
        wait_conversation(&bob, &conv).await;
        let group = alice.create_group(CANARY_GROUP, &[user("bob")]).await.unwrap();
        wait_conversation(&bob, &group).await;
        bob.stop();
        alice.set_profile(CANARY_NAME, CANARY_STATUS, None).await.unwrap();
        alice.send_text(&conv, CANARY).await.unwrap();
        alice.set_disappearing(&group, 3600).await.unwrap();
        wait_outbox_empty(&alice).await;

        use sqlx::{Connection as _, Row};
        let mut conn = sqlx::PgConnection::connect(&db.url).await.unwrap();
        let tables: Vec<String> = sqlx::query("SELECT table_name::text FROM information_schema.tables WHERE table_schema = 'public'")
            .fetch_all(&mut conn)
            .await
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect();
        assert!(tables.len() >= 5, "found tables {tables:?}");
        let secrets: Vec<String> = [CANARY, CANARY_NAME, CANARY_STATUS, CANARY_GROUP]
            .iter()
            .flat_map(|s| [s.to_string(), hex::encode(s)])
            .collect();
        let mut rows = 0;
        for t in &tables {
            let dump: Vec<String> = sqlx::query(&format!("SELECT t::text FROM \"{t}\" t"))
                .fetch_all(&mut conn)
                .await
                .unwrap()
                .iter()
                .map(|r| r.get(0))
                .collect();
            rows += dump.len();
            for row in dump {
                for secret in &secrets {
                    assert!(!row.contains(secret.as_str()), "table {t} holds {secret:?}");
                }
            }
        }
        assert!(rows > 0, "rows were scanned");
        drop(conn);
        drop((alice, bob));
        node.stop();
        db.drop_database().await;
    });
}

#[test]
fn enqueue_retried_with_the_same_id_is_delivered_once() {
    run(async {
        let dir = tempfile::tempdir().unwrap();
        let node = sqlite_node(dir.path());
        let alice = client(&node, dir.path(), "alice").await;
        let bob = client(&node, dir.path(), "bob").await;
        let conv = alice.start_chat(&user("bob")).await.unwrap();
        wait_conversation(&bob, &conv).await;
        // Bob goes offline; look at his queue from a second login of his device.
        bob.stop();
        let raw = raw_connection(&node).await;
        let c = rpc(&raw).await;
        let dev = bob.with_engine(|e| e.device_id());
        let nonce = c.challenge(&user("bob"), &dev).await.unwrap();
        let sig = bob.with_engine(|e| e.sign_login(&nonce, &[]));
        let bob_raw = c.login(&user("bob"), &dev, &nonce, &sig).await.unwrap();
        let before = bob_raw.fetch(0, 500).await.unwrap().len();

        let s = alice.session().unwrap();
        let epoch = alice.with_engine(|e| e.conversation(&conv).unwrap().epoch);
        let out = qpq_core::Outbound {
            id: qpq_proto::ClientMsgId([5; 16]),
            op: qpq_core::OutboundOp::Enqueue {
                channel: conv.clone(),
                payload: mls::application(&conv, epoch, &[1, 2, 3]),
                ttl_secs: 0,
            },
        };
        for _ in 0..3 {
            let r = s.send_outbound(&out).await.unwrap();
            assert!(matches!(r, qpq_core::OutboundResult::Accepted { .. }));
        }
        let after = bob_raw.fetch(0, 500).await.unwrap();
        assert_eq!(after.len(), before + 1, "three sends with one id queue one envelope");
        node.stop();
    });
}
