//! Revocation that bites: revoking a device, or deleting an account, closes that device's
//! open sessions within a second — on the node where it happened and on another node of
//! the cluster — and the device can no longer log in (`device_revoked`: a client stops trying
//! and says why); its key packages are gone, and the user's other devices go on working. Also
//! here: a login signature is bound to its connection's TLS exporter value.

mod support;

use std::time::{Duration, Instant};

use qpq_proto::ErrorCode;
use support::raw::{login, raw_account, try_login, RawDevice};
use support::*;

/// How soon a revoked device's session must be closed.
const CLOSE_WITHIN: Duration = Duration::from_secs(1);

/// Waits for `login`'s stream to close; returns how long it took from `since`.
async fn closed_after(l: &support::raw::Login, since: Instant) -> Duration {
    tokio::time::timeout(Duration::from_secs(5), l.conn.closed()).await.expect("the session's stream is closed");
    since.elapsed()
}

/// A device linked to a client's account: its record signed by the client's identity key
/// and added through the client's session.
async fn link_device(owner: &qpq_native::NativeClient, n: u8) -> RawDevice {
    use ed25519_dalek::SigningKey;
    let key = SigningKey::from_bytes(&[0x40 + n; 32]);
    let id = qpq_proto::DeviceId([0x40 + n; 16]);
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64;
    let record = owner.with_engine(|e| e.sign_device_record(id, key.verifying_key().to_bytes(), now));
    owner.session().unwrap().add_device(&record).await.expect("the owner adds the device");
    RawDevice { record, key }
}

#[test]
fn a_revoked_device_is_closed_within_a_second_and_cannot_come_back() {
    run(async {
        let dir = tempfile::tempdir().unwrap();
        let node = sqlite_node(dir.path());
        let alice = client(&node, dir.path(), "alice").await;
        let bob = client(&node, dir.path(), "bob").await;
        let conv = chat(&alice, &bob).await;

        // Alice's second device logs in, holds key packages and a subscription.
        let second = link_device(&alice, 2).await;
        let s2 = login(&node, &second).await;
        s2.session.upload_key_packages(&[b"kp of the second device".to_vec()], None).await.unwrap();
        s2.session.whoami().await.unwrap();

        // Alice revokes it from her first device.
        let started = Instant::now();
        alice.session().unwrap().revoke_device(&second.addr().device).await.unwrap();
        let took = closed_after(&s2, started).await;
        assert!(took < CLOSE_WITHIN, "the revoked session was closed after {took:?}");
        let err = s2.session.whoami().await.expect_err("the closed session answers nothing");
        assert!(err.is_transport(), "{err}");

        // It cannot log in again, on a new connection either.
        let again = rpc(&raw_connection(&node).await).await;
        let err = try_login(&again, &second).await.err().expect("a revoked device cannot log in");
        assert_eq!(err.remote_code(), Some(ErrorCode::DeviceRevoked));

        // Its key packages are gone: claiming Alice's gives her first device's only.
        let claimed = bob.session().unwrap().claim_key_packages(&alice.user()).await.unwrap();
        let first_id = alice.with_engine(|e| e.device_id());
        assert!(claimed.iter().all(|c| c.device == first_id), "nothing of the revoked device is handed out");
        let (_, devices) = bob.session().unwrap().list_devices(&alice.user()).await.unwrap();
        assert_eq!(devices.len(), 1);

        // Alice's first device and Bob go on.
        alice.send_text(&conv, "still here").await.unwrap();
        wait_texts(&bob, &conv, &["hi bob", "hello alice", "still here"]).await;
        node.stop();
    });
}

#[test]
fn a_deleted_account_closes_every_session_of_its_devices() {
    run(async {
        let dir = tempfile::tempdir().unwrap();
        let node = sqlite_node(dir.path());
        let (_, devices) = raw_account(&node, "carol", 21, 3).await;
        let sessions = [login(&node, &devices[1]).await, login(&node, &devices[2]).await];
        let first = login(&node, &devices[0]).await;
        let started = Instant::now();
        first.session.delete_account().await.unwrap();
        for s in &sessions {
            let took = closed_after(s, started).await;
            assert!(took < CLOSE_WITHIN, "a session of the deleted account was closed after {took:?}");
        }
        closed_after(&first, started).await;
        for d in &devices {
            let c = rpc(&raw_connection(&node).await).await;
            let err = try_login(&c, d).await.err().expect("no device of a deleted account logs in");
            assert_eq!(err.remote_code(), Some(ErrorCode::DeviceRevoked));
        }
        node.stop();
    });
}

#[test]
fn a_revocation_on_one_node_closes_the_session_on_another() {
    run(async {
        let db = create_database().await;
        let (d1, d2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let (node1, node2) = (pg_node(d1.path(), &db.url), pg_node(d2.path(), &db.url));
        let (_, devices) = raw_account(&node1, "erin", 23, 3).await;
        // Erin's second device is on node 2; her first revokes it on node 1.
        let on_node2 = login(&node2, &devices[1]).await;
        let third_on_node2 = login(&node2, &devices[2]).await;
        let first = login(&node1, &devices[0]).await;
        let started = Instant::now();
        first.session.revoke_device(&devices[1].addr().device).await.unwrap();
        let took = closed_after(&on_node2, started).await;
        assert!(took < CLOSE_WITHIN, "node 2 closed the revoked session after {took:?}");
        // Only that device's: her third device on node 2 goes on.
        third_on_node2.session.whoami().await.expect("another device of the same user is not closed");
        let err = try_login(&rpc(&raw_connection(&node2).await).await, &devices[1]).await.err().unwrap();
        assert_eq!(err.remote_code(), Some(ErrorCode::DeviceRevoked));

        // Deleting the account on node 1 closes the third device's session on node 2.
        let started = Instant::now();
        first.session.delete_account().await.unwrap();
        let took = closed_after(&third_on_node2, started).await;
        assert!(took < CLOSE_WITHIN, "node 2 closed the deleted account's session after {took:?}");
        node1.stop();
        node2.stop();
        db.drop_database().await;
    });
}

#[test]
fn a_device_id_shared_with_a_revoked_one_does_not_close_other_users_sessions() {
    run(async {
        // Wake-ups name devices by id only. Mallory registers a device with Frank's device id
        // and revokes it: Frank's session must survive, because the node looks Frank up.
        let dir = tempfile::tempdir().unwrap();
        let node = sqlite_node(dir.path());
        let (_, frank) = raw_account(&node, "frank", 25, 1).await;
        let frank_session = login(&node, &frank[0]).await;
        let mallory = support::raw::RawUser::new("mallory", 27);
        let m1 = mallory.device(1);
        let mut clone = mallory.device(2);
        clone.record = {
            use ed25519_dalek::Signer;
            let mut r = clone.record.clone();
            r.device_id = frank[0].addr().device;
            r.signature = mallory
                .identity
                .sign(&qpq_proto::DeviceRecord::signed_bytes(&r.user, &r.device_id, &r.device_key, r.created_at))
                .to_bytes();
            r
        };
        let c = rpc(&raw_connection(&node).await).await;
        mallory.register(&c, &m1).await;
        let ms = try_login(&c, &m1).await.unwrap();
        ms.add_device(&clone.record).await.unwrap();
        ms.revoke_device(&clone.addr().device).await.unwrap();
        sleep(1500).await;
        frank_session.session.whoami().await.expect("Frank's session is not closed by Mallory's revocation");
        node.stop();
    });
}

#[test]
fn a_client_whose_device_was_revoked_says_so_and_stops_trying() {
    run(async {
        let dir = tempfile::tempdir().unwrap();
        let node = sqlite_node(dir.path());
        let alice = client(&node, dir.path(), "alice").await;
        let states = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
        let seen = states.clone();
        alice.on_event(move |e| {
            if let qpq_client::ClientEvent::Connection(s) = e {
                seen.borrow_mut().push(s.clone());
            }
        });
        // Alice's other device removes the one her client runs on.
        let other = link_device(&alice, 3).await;
        let s = login(&node, &other).await;
        s.session.revoke_device(&alice.with_engine(|e| e.device_id())).await.unwrap();

        let a = alice.clone();
        let removed = alice
            .wait_for(10_000, move |_| matches!(a.connection_state(), qpq_client::ConnState::Removed { .. }))
            .await;
        assert!(removed, "the client says its device was removed; states: {:?}", states.borrow());
        let qpq_client::ConnState::Removed { reason } = alice.connection_state() else { unreachable!() };
        assert!(reason.contains("removed from your account"), "{reason}");
        // No attempt follows: several reconnect delays later nothing has changed.
        let events = states.borrow().len();
        sleep(3_000).await;
        assert_eq!(states.borrow().len(), events, "no state change after removal: {:?}", states.borrow());
        assert!(alice.session().is_err());
        node.stop();
    });
}

#[test]
fn a_login_signature_is_bound_to_its_connection() {
    use ed25519_dalek::Signer;
    use qpq_proto::{login_bytes, LOGIN_BINDING_LEN, LOGIN_EXPORTER_LABEL};
    let exporter = |c: &quinn::Connection| {
        let mut b = [0u8; LOGIN_BINDING_LEN];
        c.export_keying_material(&mut b, LOGIN_EXPORTER_LABEL, b"").unwrap();
        b
    };
    run(async {
        let dir = tempfile::tempdir().unwrap();
        let node = sqlite_node(dir.path());
        let (_, devices) = raw_account(&node, "gina", 29, 1).await;
        let d = &devices[0];
        let addr = d.addr();
        // The device signs for connection A; someone who relays the signature to connection B
        // (a man in the middle holding B to the real node) is refused.
        let (a, b) = (raw_connection(&node).await, raw_connection(&node).await);
        assert_ne!(exporter(&a), exporter(&b));
        let on_b = rpc(&b).await;
        on_b.hello("relay").await.unwrap();
        let nonce = on_b.challenge(&addr.user, &addr.device).await.unwrap();
        let relayed = d.key.sign(&login_bytes(&addr.user, &addr.device, &nonce, &exporter(&a))).to_bytes();
        let err = on_b.login(&addr.user, &addr.device, &nonce, &relayed).await.err().expect("a relayed login is refused");
        assert_eq!(err.remote_code(), Some(ErrorCode::LoginFailed));
        // Signed for B itself, it is accepted.
        let nonce = on_b.challenge(&addr.user, &addr.device).await.unwrap();
        let own = d.key.sign(&login_bytes(&addr.user, &addr.device, &nonce, &exporter(&b))).to_bytes();
        let session = on_b.login(&addr.user, &addr.device, &nonce, &own).await.expect("a bound login");
        session.whoami().await.unwrap();

        // The native client binds its logins: its QUIC connector hands out the exporter value.
        let q = qpq_native::QuicConnector::pinned(node.addr(), node.fingerprint()).unwrap();
        let (_, binding) = qpq_client::Connector::connect_bound(&q).await.unwrap();
        assert!(binding.is_some(), "a direct QUIC connection binds the login");
        node.stop();
    });
}
