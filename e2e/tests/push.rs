//! Web Push end to end: real nodes (SQLite; two on PostgreSQL), native clients over QUIC, and
//! a local push service (`support/push_service.rs`) that checks every request against RFC
//! 8030, 8291 and 8292 and decrypts it with the subscription's keys.

mod support;

use std::path::Path;
use std::time::Duration;

use qpq_native::NativeClient;
use qpq_server::{Config, RunningNode};
use support::push_service::{PushService, ReceivedPush, TestSubscription};
use support::*;

/// How long after queueing the nodes push (short, for the tests).
const DELAY_MS: u64 = 500;
/// Long enough for a second push to have come if one were coming: the delay several times
/// over, plus a request.
const QUIET: Duration = Duration::from_millis(6 * DELAY_MS + 1500);
/// Every push is `wake`, padded: header (16 + 4 + 1 + 65), 64-byte record, 16-byte tag.
const PUSH_BODY_LEN: usize = 166;

fn push_config(dir: &Path) -> Config {
    let mut c = Config::for_tests(dir);
    c.push_allow_http = true;
    c.push_delay_ms = DELAY_MS;
    c
}

async fn subscribe(c: &NativeClient, sub: &TestSubscription) -> Vec<u8> {
    let session = c.session().expect("online");
    session.set_push_subscription(&sub.endpoint, &sub.p256dh, &sub.auth).await.expect("subscription registered");
    session.vapid_public_key().await.expect("VAPID key")
}

/// The push carries nothing but the wake-up: no text, no names, padded to one length.
fn assert_no_content(push: &ReceivedPush, vapid_key: &[u8], secrets: &[&str]) {
    assert_eq!(push.plaintext, b"wake", "the payload is the wake-up hint only");
    for s in secrets {
        assert!(!String::from_utf8_lossy(&push.plaintext).contains(s), "the push names {s:?}");
    }
    assert_eq!(push.body_len, PUSH_BODY_LEN, "padded to one length");
    assert_eq!(push.vapid_key, vapid_key, "signed with the key the node hands to browsers");
    assert_eq!(push.contact, "mailto:postmaster@localhost");
    assert_eq!(push.ttl, 86400);
    assert_eq!(push.urgency, "high");
}

async fn subscriptions_stored(dir: &Path) -> i64 {
    let url = format!("sqlite://{}?mode=ro", dir.join("qpq.sqlite").display());
    let mut conn = <sqlx::SqliteConnection as sqlx::Connection>::connect(&url).await.expect("open the node's database");
    sqlx::query_scalar("SELECT COUNT(*) FROM push_subscriptions").fetch_one(&mut conn).await.expect("count")
}

#[test]
fn a_device_without_a_session_gets_one_coalesced_push_and_410_removes_it() {
    run(async {
        let dir = tempfile::tempdir().unwrap();
        let node = qpq_server::spawn(push_config(dir.path())).expect("node starts");
        let push = PushService::start().await;
        let alice = client(&node, dir.path(), "alice").await;
        let bob = client(&node, dir.path(), "bob").await;
        let conv = chat(&alice, &bob).await;
        let sub = push.subscribe();
        let vapid_key = subscribe(&bob, &sub).await;
        assert_eq!(vapid_key.len(), 65);

        // Bob's session is live: it takes the message at once, nobody is pushed.
        alice.send_text(&conv, "while you are here").await.unwrap();
        wait_texts(&bob, &conv, &["hi bob", "hello alice", "while you are here"]).await;
        tokio::time::sleep(QUIET).await;
        assert!(push.received().is_empty(), "no push while a live session is subscribed");

        // Bob closes the app. Three messages, one push.
        bob.shutdown().await;
        drop(bob);
        tokio::time::sleep(Duration::from_millis(200)).await;
        for text in ["first secret", "second secret", "third secret"] {
            alice.send_text(&conv, text).await.unwrap();
        }
        wait_outbox_empty(&alice).await;
        let got = push.wait_for(&sub.id, 1, Duration::from_secs(15)).await;
        assert_no_content(&got[0], &vapid_key, &["secret", "alice", "bob"]);
        tokio::time::sleep(QUIET).await;
        assert_eq!(push.received().len(), 1, "the three messages were coalesced into one push");

        // Bob comes back: he fetches everything, and while he is there nothing is pushed.
        let bob = reopen(node.addr(), node.fingerprint(), dir.path(), "bob").await;
        assert!(online(&bob).await);
        wait_texts(
            &bob,
            &conv,
            &["hi bob", "hello alice", "while you are here", "first secret", "second secret", "third secret"],
        )
        .await;
        alice.send_text(&conv, "welcome back").await.unwrap();
        wait_texts(
            &bob,
            &conv,
            &["hi bob", "hello alice", "while you are here", "first secret", "second secret", "third secret", "welcome back"],
        )
        .await;
        tokio::time::sleep(QUIET).await;
        assert_eq!(push.received().len(), 1, "no push while Bob is online");

        // The browser dropped the subscription: the push service answers 410, the node forgets it.
        push.make_gone(&sub.id);
        bob.shutdown().await;
        drop(bob);
        assert_eq!(subscriptions_stored(dir.path()).await, 1);
        alice.send_text(&conv, "are you there").await.unwrap();
        let removed = tokio::time::timeout(Duration::from_secs(15), async {
            while subscriptions_stored(dir.path()).await != 0 {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
        .await;
        assert!(removed.is_ok(), "a 410 removes the subscription");
        alice.send_text(&conv, "hello?").await.unwrap();
        wait_outbox_empty(&alice).await;
        tokio::time::sleep(QUIET).await;
        assert_eq!(push.received().len(), 1, "nothing more is sent to a gone subscription");
        assert!(push.refused().is_empty(), "every request passed the push service's checks: {:?}", push.refused());
        node.stop();
    });
}

/// Two nodes on one PostgreSQL database both run the sender; one holds the role, and a
/// message queued through either node pushes exactly once.
#[test]
fn a_cluster_pushes_once_whichever_node_queued() {
    run(async {
        let dir = tempfile::tempdir().unwrap();
        let db = create_database().await;
        let spawn = |sub: &str| -> RunningNode {
            let mut c = push_config(&dir.path().join(sub));
            c.database = Some(db.url.clone());
            qpq_server::spawn(c).expect("node starts")
        };
        let (a, b) = (spawn("a"), spawn("b"));
        let push = PushService::start().await;
        let alice = client(&a, dir.path(), "alice").await;
        let bob = client(&b, dir.path(), "bob").await;
        let conv = chat(&alice, &bob).await;
        let sub = push.subscribe();
        let key_b = subscribe(&bob, &sub).await;
        let key_a = alice.session().unwrap().vapid_public_key().await.unwrap();
        assert_eq!(key_a, key_b, "every node of the cluster uses the same VAPID key");

        bob.shutdown().await;
        drop(bob);
        tokio::time::sleep(Duration::from_millis(200)).await;
        for text in ["one", "two"] {
            alice.send_text(&conv, text).await.unwrap();
        }
        wait_outbox_empty(&alice).await;
        let got = push.wait_for(&sub.id, 1, Duration::from_secs(20)).await;
        assert_no_content(&got[0], &key_a, &["one", "two", "alice", "bob"]);
        tokio::time::sleep(QUIET).await;
        assert_eq!(push.received().len(), 1, "one push for the cluster, not one per node");
        drop(alice);
        a.stop();
        b.stop();
        db.drop_database().await;
    });
}
