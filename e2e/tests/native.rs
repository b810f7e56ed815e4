//! End to end with native clients: real server nodes over QUIC, SQLite and PostgreSQL.

mod support;

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Instant;

use futures::future::LocalBoxFuture;
use qpq_client::{Client, ClientEvent, Connector, MemoryStore, Platform};
use qpq_core::{Content, Event, Status, SystemEvent};
use qpq_native::{QuicConnector, TokioPlatform};
use support::*;

#[test]
fn alice_and_bob_chat_both_ways() {
    run(async {
        let dir = tempfile::tempdir().unwrap();
        let node = sqlite_node(dir.path());
        let alice = client(&node, dir.path(), "alice").await;
        let bob = client(&node, dir.path(), "bob").await;

        let conv = alice.start_chat(&user("bob")).await.unwrap();
        wait_conversation(&bob, &conv).await;
        alice.send_text(&conv, "hi bob").await.unwrap();
        wait_texts(&bob, &conv, &["hi bob"]).await;
        bob.send_text(&conv, "hello alice").await.unwrap();
        wait_texts(&alice, &conv, &["hi bob", "hello alice"]).await;

        // Bob's delivery receipt turns Alice's message to "delivered".
        let delivered = alice
            .wait_for(10_000, |e| e.history(&conv).iter().any(|m| m.outgoing && m.status == Status::Delivered))
            .await;
        assert!(delivered, "alice sees her message delivered");
        // Starting the chat again opens the same conversation.
        assert_eq!(alice.start_chat(&user("bob")).await.unwrap(), conv);
        assert_eq!(bob.with_engine(|e| e.conversation(&conv).unwrap().title(e.user())), "alice@localhost");
        node.stop();
    });
}

#[test]
fn group_of_three_with_add_and_remove() {
    run(async {
        let dir = tempfile::tempdir().unwrap();
        let node = sqlite_node(dir.path());
        let alice = client(&node, dir.path(), "alice").await;
        let bob = client(&node, dir.path(), "bob").await;
        let carol = client(&node, dir.path(), "carol").await;
        let dave = client(&node, dir.path(), "dave").await;

        let conv = alice.create_group("Team", &[user("bob"), user("carol")]).await.unwrap();
        for c in [&bob, &carol] {
            wait_conversation(c, &conv).await;
            wait_members(c, &conv, 3).await;
        }
        assert_eq!(carol.with_engine(|e| e.conversation(&conv).unwrap().name.clone()), "Team");
        alice.send_text(&conv, "hello team").await.unwrap();
        for c in [&bob, &carol] {
            wait_texts(c, &conv, &["hello team"]).await;
        }

        // Dave is added later by Bob, whom Alice made admin, and reads from then on.
        make_admin(&alice, &bob, &conv).await;
        bob.add_members(&conv, &[user("dave")]).await.unwrap();
        wait_conversation(&dave, &conv).await;
        for c in [&alice, &bob, &carol, &dave] {
            wait_members(c, &conv, 4).await;
        }
        carol.send_text(&conv, "welcome dave").await.unwrap();
        wait_texts(&dave, &conv, &["welcome dave"]).await;
        wait_texts(&alice, &conv, &["hello team", "welcome dave"]).await;

        // Alice removes Carol; Carol learns it and can no longer send; later messages do not
        // reach her.
        alice.remove_members(&conv, &[user("carol")]).await.unwrap();
        let removed = carol
            .wait_for(10_000, |e| e.conversation(&conv).map(|c| !c.active).unwrap_or(false))
            .await;
        assert!(removed, "carol sees she was removed");
        assert!(carol.with_engine(|e| e
            .history(&conv)
            .iter()
            .any(|m| m.content == Content::System(SystemEvent::YouWereRemoved))));
        assert!(carol.send_text(&conv, "still here?").await.is_err());
        for c in [&bob, &dave] {
            wait_members(c, &conv, 3).await;
        }
        dave.send_text(&conv, "after carol left").await.unwrap();
        wait_texts(&bob, &conv, &["hello team", "welcome dave", "after carol left"]).await;
        sleep(500).await;
        assert_eq!(texts(&carol, &conv), vec!["hello team", "welcome dave"]);
        // The server refuses Carol as a member of the channel.
        let err = carol.session().unwrap().channel_info(&conv).await.unwrap_err();
        assert_eq!(err.remote_code(), Some(qpq_proto::ErrorCode::NotMember));

        let auth: Vec<Vec<u8>> =
            [&alice, &bob, &dave].iter().map(|c| c.with_engine(|e| e.epoch_authenticator(&conv).unwrap())).collect();
        assert!(auth.windows(2).all(|w| w[0] == w[1]), "remaining members agree on the epoch");
        node.stop();
    });
}

#[test]
fn server_restart_keeps_queued_messages_exactly_once() {
    run(async {
        let dir = tempfile::tempdir().unwrap();
        let node = sqlite_node(dir.path());
        let (addr, fp) = (node.addr(), node.fingerprint().to_string());
        let alice = client(&node, dir.path(), "alice").await;
        let bob = client(&node, dir.path(), "bob").await;
        let conv = alice.start_chat(&user("bob")).await.unwrap();
        wait_conversation(&bob, &conv).await;

        // Bob goes away; Alice's messages queue on the server.
        bob.stop();
        drop(bob);
        for i in 0..5 {
            alice.send_text(&conv, &format!("queued {i}")).await.unwrap();
        }
        wait_outbox_empty(&alice).await;

        // The server restarts on the same SQLite file and port.
        node.stop();
        let node = sqlite_node_on(dir.path(), addr.port());
        assert_eq!(node.fingerprint(), fp, "the certificate is kept");

        // Bob comes back from his state file; Alice reconnects by herself.
        let bob = reopen(addr, &fp, dir.path(), "bob").await;
        let queued: Vec<String> = (0..5).map(|i| format!("queued {i}")).collect();
        let q: Vec<&str> = queued.iter().map(String::as_str).collect();
        wait_texts(&bob, &conv, &q).await;
        assert!(online(&alice).await, "alice reconnects");
        alice.send_text(&conv, "after restart").await.unwrap();
        let mut all = q.clone();
        all.push("after restart");
        wait_texts(&bob, &conv, &all).await;

        // Bob restarts again before his acknowledgements matter: the server may deliver
        // again, the history shows each message once.
        bob.stop();
        drop(bob);
        let bob = reopen(addr, &fp, dir.path(), "bob").await;
        assert!(online(&bob).await);
        sleep(500).await;
        assert_eq!(texts(&bob, &conv), all);
        node.stop();
    });
}

#[test]
fn concurrent_commits_converge_without_a_fork() {
    run(async {
        let dir = tempfile::tempdir().unwrap();
        let node = sqlite_node(dir.path());
        let alice = client(&node, dir.path(), "alice").await;
        let bob = client(&node, dir.path(), "bob").await;
        let carol = client(&node, dir.path(), "carol").await;
        let dave = client(&node, dir.path(), "dave").await;
        let conv = alice.create_group("race", &[user("bob")]).await.unwrap();
        wait_members(&bob, &conv, 2).await;
        make_admin(&alice, &bob, &conv).await;

        // Both add someone at the same moment.
        let (carol_id, dave_id) = ([user("carol")], [user("dave")]);
        let (a, b) = futures::join!(alice.add_members(&conv, &carol_id), bob.add_members(&conv, &dave_id));
        a.unwrap();
        b.unwrap();
        for c in [&alice, &bob, &carol, &dave] {
            wait_members(c, &conv, 4).await;
        }
        let ok = alice
            .wait_for(10_000, |e| e.conversation(&conv).map(|c| c.epoch) == Some(4))
            .await;
        assert!(ok, "create(0) → add bob(1) → bob made admin(2) → two adds(3, 4)");
        for c in [&bob, &carol, &dave] {
            assert!(c.wait_for(10_000, |e| e.conversation(&conv).map(|c| c.epoch) == Some(4)).await);
        }
        let auth: Vec<Vec<u8>> = [&alice, &bob, &carol, &dave]
            .iter()
            .map(|c| c.with_engine(|e| e.epoch_authenticator(&conv).unwrap()))
            .collect();
        assert!(auth.windows(2).all(|w| w[0] == w[1]), "all four agree: no fork");
        dave.send_text(&conv, "in sync").await.unwrap();
        for c in [&alice, &bob, &carol] {
            wait_texts(c, &conv, &["in sync"]).await;
        }
        node.stop();
    });
}

#[test]
fn two_nodes_on_postgres_deliver_to_each_other_promptly() {
    run(async {
        let db = create_database().await;
        let dir = tempfile::tempdir().unwrap();
        let n1 = pg_node(&dir.path().join("n1"), &db.url);
        let n2 = pg_node(&dir.path().join("n2"), &db.url);
        let alice = client(&n1, dir.path(), "alice").await;
        let bob = client(&n2, dir.path(), "bob").await;

        let conv = alice.start_chat(&user("bob")).await.unwrap();
        wait_conversation(&bob, &conv).await;
        let mut lat = Vec::new();
        let mut all: Vec<String> = Vec::new();
        for i in 0..10 {
            let (from, to, text) = if i % 2 == 0 { (&alice, &bob, format!("a→b {i}")) } else { (&bob, &alice, format!("b→a {i}")) };
            let t = Instant::now();
            from.send_text(&conv, &text).await.unwrap();
            all.push(text);
            let expect: Vec<&str> = all.iter().map(String::as_str).collect();
            wait_texts(to, &conv, &expect).await;
            lat.push(t.elapsed());
        }
        let worst = lat.iter().max().unwrap();
        println!("cross-node delivery latencies: {lat:?}");
        // Woken through LISTEN/NOTIFY, not found by polling: well under a second.
        assert!(worst.as_millis() < 1000, "cross-node delivery took {worst:?}");
        drop((alice, bob));
        n1.stop();
        n2.stop();
        db.drop_database().await;
    });
}

/// The native platform, recording every timer a client asks for.
#[derive(Clone, Default)]
struct RecordingPlatform {
    sleeps: Rc<RefCell<Vec<u64>>>,
}

impl Platform for RecordingPlatform {
    fn now_ms(&self) -> u64 {
        TokioPlatform.now_ms()
    }

    fn sleep(&self, ms: u64) -> LocalBoxFuture<'static, ()> {
        self.sleeps.borrow_mut().push(ms);
        TokioPlatform.sleep(ms)
    }

    fn spawn(&self, fut: LocalBoxFuture<'static, ()>) {
        TokioPlatform.spawn(fut)
    }
}

#[test]
fn disappearing_messages_go_on_time_without_polling() {
    run(async {
        let dir = tempfile::tempdir().unwrap();
        let node = sqlite_node(dir.path());
        let alice = client(&node, dir.path(), "alice").await;
        let platform = RecordingPlatform::default();
        let connector = QuicConnector::pinned(node.addr(), node.fingerprint()).unwrap();
        let bob = Client::register(&connector, MemoryStore::default(), platform.clone(), "bob").await.expect("registers");
        bob.start(Rc::new(connector) as Rc<dyn Connector>);
        assert!(online(&bob).await, "bob comes online");

        // Idle, with nothing to expire, Bob's client sets no short timer: nothing polls.
        sleep(300).await;
        platform.sleeps.borrow_mut().clear();
        sleep(1_500).await;
        let short: Vec<u64> = platform.sleeps.borrow().iter().copied().filter(|&ms| ms < 1_000).collect();
        assert!(short.is_empty(), "an idle client set timers of {short:?} ms");

        let conv = alice.start_chat(&user("bob")).await.unwrap();
        alice.set_disappearing(&conv, 2).await.unwrap();
        let timer_set = bob.wait_for(20_000, |e| e.conversation(&conv).is_some_and(|c| c.disappear_secs == 2)).await;
        assert!(timer_set, "bob sees the two-second timer");

        let removed = Rc::new(RefCell::new(Vec::new()));
        let (r, p) = (removed.clone(), platform.clone());
        bob.on_event(move |ev| {
            if let ClientEvent::Engine(Event::MessageRemoved { .. }) = ev {
                r.borrow_mut().push(p.now_ms());
            }
        });
        let poof = |e: &qpq_core::Engine| {
            e.history(&conv).iter().find_map(|m| match &m.content {
                Content::Text { text, .. } if text == "poof" => Some(m.expires_at),
                _ => None,
            })
        };
        alice.send_text(&conv, "poof").await.unwrap();
        assert!(bob.wait_for(20_000, |e| poof(e).is_some()).await, "bob receives the message");
        let arrived = platform.now_ms();
        let expires_at = bob.with_engine(poof).flatten().expect("the message carries its time");
        assert!(arrived < expires_at, "the message arrived {} ms before its time", expires_at.saturating_sub(arrived));

        assert!(bob.wait_for(5_000, |e| poof(e).is_none()).await, "the message disappears for bob");
        let at = removed.borrow().first().copied().expect("bob is told the message went");
        assert!(at >= expires_at, "removed {} ms early", expires_at - at);
        assert!(at - expires_at < 250, "removed {} ms late", at - expires_at);
        wait_texts(&alice, &conv, &[]).await;
        node.stop();
    });
}

/// What the node delivers as a device logs in (its backlog, handed over by `subscribe` while
/// the client still checks its account) is acknowledged once processed: the queue empties.
/// A service worker woken by a push only ever sees such a backlog; unacknowledged, the node
/// would keep it queued and send no further push.
#[test]
fn a_backlog_delivered_while_logging_in_is_acknowledged() {
    run(async {
        let dir = tempfile::tempdir().unwrap();
        let node = sqlite_node(dir.path());
        let alice = client(&node, dir.path(), "alice").await;
        let bob = client(&node, dir.path(), "bob").await;
        let conv = chat(&alice, &bob).await;
        let device = bob.with_engine(|e| e.device_id());
        bob.shutdown().await;
        for text in ["one", "two", "three"] {
            alice.send_text(&conv, text).await.unwrap();
        }
        wait_outbox_empty(&alice).await;

        let bob = reopen(node.addr(), node.fingerprint(), dir.path(), "bob").await;
        wait_texts(&bob, &conv, &["hi bob", "hello alice", "one", "two", "three"]).await;
        // The node's queue for Bob's device, read through a second login of it.
        let raw = raw_connection(&node).await;
        let c = rpc(&raw).await;
        let nonce = c.challenge(&user("bob"), &device).await.unwrap();
        let sig = bob.with_engine(|e| e.sign_login(&nonce, &[]));
        let look = c.login(&user("bob"), &device, &nonce, &sig).await.unwrap();
        let mut left = usize::MAX;
        for _ in 0..50 {
            left = look.fetch(0, 500).await.unwrap().len();
            if left == 0 {
                break;
            }
            sleep(100).await;
        }
        assert_eq!(left, 0, "what was delivered at login is acknowledged");
        node.stop();
    });
}
