//! Members are who the directory says they are, end to end: a hostile client logged in to a
//! real node (its own registered account, speaking MLS without the engine's checks) commits a
//! leaf that claims to be Alice's device with its own key, swaps its own key, lies in the
//! routing lists, tampers with a signature and replays a commit. The node keeps each group's
//! public state and refuses all of it with `bad_mls_message`, changing nothing, and the group
//! goes on. (That honest engines refuse such leaves themselves is shown by the engine tests,
//! `core/tests/trust.rs`, against a delivery service that checks nothing.)

mod support;

#[path = "../../core/tests/support/hostile.rs"]
mod hostile;

use hostile::Hostile;
use qpq_native::NativeClient;
use qpq_core::{Body, Content, Outbound, OutboundOp, OutboundResult, SystemEvent};
use qpq_proto::{ChannelId, ClientMsgId, DeviceAddress, DeviceId, ErrorCode};
use support::*;

fn refused_notice(e: &qpq_core::Engine, conv: &ChannelId) -> bool {
    e.history(conv).iter().any(
        |m| matches!(&m.content, Content::System(SystemEvent::Undecryptable(w)) if w.contains("does not match the directory")),
    )
}

/// Mallory, a hostile client with her own registered account (logged in like any client,
/// speaking MLS without the engine's checks), in a group "team" with Alice and Bob, where
/// Alice has said "hello". Returns Mallory, her session and the conversation.
async fn mallory_in_a_group(
    node: &qpq_server::RunningNode,
    alice: &NativeClient,
    bob: &NativeClient,
) -> (Hostile, qpq_client::Session, ChannelId) {
    let mut mallory = Hostile::new(user("mallory"), 40);
    let conn = raw_connection(node).await;
    let rpc = rpc(&conn).await;
    rpc.hello("hostile").await.unwrap();
    rpc.register_identity(&mallory.identity_key, &mallory.record).await.unwrap();
    let nonce = rpc.challenge(&mallory.addr.user, &mallory.addr.device).await.unwrap();
    let sig = mallory.sign_login(&nonce);
    let session = rpc.login(&mallory.addr.user, &mallory.addr.device, &nonce, &sig).await.unwrap();
    session.upload_key_packages(&mallory.key_packages(3), None).await.unwrap();

    let conv = alice.create_group("team", &[bob.user(), mallory.addr.user.clone()]).await.unwrap();
    wait_conversation(bob, &conv).await;
    join_all(&mut mallory, &session, 1).await;
    alice.send_text(&conv, "hello").await.unwrap();
    wait_texts(bob, &conv, &["hello"]).await;
    (mallory, session, conv)
}

/// The node's refusal of `result` says `words`.
fn refused(result: OutboundResult, words: &str) {
    let OutboundResult::Refused { code, message } = result else { panic!("accepted; should say {words:?}") };
    assert_eq!(code, Some(ErrorCode::BadMlsMessage), "{message}");
    assert!(message.contains(words), "{message:?} should say {words:?}");
}

#[test]
fn forged_members_keys_and_routing_lists_are_refused_by_the_node_and_the_group_goes_on() {
    run(async {
        let dir = tempfile::tempdir().unwrap();
        let node = sqlite_node(dir.path());
        let alice = client(&node, dir.path(), "alice").await;
        let bob = client(&node, dir.path(), "bob").await;
        let (mut mallory, session, conv) = mallory_in_a_group(&node, &alice, &bob).await;
        let victim = DeviceAddress { user: alice.user(), device: alice.with_engine(|e| e.device_id()) };
        let bobs = DeviceAddress { user: bob.user(), device: bob.with_engine(|e| e.device_id()) };
        let (epoch, members) = session.channel_info(&conv).await.unwrap();

        // A leaf claiming Alice's device with Mallory's key: the node holds Alice's real key.
        let out = mallory.forged_add(&conv, epoch, &victim);
        refused(session.send_outbound(&out).await.unwrap(), "not the key the directory holds");
        mallory.settle(false);
        let OutboundOp::Commit { welcome: a_welcome, .. } = out.op.clone() else { unreachable!() };
        // Mallory's own leaf with a signature key the directory does not know.
        let out = mallory.key_swap(&conv, epoch);
        refused(session.send_outbound(&out).await.unwrap(), "not the key the directory holds");
        mallory.settle(false);
        // A valid commit whose routing lists say something else than its proposals.
        let honest = mallory.self_update(&conv, epoch);
        let with_lists = |n: u8, welcome: &[u8], add: Vec<DeviceAddress>, remove: Vec<DeviceAddress>| {
            let OutboundOp::Commit { channel, epoch, commit, .. } = honest.op.clone() else { unreachable!() };
            let welcome = welcome.to_vec();
            Outbound { id: ClientMsgId([n; 16]), op: OutboundOp::Commit { channel, epoch, commit, welcome, add, remove } }
        };
        refused(session.send_outbound(&with_lists(1, &[], vec![], vec![bobs.clone()])).await.unwrap(), "listed to remove");
        refused(session.send_outbound(&with_lists(2, &a_welcome, vec![victim.clone()], vec![])).await.unwrap(), "listed to add");
        // The same commit with a signature that does not verify.
        let OutboundOp::Commit { commit, .. } = honest.op.clone() else { unreachable!() };
        let mut tampered = commit.clone();
        let at = tampered.len() - 100; // inside the signature (then confirmation and membership tags, 33 bytes each)
        tampered[at] ^= 1;
        let tampered_call = Outbound {
            id: ClientMsgId([3; 16]),
            op: OutboundOp::Commit { channel: conv.clone(), epoch, commit: tampered, welcome: vec![], add: vec![], remove: vec![] },
        };
        refused(session.send_outbound(&tampered_call).await.unwrap(), "does not verify");
        assert_eq!(session.channel_info(&conv).await.unwrap(), (epoch, members.clone()), "nothing changed");

        // The commit as it is goes through, and every member follows it.
        assert!(matches!(session.send_outbound(&honest).await.unwrap(), OutboundResult::Accepted { .. }));
        mallory.settle(true);
        // Sent again under another id it is a replay: refused for the epoch it claims, stale for its own.
        let again = |n: u8, e: u64| {
            let OutboundOp::Commit { channel, commit, welcome, add, remove, .. } = honest.op.clone() else { unreachable!() };
            Outbound { id: ClientMsgId([n; 16]), op: OutboundOp::Commit { channel, epoch: e, commit, welcome, add, remove } }
        };
        refused(session.send_outbound(&again(4, epoch + 1)).await.unwrap(), "made in epoch");
        let OutboundResult::Refused { code, .. } = session.send_outbound(&again(5, epoch)).await.unwrap() else {
            panic!("a replay was accepted")
        };
        assert_eq!(code, Some(ErrorCode::StaleEpoch));
        // The retry of the accepted call itself is answered as before: a duplicate, no change.
        assert!(matches!(session.send_outbound(&honest).await.unwrap(), OutboundResult::Accepted { .. }));
        assert_eq!(session.channel_info(&conv).await.unwrap().0, epoch + 1);

        // The group goes on: Alice, its admin, removes Mallory, and messages still flow.
        alice.remove_members(&conv, &[mallory.addr.user.clone()]).await.unwrap();
        wait_members(&bob, &conv, 2).await;
        wait_outbox_empty(&alice).await;
        alice.send_text(&conv, "still here").await.unwrap();
        wait_texts(&bob, &conv, &["hello", "still here"]).await;
        for c in [&alice, &bob] {
            assert!(!c.with_engine(|e| refused_notice(e, &conv)), "{} saw nothing to refuse", c.user());
        }
        assert_eq!(
            alice.with_engine(|e| e.epoch_authenticator(&conv)),
            bob.with_engine(|e| e.epoch_authenticator(&conv))
        );
    });
}

#[test]
fn the_node_refuses_what_is_not_a_commit_of_the_channel_at_its_epoch_and_the_group_goes_on() {
    run(async {
        let dir = tempfile::tempdir().unwrap();
        let node = sqlite_node(dir.path());
        let alice = client(&node, dir.path(), "alice").await;
        let bob = client(&node, dir.path(), "bob").await;
        let (mut mallory, session, conv) = mallory_in_a_group(&node, &alice, &bob).await;
        let (epoch, members) = session.channel_info(&conv).await.unwrap();

        // Mallory's own channel, to send the team's commit to.
        let (other, create) = mallory.own_channel([0x6d; 16]);
        assert!(matches!(session.send_outbound(&create).await.unwrap(), OutboundResult::Accepted { .. }));

        // A well-formed commit of the team at its epoch, and an application message of it.
        let real = mallory.key_swap(&conv, epoch);
        mallory.settle(false);
        let OutboundOp::Commit { commit, .. } = real.op.clone() else { unreachable!() };
        let message = mallory.message(&conv, Body::Text { text: "not a commit".into(), reply_to: None }, now_ms());
        let OutboundOp::Enqueue { payload, .. } = message.op.clone() else { unreachable!() };
        // The same commit encrypted, as commits were sent before the node could check them.
        mallory.private_handshakes(&conv);
        let hidden = mallory.key_swap(&conv, epoch);
        mallory.settle(false);
        let OutboundOp::Commit { commit: hidden, .. } = hidden.op.clone() else { unreachable!() };

        let commit_call = |n: u8, channel: &ChannelId, epoch: u64, bytes: &[u8]| Outbound {
            id: ClientMsgId([n; 16]),
            op: OutboundOp::Commit {
                channel: channel.clone(),
                epoch,
                commit: bytes.to_vec(),
                welcome: vec![],
                add: vec![],
                remove: vec![],
            },
        };
        let refusals = [
            (commit_call(1, &conv, epoch, b"garbage, not MLS"), "not MLS 1.0"),
            (commit_call(2, &conv, epoch - 1, &commit), "after the conversation's epoch"),
            (commit_call(3, &other, 0, &commit), "another group"),
            (commit_call(4, &conv, epoch, &payload), "not a commit"),
            (commit_call(6, &conv, epoch, &hidden), "commits are sent as MLS PublicMessages"),
            (
                Outbound { id: ClientMsgId([5; 16]), op: OutboundOp::Enqueue { channel: other.clone(), payload, ttl_secs: 0 } },
                "another group",
            ),
        ];
        for (call, words) in refusals {
            let result = session.send_outbound(&call).await.unwrap();
            let OutboundResult::Refused { code, message } = result else { panic!("accepted: {call:?}") };
            assert_eq!(code, Some(ErrorCode::BadMlsMessage), "{message}");
            assert!(message.contains(words), "{message:?} should say {words:?}");
        }
        // Nothing changed: the epoch, the members, and nobody received anything of it.
        assert_eq!(session.channel_info(&conv).await.unwrap(), (epoch, members));
        assert_eq!(session.channel_info(&other).await.unwrap().0, 0);

        // The next honest commit is accepted and the conversation keeps flowing.
        alice.remove_members(&conv, &[mallory.addr.user.clone()]).await.unwrap();
        wait_members(&bob, &conv, 2).await;
        wait_outbox_empty(&alice).await;
        assert_eq!(session.channel_info(&conv).await.unwrap_err().remote_code(), Some(ErrorCode::NotMember));
        alice.send_text(&conv, "still here").await.unwrap();
        wait_texts(&bob, &conv, &["hello", "still here"]).await;
        for c in [&alice, &bob] {
            assert!(!c.with_engine(|e| e.history(&conv).iter().any(|m| matches!(m.content, Content::System(SystemEvent::Undecryptable(_))))));
        }
        assert_eq!(
            alice.with_engine(|e| e.epoch_authenticator(&conv)),
            bob.with_engine(|e| e.epoch_authenticator(&conv))
        );
    });
}

#[test]
fn only_admins_change_who_is_in_a_group_and_a_member_made_admin_may() {
    run(async {
        let dir = tempfile::tempdir().unwrap();
        let node = sqlite_node(dir.path());
        let alice = client(&node, dir.path(), "alice").await;
        let bob = client(&node, dir.path(), "bob").await;
        let (mut mallory, session, conv) = mallory_in_a_group(&node, &alice, &bob).await;
        let bobs = DeviceAddress { user: bob.user(), device: bob.with_engine(|e| e.device_id()) };
        let (epoch, members) = session.channel_info(&conv).await.unwrap();
        assert_eq!(bob.with_engine(|e| e.conversation(&conv).unwrap().admins.clone()), Some(vec![alice.user()]));

        // Bob, a member, is not offered removing anyone; Mallory, a member, removes Bob anyway
        // with a valid commit: the node refuses it and nothing changes.
        let err = bob.remove_members(&conv, &[mallory.addr.user.clone()]).await.unwrap_err();
        assert!(err.to_string().contains("only the conversation's admins may remove members"), "{err}");
        let out = mallory.removal(&conv, epoch, &bobs);
        refused(session.send_outbound(&out).await.unwrap(), "only the conversation's admins may add or remove members");
        mallory.settle(false);
        let out = mallory.admins(&conv, epoch, &[mallory.addr.user.clone()]);
        refused(session.send_outbound(&out).await.unwrap(), "only the conversation's admins may change its settings");
        mallory.settle(false);
        assert_eq!(session.channel_info(&conv).await.unwrap(), (epoch, members));

        // Alice makes Bob admin; then Bob may remove Mallory.
        alice.set_admin(&conv, &bob.user(), true).await.unwrap();
        wait_outbox_empty(&alice).await;
        assert!(bob.wait_for(20_000, |e| e.is_admin(&conv)).await, "bob sees himself admin");
        bob.remove_members(&conv, &[mallory.addr.user.clone()]).await.unwrap();
        wait_members(&alice, &conv, 2).await;
        wait_outbox_empty(&bob).await;
        alice.send_text(&conv, "just us").await.unwrap();
        wait_texts(&bob, &conv, &["hello", "just us"]).await;
        let mut admins = vec![alice.user(), bob.user()];
        admins.sort();
        for c in [&alice, &bob] {
            assert_eq!(c.with_engine(|e| e.conversation(&conv).unwrap().admins.clone()), Some(admins.clone()));
        }
    });
}

/// Whether `c` shows that it rejoined `conv`.
fn rejoined(e: &qpq_core::Engine, conv: &ChannelId) -> bool {
    e.history(conv)
        .iter()
        .any(|m| matches!(&m.content, Content::System(SystemEvent::Undecryptable(w)) if w.contains("rejoined it")))
}

#[test]
fn members_that_cannot_process_a_commit_the_node_accepted_rejoin_and_the_conversation_goes_on() {
    run(async {
        let dir = tempfile::tempdir().unwrap();
        let node = sqlite_node(dir.path());
        let alice = client(&node, dir.path(), "alice").await;
        let bob = client(&node, dir.path(), "bob").await;
        let (mut mallory, session, conv) = mallory_in_a_group(&node, &alice, &bob).await;
        let (epoch, _) = session.channel_info(&conv).await.unwrap();

        // A valid commit whose membership tag is wrong: the node cannot check that tag (it is
        // keyed by a secret of the epoch), the members can, and refuse the commit.
        let out = mallory.self_update(&conv, epoch);
        let OutboundOp::Commit { commit, .. } = out.op.clone() else { unreachable!() };
        let mut bad_tag = commit;
        *bad_tag.last_mut().unwrap() ^= 1;
        let call = Outbound {
            id: out.id,
            op: OutboundOp::Commit { channel: conv.clone(), epoch, commit: bad_tag, welcome: vec![], add: vec![], remove: vec![] },
        };
        assert!(matches!(session.send_outbound(&call).await.unwrap(), OutboundResult::Accepted { .. }));
        mallory.settle(true);
        let publish = mallory.publish_group_info(&conv);
        assert!(matches!(session.send_outbound(&publish).await.unwrap(), OutboundResult::Accepted { .. }));

        // Alice and Bob each report the commit they cannot read, rejoin from the GroupInfo
        // the node keeps (one after the other: the second from the first's), and the
        // conversation goes on.
        for c in [&alice, &bob] {
            assert!(c.wait_for(30_000, |e| rejoined(e, &conv)).await, "{} rejoins", c.user());
        }
        wait_outbox_empty(&alice).await;
        wait_outbox_empty(&bob).await;
        assert_eq!(session.channel_info(&conv).await.unwrap().0, epoch + 3, "the bad commit and two rejoins");
        alice.send_text(&conv, "after the rejoin").await.unwrap();
        wait_texts(&bob, &conv, &["hello", "after the rejoin"]).await;
        bob.send_text(&conv, "back to you").await.unwrap();
        wait_texts(&alice, &conv, &["hello", "after the rejoin", "back to you"]).await;
        assert_eq!(
            alice.with_engine(|e| e.epoch_authenticator(&conv)),
            bob.with_engine(|e| e.epoch_authenticator(&conv))
        );
        for c in [&alice, &bob] {
            assert_eq!(c.with_engine(|e| e.conversation(&conv).unwrap().members.len()), 3, "{} still sees three", c.user());
        }
    });
}

/// Joins `dev` to every conversation whose Welcome waits in its queue, until it is in `n`.
async fn join_all(dev: &mut Hostile, session: &qpq_client::Session, n: usize) {
    for _ in 0..200 {
        for env in session.fetch(0, 100).await.unwrap() {
            dev.receive(&env);
        }
        if dev.groups.len() >= n {
            return;
        }
        sleep(100).await;
    }
    panic!("{} joined {} of {n} conversations", dev.addr.user, dev.groups.len());
}

fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64
}

/// Another device of `owner`'s account: its record signed by the owner's identity key and
/// added through the owner's session, logged in on a connection of its own with four key
/// packages (an MLS member without an engine of ours).
async fn linked_device(
    owner: &qpq_native::NativeClient,
    node: &qpq_server::RunningNode,
    seed: u8,
) -> (Hostile, qpq_client::Session, quinn::Connection) {
    let ik = owner.with_engine(|e| e.identity_public_key());
    let dev = Hostile::linked(ik, seed, |id, key| owner.with_engine(|e| e.sign_device_record(id, key, now_ms())));
    owner.session().unwrap().add_device(&dev.record).await.unwrap();
    let conn = raw_connection(node).await;
    let rpc = rpc(&conn).await;
    rpc.hello("linked").await.unwrap();
    let nonce = rpc.challenge(&dev.addr.user, &dev.addr.device).await.unwrap();
    let session = rpc.login(&dev.addr.user, &dev.addr.device, &nonce, &dev.sign_login(&nonce)).await.unwrap();
    session.upload_key_packages(&dev.key_packages(4), None).await.unwrap();
    (dev, session, conn)
}

#[test]
fn a_device_linked_later_joins_every_conversation_at_the_accounts_next_login() {
    run(async {
        let dir = tempfile::tempdir().unwrap();
        let node = sqlite_node(dir.path());
        let alice = client(&node, dir.path(), "alice").await;
        let bob = client(&node, dir.path(), "bob").await;
        let chat = bob.start_chat(&alice.user()).await.unwrap();
        let group = bob.create_group("team", &[alice.user()]).await.unwrap();
        wait_conversation(&alice, &chat).await;
        wait_conversation(&alice, &group).await;

        // Alice links a device afterwards; her client adds it at its next login, to both
        // conversations, with one key package of that device for each.
        let (mut dev, session, _conn) = linked_device(&alice, &node, 63).await;
        alice.shutdown().await;
        let alice = reopen(node.addr(), node.fingerprint(), dir.path(), "alice").await;
        join_all(&mut dev, &session, 2).await;
        wait_outbox_empty(&alice).await;
        for conv in [&chat, &group] {
            let joined = bob.wait_for(20_000, |e| e.member_devices(conv).contains(&dev.addr)).await;
            assert!(joined, "Bob's group holds Alice's new device");
            assert_eq!(bob.with_engine(|e| e.conversation(conv).unwrap().members.len()), 2, "still two people");
            bob.send_text(conv, "welcome").await.unwrap();
            wait_texts(&alice, conv, &["welcome"]).await;
            assert_eq!(
                alice.with_engine(|e| e.epoch_authenticator(conv)),
                bob.with_engine(|e| e.epoch_authenticator(conv))
            );
        }
        assert_eq!(session.key_package_count().await.unwrap(), 2, "one package of the new device per conversation");
        // Nothing more to do at the login after.
        alice.shutdown().await;
        let alice = reopen(node.addr(), node.fingerprint(), dir.path(), "alice").await;
        assert!(online(&alice).await);
        wait_outbox_empty(&alice).await;
        assert_eq!(session.key_package_count().await.unwrap(), 2);
        node.stop();
    });
}

#[test]
fn a_revoked_device_is_removed_from_every_conversation_by_the_accounts_other_devices() {
    run(async {
        let dir = tempfile::tempdir().unwrap();
        let node = sqlite_node(dir.path());
        let alice = client(&node, dir.path(), "alice").await;
        let bob = client(&node, dir.path(), "bob").await;
        let now = now_ms();
        // Two more devices of Alice's.
        let mut linked = vec![linked_device(&alice, &node, 61).await, linked_device(&alice, &node, 62).await];
        // Bob starts a chat and a group with Alice: every device of hers joins both.
        let chat = bob.start_chat(&alice.user()).await.unwrap();
        let group = bob.create_group("team", &[alice.user()]).await.unwrap();
        for (dev, session, _) in &mut linked {
            join_all(dev, session, 2).await;
        }
        wait_conversation(&alice, &group).await;
        let (a2, a3) = (linked[0].0.addr.clone(), linked[1].0.addr.clone());
        for conv in [&chat, &group] {
            let devices = bob.with_engine(|e| e.member_devices(conv));
            assert!(devices.contains(&a2) && devices.contains(&a3), "{devices:?}");
        }

        // Alice revokes her second device: her client removes its leaves from both conversations.
        assert_eq!(alice.revoke_device(&a2.device).await.unwrap(), 2);
        for conv in [&chat, &group] {
            let gone = bob.wait_for(20_000, |e| !e.member_devices(conv).contains(&a2)).await;
            assert!(gone, "Bob's group no longer holds the revoked device");
        }

        // Her third device is revoked from elsewhere (a fourth device) while her client is
        // off: at its next login her client sees the directory without it and removes it.
        alice.shutdown().await;
        let fourth = {
            use ed25519_dalek::SigningKey;
            let key = SigningKey::from_bytes(&[0x64; 32]);
            let public = key.verifying_key().to_bytes();
            let record = alice.with_engine(|e| e.sign_device_record(DeviceId([0x64; 16]), public, now));
            support::raw::RawDevice { record, key }
        };
        let alice = reopen(node.addr(), node.fingerprint(), dir.path(), "alice").await;
        assert!(online(&alice).await);
        alice.session().unwrap().add_device(&fourth.record).await.unwrap();
        alice.shutdown().await;
        let s4 = support::raw::login(&node, &fourth).await;
        s4.session.revoke_device(&a3.device).await.unwrap();
        let alice = reopen(node.addr(), node.fingerprint(), dir.path(), "alice").await;
        for conv in [&chat, &group] {
            let gone = bob.wait_for(20_000, |e| !e.member_devices(conv).contains(&a3)).await;
            assert!(gone, "the device revoked elsewhere is removed at Alice's next login");
        }

        // Alice is still a member everywhere (only devices went), nobody shows her removed,
        // and the conversations go on with both sides agreeing.
        wait_outbox_empty(&alice).await;
        for conv in [&chat, &group] {
            assert!(bob.with_engine(|e| e.conversation(conv).unwrap().members.contains(&alice.user())));
            let removed_shown = bob.with_engine(|e| {
                e.history(conv).iter().any(|m| matches!(&m.content, Content::System(SystemEvent::Removed(_))))
            });
            assert!(!removed_shown, "removing a device is not shown as removing its user");
            bob.send_text(conv, "after the revocations").await.unwrap();
            wait_texts(&alice, conv, &["after the revocations"]).await;
            assert_eq!(
                alice.with_engine(|e| e.epoch_authenticator(conv)),
                bob.with_engine(|e| e.epoch_authenticator(conv))
            );
        }
        node.stop();
    });
}
