//! Linking a device with a one-time code: the new device gets the account from one of its
//! devices through the node's link slot (which relays ciphertext only), registers its own
//! key, joins every conversation and speaks as its account. A wrong, used, cancelled or
//! malformed code, and a sixth device, fail in words and leave both devices as they were.

mod support;

use std::rc::Rc;

use qpq_client::link::LinkCode;
use qpq_client::{Connector, LinkProgress};
use qpq_native::{FileStore, NativeClient, QuicConnector, TokioPlatform};
use qpq_proto::ErrorCode;
use qpq_server::RunningNode;
use support::*;

fn connector(node: &RunningNode) -> QuicConnector {
    QuicConnector::pinned(node.addr(), node.fingerprint()).unwrap()
}

/// Links a new device named `name` (its state in `dir/NAME.state`) with `code`.
async fn link(node: &RunningNode, dir: &std::path::Path, name: &str, code: &str) -> Result<NativeClient, qpq_client::ClientError> {
    let store = FileStore::open(state_path(dir, name), true).unwrap();
    NativeClient::link(&connector(node), store, TokioPlatform, code, "a test device", |_| {}).await
}

/// True when nothing of an account was stored at `dir/NAME.state`.
async fn nothing_stored(dir: &std::path::Path, name: &str) -> bool {
    let store = FileStore::open(state_path(dir, name), true).unwrap();
    NativeClient::open(store, TokioPlatform).await.unwrap().is_none()
}

async fn device_count(c: &NativeClient) -> usize {
    c.own_devices().await.unwrap().len()
}

/// `device` serves `code` in the background; the task ends with what the hand-over came to
/// and the progress steps it reported.
fn serve_in_background(
    device: &NativeClient,
    code: &LinkCode,
) -> tokio::task::JoinHandle<(Result<qpq_client::LinkedDevice, qpq_client::ClientError>, Vec<LinkProgress>)> {
    let device = device.clone();
    let code = LinkCode::parse(&code.text()).unwrap();
    tokio::task::spawn_local(async move {
        let seen = Rc::new(std::cell::RefCell::new(Vec::new()));
        let s = seen.clone();
        let linked = device.serve_link(&code, "", move |p| s.borrow_mut().push(p)).await;
        (linked, seen.take())
    })
}

fn now_ms() -> u64 {
    let since = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap();
    u64::try_from(since.as_millis()).unwrap()
}

#[test]
fn a_linked_device_joins_every_conversation_and_speaks_as_its_account() {
    run(async {
        let dir = tempfile::tempdir().unwrap();
        let node = sqlite_node(dir.path());
        let alice = client(&node, dir.path(), "alice").await;
        let bob = client(&node, dir.path(), "bob").await;
        let direct = chat(&alice, &bob).await;
        let group = alice.create_group("Trip", &[bob.user()]).await.unwrap();
        wait_conversation(&bob, &group).await;

        let (code, expires_at) = alice.open_link().await.unwrap();
        let left = expires_at.saturating_sub(now_ms());
        assert!((590_000..=600_000).contains(&left), "a code is good for 10 minutes ({left} ms left)");
        let serving = serve_in_background(&alice, &code);
        let laptop = link(&node, dir.path(), "alice-laptop", &code.text()).await.expect("the code links the device");
        assert_eq!(laptop.user(), alice.user());
        assert_ne!(laptop.with_engine(|e| e.device_id()), alice.with_engine(|e| e.device_id()));
        laptop.start(Rc::new(connector(&node)) as Rc<dyn Connector>);
        assert!(online(&laptop).await, "the linked device logs in with its own key");

        let (linked, steps) = serving.await.unwrap();
        let linked = linked.expect("the account's device serves the code");
        assert_eq!(linked.device, laptop.with_engine(|e| e.device_id()));
        assert_eq!(linked.name, "a test device");
        assert_eq!(linked.conversations, 2);
        assert_eq!(steps.first(), Some(&LinkProgress::Waiting));
        assert!(steps.contains(&LinkProgress::Registering("a test device".into())));
        assert!(steps.iter().any(|p| matches!(p, LinkProgress::History { done, total } if done == total && *total > 0)));
        assert_eq!(steps.last(), Some(&LinkProgress::Joining { done: 2, total: 2 }));

        // It is in both conversations, has the history from before it was linked, and reads
        // what Bob sends from now on.
        wait_conversation(&laptop, &direct).await;
        wait_conversation(&laptop, &group).await;
        wait_texts(&laptop, &direct, &["hi bob", "hello alice"]).await;
        // Bob may not have the commit that added the laptop yet: a message he made before it
        // is refused by the node as stale and encrypted again, so the laptop reads it either way.
        bob.send_text(&direct, "to both of alice's devices").await.unwrap();
        bob.send_text(&group, "trip news").await.unwrap();
        wait_texts(&laptop, &direct, &["hi bob", "hello alice", "to both of alice's devices"]).await;
        wait_texts(&laptop, &group, &["trip news"]).await;
        assert!(
            laptop.with_engine(|e| e.pending_handover().is_none()),
            "the hand-over is forgotten once its history is in"
        );

        // What it sends is Alice's: Bob sees her name, her first device sees it as its own.
        laptop.send_text(&group, "from my laptop").await.unwrap();
        wait_texts(&bob, &group, &["trip news", "from my laptop"]).await;
        wait_texts(&alice, &group, &["trip news", "from my laptop"]).await;
        let (sender, outgoing) = alice.with_engine(|e| {
            let m = e.history(&group).iter().rev().find(|m| m.is_content()).unwrap().clone();
            (m.sender.clone(), m.outgoing)
        });
        assert_eq!((sender, outgoing), (alice.user(), true));
        let bob_sees = bob.with_engine(|e| e.history(&group).iter().rev().find(|m| m.is_content()).unwrap().sender.clone());
        assert_eq!(bob_sees, alice.user());

        // Both devices are listed; the laptop under the name it gave, which the node keeps
        // only as ciphertext, and with its last login.
        let devices = alice.own_devices().await.unwrap();
        assert_eq!(devices.len(), 2);
        let listed = devices.iter().find(|d| d.record.device_id == laptop.with_engine(|e| e.device_id())).unwrap();
        assert_eq!(listed.name.as_deref(), Some("a test device"));
        assert!(listed.last_login > 0);
        let (_, seen_by_bob) = bob.session().unwrap().list_own_devices(&alice.user()).await.unwrap();
        assert_eq!(seen_by_bob.len(), 2);
        assert!(
            seen_by_bob.iter().all(|(_, label, last)| label.is_empty() && *last == 0),
            "nobody else learns an account's device names or logins"
        );
        for f in ["qpq.sqlite", "qpq.sqlite-wal"] {
            let bytes = std::fs::read(dir.path().join(f)).unwrap_or_default();
            assert!(!bytes.windows(13).any(|w| w == b"a test device"), "{f} holds the device's name in clear");
        }
        // The code cannot be used again.
        let err = link(&node, dir.path(), "alice-again", &code.text()).await.err().expect("a used code fails");
        assert_eq!(err.remote_code(), Some(ErrorCode::NoSuchLink));
        assert!(err.to_string().contains("wrong, has expired or was used already"), "{err}");
        assert!(nothing_stored(dir.path(), "alice-again").await);
        assert_eq!(device_count(&alice).await, 2);

        // New conversations appear on every device of the account, whichever made them.
        let carol = client(&node, dir.path(), "carol").await;
        let made_on_laptop = laptop.create_group("Made on the laptop", &[bob.user()]).await.unwrap();
        let made_on_phone = alice.start_chat(&carol.user()).await.unwrap();
        wait_conversation(&alice, &made_on_laptop).await;
        wait_conversation(&laptop, &made_on_phone).await;
        alice.send_text(&made_on_phone, "hi carol").await.unwrap();
        wait_texts(&laptop, &made_on_phone, &["hi carol"]).await;

        // The linked device links the next one: the account does not hang on its first device.
        let (code, _) = laptop.open_link().await.unwrap();
        let serving = serve_in_background(&laptop, &code);
        let tablet = link(&node, dir.path(), "alice-tablet", &code.text()).await.expect("the laptop's code links");
        tablet.start(Rc::new(connector(&node)) as Rc<dyn Connector>);
        assert!(online(&tablet).await);
        serving.await.unwrap().0.expect("the laptop serves its code");
        wait_conversation(&tablet, &direct).await;
        wait_conversation(&tablet, &made_on_phone).await;
        bob.send_text(&direct, "three devices now").await.unwrap();
        // With the history the laptop handed over.
        let all = ["hi bob", "hello alice", "to both of alice's devices", "three devices now"];
        wait_texts(&tablet, &direct, &all).await;
        assert_eq!(device_count(&alice).await, 3);
        node.stop();
    });
}

#[test]
fn wrong_malformed_and_cancelled_codes_and_a_sixth_device_fail_in_words_and_change_nothing() {
    run(async {
        let dir = tempfile::tempdir().unwrap();
        let node = sqlite_node(dir.path());
        let alice = client(&node, dir.path(), "alice").await;

        // A code nobody opened.
        let err = link(&node, dir.path(), "x1", &LinkCode::generate().text()).await.err().expect("a wrong code fails");
        assert_eq!(err.remote_code(), Some(ErrorCode::NoSuchLink));
        assert!(nothing_stored(dir.path(), "x1").await);

        // Not a code at all: refused before anything is sent.
        let err = link(&node, dir.path(), "x2", "hello").await.err().expect("a malformed code fails");
        assert_eq!(err.code(), "input");
        assert!(err.to_string().contains("not a link code"), "{err}");

        // A code its device cancelled.
        let (code, _) = alice.open_link().await.unwrap();
        alice.cancel_link(&code).await.unwrap();
        let err = link(&node, dir.path(), "x3", &code.text()).await.err().expect("a cancelled code fails");
        assert_eq!(err.remote_code(), Some(ErrorCode::NoSuchLink));
        assert!(nothing_stored(dir.path(), "x3").await);
        assert_eq!(device_count(&alice).await, 1, "no device was added by any of these");

        // Four more devices make five; the sixth is refused on both sides with the same words.
        for n in 2..=5u8 {
            let (code, _) = alice.open_link().await.unwrap();
            let text = code.text();
            let a = alice.clone();
            let serving = tokio::task::spawn_local(async move { a.serve_link(&code, "", |_| {}).await });
            link(&node, dir.path(), &format!("d{n}"), &text).await.expect("devices two to five are linked");
            serving.await.unwrap().expect("and registered by the account's device");
        }
        assert_eq!(device_count(&alice).await, 5);
        let (code, _) = alice.open_link().await.unwrap();
        let text = code.text();
        let a = alice.clone();
        let serving = tokio::task::spawn_local(async move { a.serve_link(&code, "", |_| {}).await });
        let err = link(&node, dir.path(), "d6", &text).await.err().expect("a sixth device is refused");
        assert!(err.to_string().contains("already has five devices"), "{err}");
        assert!(nothing_stored(dir.path(), "d6").await);
        let served = serving.await.unwrap().expect_err("the account's device says so too");
        assert_eq!(served.remote_code(), Some(ErrorCode::TooManyDevices));
        assert_eq!(served.to_string(), err.to_string());
        assert_eq!(device_count(&alice).await, 5);
        node.stop();
    });
}

#[test]
fn an_expired_code_fails_on_both_sides_and_changes_nothing() {
    run(async {
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = qpq_server::Config::for_tests(dir.path());
        cfg.link_secs = 1;
        let node = qpq_server::spawn(cfg).expect("node starts");
        let alice = client(&node, dir.path(), "alice").await;
        let (code, expires_at) = alice.open_link().await.unwrap();
        let text = code.text();
        let a = alice.clone();
        let serving = tokio::task::spawn_local(async move { a.serve_link(&code, "", |_| {}).await });
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64;
        sleep(expires_at.saturating_sub(now) + 200).await;

        let err = link(&node, dir.path(), "late", &text).await.err().expect("an expired code fails");
        assert_eq!(err.remote_code(), Some(ErrorCode::NoSuchLink));
        assert!(err.to_string().contains("has expired"), "{err}");
        assert!(nothing_stored(dir.path(), "late").await);
        let served = serving.await.unwrap().expect_err("the account's device stops waiting");
        assert!(served.to_string().contains("expired before another device used it"), "{served}");
        assert_eq!(device_count(&alice).await, 1);
        node.stop();
    });
}


/// Blocks belong to the account: one device blocks, and another that is online learns it at
/// once (the node's hint) and puts the blocked person's request away, as one that logs in
/// later reads it then; while it stands, what the blocked person writes reaches no device of the account
/// (the node drops it), and after the unblock their next message arrives again.
#[test]
fn a_block_is_the_accounts_on_every_device_and_stops_delivery_until_undone() {
    run(async {
        let dir = tempfile::tempdir().unwrap();
        let node = sqlite_node(dir.path());
        let alice = client(&node, dir.path(), "alice").await;
        let carol = client(&node, dir.path(), "carol").await;
        let (code, _) = alice.open_link().await.unwrap();
        let serving = {
            let alice = alice.clone();
            let code = LinkCode::parse(&code.text()).unwrap();
            tokio::task::spawn_local(async move { alice.serve_link(&code, "", |_| {}).await })
        };
        let laptop = link(&node, dir.path(), "alice-laptop", &code.text()).await.expect("linked");
        laptop.start(Rc::new(connector(&node)) as Rc<dyn Connector>);
        assert!(online(&laptop).await);
        serving.await.unwrap().expect("served");

        // Carol is no contact of Alice's: her chat is a request on both of Alice's devices.
        let conv = carol.start_chat(&alice.user()).await.unwrap();
        carol.send_text(&conv, "hello alice").await.unwrap();
        for c in [&alice, &laptop] {
            wait_texts(c, &conv, &["hello alice"]).await;
            assert!(c.with_engine(|e| e.conversation(&conv).unwrap().request));
        }

        alice.set_blocked(&carol.user(), true).await.unwrap();
        assert_eq!(alice.blocked_users(), [carol.user()]);
        // The laptop, online all along, is told and reads the list again.
        let live = laptop.wait_for(10_000, |e| e.blocked_users() == [user("carol")] && !e.blocks_stale()).await;
        assert!(live, "the online device learns the block without logging in again");
        assert!(laptop.with_engine(|e| e.conversation(&conv).unwrap().hidden), "Carol's request is put away there too");
        // An unblock reaches it the same way.
        alice.set_blocked(&carol.user(), false).await.unwrap();
        assert!(laptop.wait_for(10_000, |e| e.blocked_users().is_empty()).await, "the unblock reaches the laptop");
        // A device that was off when the account blocked learns it when it comes back.
        laptop.shutdown().await;
        alice.set_blocked(&carol.user(), true).await.unwrap();
        let laptop = reopen(node.addr(), node.fingerprint(), dir.path(), "alice-laptop").await;
        let synced = laptop.wait_for(20_000, |e| e.blocked_users() == [user("carol")]).await;
        assert!(synced, "the other device learns the block when it logs in");

        carol.send_text(&conv, "while blocked").await.unwrap();
        wait_outbox_empty(&carol).await;
        alice.set_blocked(&carol.user(), false).await.unwrap();
        carol.send_text(&conv, "after the unblock").await.unwrap();
        // Delivery keeps a conversation's order: the later message arriving with nothing
        // between shows the one sent during the block was dropped for every device.
        for c in [&alice, &laptop] {
            wait_texts(c, &conv, &["hello alice", "after the unblock"]).await;
        }
        node.stop();
    });
}
