//! Restoring an account from a backup file when none of its devices is left: the file opens
//! only with its passphrase; the node registers the restored device in place of the account's
//! others (which are signed out) and tells the other members of its conversations, whose
//! clients add it and remove the old leaves; the history comes back as the conversations do,
//! and messages flow both ways. A wrong passphrase, a damaged file and a deleted account fail in
//! words and store nothing.

mod support;

use std::rc::Rc;

use qpq_client::{BackupProgress, ConnState, Connector};
use qpq_native::{FileStore, NativeClient, QuicConnector, TokioPlatform};
use qpq_proto::ErrorCode;
use qpq_server::RunningNode;
use support::*;

const PASS: &str = "correct horse battery staple";

fn connector(node: &RunningNode) -> QuicConnector {
    QuicConnector::pinned(node.addr(), node.fingerprint()).unwrap()
}

async fn restore(
    node: &RunningNode,
    dir: &std::path::Path,
    name: &str,
    file: &[u8],
    passphrase: &str,
) -> Result<qpq_client::Restored<FileStore, TokioPlatform>, qpq_client::ClientError> {
    restore_with_progress(node, dir, name, file, passphrase, |_| {}).await
}

async fn restore_with_progress(
    node: &RunningNode,
    dir: &std::path::Path,
    name: &str,
    file: &[u8],
    passphrase: &str,
    progress: impl Fn(BackupProgress),
) -> Result<qpq_client::Restored<FileStore, TokioPlatform>, qpq_client::ClientError> {
    let store = FileStore::open(state_path(dir, name), true).unwrap();
    NativeClient::restore(&connector(node), store, TokioPlatform, file, passphrase, "restored laptop", progress).await
}

async fn nothing_stored(dir: &std::path::Path, name: &str) -> bool {
    let store = FileStore::open(state_path(dir, name), true).unwrap();
    NativeClient::open(store, TokioPlatform).await.unwrap().is_none()
}

#[test]
fn a_restored_account_rejoins_its_conversations_with_its_history() {
    run(async {
        let dir = tempfile::tempdir().unwrap();
        let node = sqlite_node(dir.path());
        let alice = client(&node, dir.path(), "alice").await;
        let bob = client(&node, dir.path(), "bob").await;
        let carol = client(&node, dir.path(), "carol").await;
        let direct = chat(&alice, &bob).await;
        let group = alice.create_group("Trip", &[bob.user(), carol.user()]).await.unwrap();
        wait_conversation(&bob, &group).await;
        wait_conversation(&carol, &group).await;
        carol.send_text(&group, "packing list").await.unwrap();
        wait_texts(&alice, &group, &["packing list"]).await;
        alice.send_text(&group, "tents are mine").await.unwrap();
        wait_texts(&bob, &group, &["packing list", "tents are mine"]).await;
        wait_texts(&carol, &group, &["packing list", "tents are mine"]).await;
        let alice_ik = alice.with_engine(|e| e.identity_public_key());
        // A contact with no conversation, and a profile: both are in the backup.
        let dave = client(&node, dir.path(), "dave").await;
        alice.add_contact(&dave.user()).await.unwrap();
        alice.set_profile("Alice Liddell", "on a trip", None).await.unwrap();
        wait_outbox_empty(&alice).await;

        let steps = std::cell::RefCell::new(Vec::new());
        let file = alice.backup(PASS, "{\"notify\":{}}", |p| steps.borrow_mut().push(p)).await.unwrap();
        let steps = steps.take();
        assert_eq!(steps.first(), Some(&BackupProgress::Deriving));
        assert!(matches!(steps.last(), Some(BackupProgress::Chunks { done, total }) if done == total));
        for secret in [b"tents are mine".as_slice(), b"packing list", b"alice@localhost", b"Trip", b"Alice Liddell"] {
            assert!(!file.windows(secret.len()).any(|w| w == secret), "the file shows {:?}", String::from_utf8_lossy(secret));
        }
        // Alice's only device is lost.
        alice.shutdown().await;
        let old_device = alice.with_engine(|e| e.device_id());
        drop(alice);

        let steps = std::cell::RefCell::new(Vec::new());
        let restored = restore_with_progress(&node, dir.path(), "alice-new", &file, PASS, |p| steps.borrow_mut().push(p))
            .await
            .expect("the backup restores");
        let steps = steps.take();
        assert_eq!(steps.first(), Some(&BackupProgress::Deriving));
        assert!(steps.iter().any(|p| matches!(p, BackupProgress::Chunks { done, total } if done == total)), "{steps:?}");
        assert_eq!(steps.last(), Some(&BackupProgress::Registering), "{steps:?}");
        assert_eq!(restored.settings, "{\"notify\":{}}");
        assert_eq!((restored.conversations, restored.messages > 4), (2, true));
        let alice = restored.client;
        assert_eq!(alice.user(), user("alice"));
        assert_eq!(alice.with_engine(|e| e.identity_public_key()), alice_ik, "the same identity: safety numbers hold");
        assert_ne!(alice.with_engine(|e| e.device_id()), old_device);
        let contacts: Vec<_> = alice.contacts().into_iter().map(|c| c.user).collect();
        assert!(contacts.contains(&dave.user()), "a contact without a conversation comes back: {contacts:?}");
        assert_eq!(alice.with_engine(|e| e.display_name(&alice.user())).as_deref(), Some("Alice Liddell"));
        assert_eq!(alice.with_engine(|e| e.restoring()), 2);
        let notices = Rc::new(std::cell::RefCell::new(Vec::new()));
        let n = notices.clone();
        alice.on_event(move |ev| {
            if let qpq_client::ClientEvent::Notice(text) = ev {
                n.borrow_mut().push(text.clone());
            }
        });
        alice.start(Rc::new(connector(&node)) as Rc<dyn Connector>);
        assert!(online(&alice).await);

        // Bob and Carol add the new device and drop the old one; the history is back.
        wait_conversation(&alice, &direct).await;
        wait_conversation(&alice, &group).await;
        wait_texts(&alice, &direct, &["hi bob", "hello alice"]).await;
        wait_texts(&alice, &group, &["packing list", "tents are mine"]).await;
        assert_eq!(alice.with_engine(|e| e.restoring()), 0, "nothing waits once both conversations are back");
        let back = notices.borrow().iter().filter(|n| n.contains("from your backup") && n.contains("back")).count();
        assert!((1..=2).contains(&back), "the person is told the conversations are back: {:?}", notices.borrow());
        let (name, outgoing) = alice.with_engine(|e| {
            let c = e.conversation(&group).unwrap();
            let mine = e.history(&group).iter().find(|m| m.is_content() && m.sender == alice.user()).unwrap().outgoing;
            (c.name.clone(), mine)
        });
        assert_eq!((name.as_str(), outgoing), ("Trip", true));
        let new_device = alice.with_engine(|e| e.device_id());
        for c in [&bob, &carol] {
            let ok = c
                .wait_for(20_000, |e| {
                    let alices: Vec<_> = e.member_devices(&group).into_iter().filter(|d| d.user == alice.user()).collect();
                    alices.len() == 1 && alices[0].device == new_device
                })
                .await;
            assert!(ok, "{} has only alice's new device in the group", c.user());
        }

        // Messages flow both ways again.
        bob.send_text(&direct, "welcome back").await.unwrap();
        wait_texts(&alice, &direct, &["hi bob", "hello alice", "welcome back"]).await;
        alice.send_text(&group, "restored and here").await.unwrap();
        wait_texts(&bob, &group, &["packing list", "tents are mine", "restored and here"]).await;
        wait_texts(&carol, &group, &["packing list", "tents are mine", "restored and here"]).await;
        alice.send_text(&direct, "thanks bob").await.unwrap();
        wait_texts(&bob, &direct, &["hi bob", "hello alice", "welcome back", "thanks bob"]).await;
        let sender = bob.with_engine(|e| e.history(&group).iter().rev().find(|m| m.is_content()).unwrap().sender.clone());
        assert_eq!(sender, user("alice"));

        // The lost device, should it turn up, is signed out.
        let old = reopen(node.addr(), node.fingerprint(), dir.path(), "alice").await;
        let o = old.clone();
        assert!(old.wait_for(20_000, move |_| matches!(o.connection_state(), ConnState::Removed { .. })).await);
        assert_eq!(bob.session().unwrap().list_devices(&user("alice")).await.unwrap().1.len(), 1);

        // A second restore, right after the first, comes back the same way.
        let file = alice.backup(PASS, "", |_| {}).await.unwrap();
        alice.shutdown().await;
        let again = restore(&node, dir.path(), "alice-again", &file, PASS).await.expect("the second backup restores").client;
        again.start(Rc::new(connector(&node)) as Rc<dyn Connector>);
        wait_conversation(&again, &direct).await;
        wait_conversation(&again, &group).await;
        bob.send_text(&direct, "and again").await.unwrap();
        wait_texts(&again, &direct, &["hi bob", "hello alice", "welcome back", "thanks bob", "and again"]).await;
        node.stop();
    });
}

#[test]
fn a_wrong_passphrase_a_damaged_file_and_a_deleted_account_fail_in_words_and_store_nothing() {
    run(async {
        let dir = tempfile::tempdir().unwrap();
        let node = sqlite_node(dir.path());
        let alice = client(&node, dir.path(), "alice").await;
        let bob = client(&node, dir.path(), "bob").await;
        chat(&alice, &bob).await;
        let file = alice.backup(PASS, "", |_| {}).await.unwrap();
        let short = alice.backup("short", "", |_| {}).await.err().expect("a short passphrase is refused");
        assert!(short.to_string().contains("at least 8 characters"), "{short}");

        let err = restore(&node, dir.path(), "a1", &file, "correct horse battery stapler").await.err().unwrap();
        assert!(err.to_string().contains("passphrase does not open this backup"), "{err}");
        assert!(nothing_stored(dir.path(), "a1").await);

        let mut bent = file.clone();
        let mid = bent.len() / 2;
        bent[mid] ^= 0x20;
        let err = restore(&node, dir.path(), "a2", &bent, PASS).await.err().unwrap();
        assert!(err.to_string().contains("damaged or was changed"), "{err}");
        assert!(nothing_stored(dir.path(), "a2").await);
        let err = restore(&node, dir.path(), "a3", b"not a backup at all", PASS).await.err().unwrap();
        assert!(err.to_string().contains("not a quicproquo backup"), "{err}");

        // Nothing was registered by the failures: Alice still has her one device, online.
        assert_eq!(alice.own_devices().await.unwrap().len(), 1);
        assert!(online(&alice).await);

        // An account deleted since the backup does not come back.
        alice.delete_account().await.unwrap();
        let err = restore(&node, dir.path(), "a4", &file, PASS).await.err().unwrap();
        assert_eq!(err.remote_code(), Some(ErrorCode::NoSuchUser));
        assert!(err.to_string().contains("no longer exists"), "{err}");
        assert!(nothing_stored(dir.path(), "a4").await);
        node.stop();
    });
}
