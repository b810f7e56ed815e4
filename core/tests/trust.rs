//! Members are who the directory says they are: engine scenarios with a hostile member that
//! forges leaves (a Welcome's tree, a commit's Add, a key swapped on update) or claims other
//! people's messages. Honest engines refuse, change nothing, say so, and the group goes on.

mod support;
#[path = "support/hostile.rs"]
mod hostile;
#[path = "support/hostile_sim.rs"]
mod hostile_sim;

use qpq_core::{Body, Content, ConversationKind, EngineError, LeaveReason, SystemEvent};
use qpq_types::{ChannelId, DeviceAddress, DeviceId, UserId};
use hostile::Hostile;
use hostile_sim::{hostile_call, hostile_member, hostile_sync};
use support::{SimClient, SimServer};

/// Processes the queue and answers the directory; returns every refusal.
fn sync_errors(c: &mut SimClient, server: &mut SimServer) -> Vec<EngineError> {
    let mut errors = Vec::new();
    for e in server.fetch(&c.addr(), c.engine.cursor()) {
        if let Err(err) = c.engine.receive(&e, server.time) {
            errors.push(err);
        }
        c.persist();
    }
    errors.extend(c.answer_directory(server));
    errors
}

fn untrusted(errors: &[EngineError]) -> bool {
    errors.iter().any(|e| matches!(e, EngineError::UntrustedMember { .. }))
}

fn notices(c: &SimClient, conv: &ChannelId) -> usize {
    c.engine
        .history(conv)
        .iter()
        .filter(|m| matches!(&m.content, Content::System(SystemEvent::Undecryptable(w)) if w.contains("does not match the directory")))
        .count()
}

/// Alice, Bob and the hostile Mallory in one group Alice created; Alice has said "hello".
fn group_with_mallory(server: &mut SimServer) -> (SimClient, SimClient, Hostile, ChannelId) {
    let mut alice = SimClient::new(server, "alice", 1);
    let mut bob = SimClient::new(server, "bob", 2);
    let mut mallory = hostile_member(server, "mallory", 40);
    let conv = alice.start(server, ConversationKind::Group, "team", &[&bob]);
    alice.learn(server, &mallory.addr.user);
    let pkgs = server.claim(&mallory.addr.user, &alice.addr());
    alice.engine.add_members(&conv, pkgs).unwrap();
    alice.persist();
    alice.pump(server);
    assert!(sync_errors(&mut bob, server).is_empty());
    hostile_sync(&server, &mut mallory);
    assert!(mallory.groups.contains_key(&conv), "mallory joined");
    alice.send(server, &conv, "hello");
    assert!(sync_errors(&mut bob, server).is_empty());
    hostile_sync(&server, &mut mallory);
    assert_eq!(bob.texts(&conv), vec!["hello"]);
    (alice, bob, mallory, conv)
}

/// Mallory starts a group holding a forged leaf for `victim` and invites `target`.
fn forged_group(server: &mut SimServer, mallory: &mut Hostile, victim: &DeviceAddress, target: &qpq_core::ClaimedPackage) -> ChannelId {
    let (conv, create, commit) = mallory.forged_group(victim, target, server.time);
    assert!(hostile_call(server, mallory, create));
    assert!(hostile_call(server, mallory, commit));
    conv
}

fn same_epoch(a: &SimClient, b: &SimClient, conv: &ChannelId) {
    assert_eq!(a.engine.epoch_authenticator(conv), b.engine.epoch_authenticator(conv));
    assert!(a.engine.epoch_authenticator(conv).is_some());
}

#[test]
fn a_welcome_whose_tree_forges_a_member_is_refused() {
    let mut server = SimServer::default();
    let mut alice = SimClient::new(&mut server, "alice", 1);
    let mut bob = SimClient::new(&mut server, "bob", 2);
    let mut mallory = hostile_member(&mut server, "mallory", 40);
    let target = server.claim(&bob.user(), &mallory.addr).pop().unwrap();
    let conv = forged_group(&mut server, &mut mallory, &alice.addr(), &target);

    let errors = sync_errors(&mut bob, &mut server);
    assert!(untrusted(&errors), "bob refuses: {errors:?}");
    assert!(bob.engine.conversation(&conv).is_none(), "nothing from the forged alice is shown");
    assert_eq!(bob.engine.held_len(), 0);
    // The Welcome also went to Alice's device, which cannot open it: the forged leaf's keys
    // are Mallory's.
    let errors = sync_errors(&mut alice, &mut server);
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(alice.engine.conversation(&conv).is_none());

    // Bob's key package was not used up by the refused Welcome: an honest invitation works.
    let conv2 = alice.start(&mut server, ConversationKind::Direct, "", &[&bob]);
    assert!(sync_errors(&mut bob, &mut server).is_empty());
    same_epoch(&alice, &bob, &conv2);
}

#[test]
fn a_welcome_naming_a_user_the_directory_lacks_is_refused() {
    let mut server = SimServer::default();
    let mut bob = SimClient::new(&mut server, "bob", 2);
    let mut mallory = hostile_member(&mut server, "mallory", 40);
    let ghost = DeviceAddress { user: UserId::parse("support@sim.test").unwrap(), device: DeviceId([3; 16]) };
    let target = server.claim(&bob.user(), &mallory.addr).pop().unwrap();
    let conv = forged_group(&mut server, &mut mallory, &ghost, &target);
    let errors = sync_errors(&mut bob, &mut server);
    assert!(untrusted(&errors), "{errors:?}");
    assert!(bob.engine.conversation(&conv).is_none());
}

#[test]
fn a_commit_adding_a_forged_leaf_is_refused_by_everyone_and_the_group_goes_on() {
    let mut server = SimServer::default();
    let (mut alice, mut bob, mut mallory, conv) = group_with_mallory(&mut server);
    let auth_before = alice.engine.epoch_authenticator(&conv);
    let victim = alice.addr();
    let out = mallory.forged_add(&conv, server.epoch(&conv), &victim);
    assert!(hostile_call(&mut server, &mut mallory, out), "the server takes it");

    for c in [&mut alice, &mut bob] {
        let errors = sync_errors(c, &mut server);
        assert!(untrusted(&errors), "{errors:?}");
        assert_eq!(c.engine.epoch_authenticator(&conv), auth_before, "nothing changed");
        assert_eq!(notices(c, &conv), 1, "the refusal is shown");
        let members = &c.engine.conversation(&conv).unwrap().members;
        assert_eq!(members.len(), 3);
    }

    // The next honest commit works: Bob, made admin by Alice, adds Carol.
    alice.make_admin(&mut server, &conv, &bob.user());
    assert!(sync_errors(&mut bob, &mut server).is_empty());
    let mut carol = SimClient::new(&mut server, "carol", 3);
    bob.add(&mut server, &conv, &[&carol]);
    bob.pump(&mut server);
    assert_eq!(bob.engine.outbox_len(), 0, "the server took Bob's commit");
    assert!(sync_errors(&mut alice, &mut server).is_empty());
    assert!(sync_errors(&mut carol, &mut server).is_empty());
    same_epoch(&alice, &bob, &conv);
    same_epoch(&alice, &carol, &conv);
    alice.send(&mut server, &conv, "still here");
    sync_errors(&mut bob, &mut server);
    sync_errors(&mut carol, &mut server);
    assert_eq!(bob.texts(&conv), vec!["hello", "still here"]);
    assert_eq!(carol.texts(&conv), vec!["still here"]);
    // And another commit after that, from Alice.
    alice.engine.update_keys(&conv).unwrap();
    alice.persist();
    alice.pump(&mut server);
    assert_eq!(alice.engine.outbox_len(), 0, "the server took Alice's commit");
    sync_errors(&mut bob, &mut server);
    sync_errors(&mut carol, &mut server);
    same_epoch(&alice, &bob, &conv);
    same_epoch(&alice, &carol, &conv);
    // Carol joined after the refused commit; her Welcome told her it took a server epoch, so
    // her commits name the server's epoch too.
    assert_eq!(carol.engine.conversation(&conv).unwrap().refused_commits, 1);
    carol.engine.update_keys(&conv).unwrap();
    carol.persist();
    carol.pump(&mut server);
    assert_eq!(carol.engine.outbox_len(), 0, "the server took Carol's commit");
    assert!(sync_errors(&mut alice, &mut server).is_empty());
    assert!(sync_errors(&mut bob, &mut server).is_empty());
    same_epoch(&alice, &carol, &conv);
    same_epoch(&bob, &carol, &conv);
}

#[test]
fn an_update_swapping_a_signature_key_is_refused() {
    let mut server = SimServer::default();
    let (mut alice, mut bob, mut mallory, conv) = group_with_mallory(&mut server);
    let auth_before = alice.engine.epoch_authenticator(&conv);
    let out = mallory.key_swap(&conv, server.epoch(&conv));
    assert!(hostile_call(&mut server, &mut mallory, out));
    for c in [&mut alice, &mut bob] {
        let errors = sync_errors(c, &mut server);
        assert!(untrusted(&errors), "{errors:?}");
        assert_eq!(c.engine.epoch_authenticator(&conv), auth_before);
    }
    alice.engine.update_keys(&conv).unwrap();
    alice.persist();
    alice.pump(&mut server);
    assert_eq!(alice.engine.outbox_len(), 0, "the server took Alice's commit");
    assert!(sync_errors(&mut bob, &mut server).is_empty());
    same_epoch(&alice, &bob, &conv);
}

#[test]
fn edits_deletes_and_leaving_count_only_for_the_real_sender() {
    let mut server = SimServer::default();
    let (alice, mut bob, mut mallory, conv) = group_with_mallory(&mut server);
    let hello = bob.engine.history(&conv).iter().find(|m| matches!(&m.content, Content::Text { .. })).unwrap().id;
    let out = mallory.message(&conv, Body::Edit { target: hello, text: "I owe mallory money".into() }, server.time);
    hostile_call(&mut server, &mut mallory, out);
    let out = mallory.message(&conv, Body::Delete { target: hello }, server.time);
    hostile_call(&mut server, &mut mallory, out);
    let out = mallory.message(&conv, Body::Leave { reason: LeaveReason::Left }, server.time);
    hostile_call(&mut server, &mut mallory, out);
    sync_errors(&mut bob, &mut server);
    let m = bob.engine.message_by_id(&conv, &hello).unwrap();
    assert_eq!(m.content, Content::Text { text: "hello".into(), reply_to: None });
    assert!(!m.edited);
    let left: Vec<&UserId> = bob
        .engine
        .history(&conv)
        .iter()
        .filter(|m| matches!(m.content, Content::System(SystemEvent::Left)))
        .map(|m| &m.sender)
        .collect();
    assert_eq!(left, vec![&mallory.addr.user], "the leave is Mallory's own, never Alice's");
    assert!(bob.engine.conversation(&conv).unwrap().members.contains(&alice.user()));
}

#[test]
fn a_commit_waiting_for_the_directory_holds_later_messages_across_a_restart() {
    let mut server = SimServer::default();
    let mut alice = SimClient::new(&mut server, "alice", 1);
    let mut bob = SimClient::new(&mut server, "bob", 2);
    let carol = SimClient::new(&mut server, "carol", 3);
    let conv = alice.start(&mut server, ConversationKind::Group, "team", &[&bob]);
    sync_errors(&mut bob, &mut server);
    alice.add(&mut server, &conv, &[&carol]);
    alice.pump(&mut server);
    alice.send(&mut server, &conv, "welcome carol");
    for e in server.fetch(&bob.addr(), bob.engine.cursor()) {
        bob.engine.receive(&e, server.time).unwrap();
        bob.persist();
    }
    assert_eq!(bob.engine.directory_needed(), vec![carol.user()]);
    assert!(bob.texts(&conv).is_empty(), "the message after the commit waits behind it");
    bob.reload();
    assert_eq!(bob.engine.held_len(), 2);
    assert!(bob.answer_directory(&server).is_empty());
    assert_eq!(bob.engine.held_len(), 0);
    assert_eq!(bob.texts(&conv), vec!["welcome carol"]);
    assert!(bob.engine.conversation(&conv).unwrap().members.contains(&carol.user()));
    same_epoch(&alice, &bob, &conv);
}

#[test]
fn a_members_removal_of_another_member_is_ignored_by_every_client() {
    // The simulated delivery service takes any commit; the node would refuse this one too
    // (e2e/tests/trust.rs). Alice created the group: she is its only admin.
    let mut server = SimServer::default();
    let (mut alice, mut bob, mut mallory, conv) = group_with_mallory(&mut server);
    let auth_before = alice.engine.epoch_authenticator(&conv);
    let admin = alice.user();
    let out = mallory.removal(&conv, server.epoch(&conv), &bob.addr());
    assert!(hostile_call(&mut server, &mut mallory, out), "the simulated server takes it");
    let out = mallory.admins(&conv, server.epoch(&conv), &[mallory.addr.user.clone()]);
    assert!(hostile_call(&mut server, &mut mallory, out), "the simulated server takes it");
    for c in [&mut alice, &mut bob] {
        let errors = sync_errors(c, &mut server);
        assert!(
            errors.iter().any(|e| e.to_string().contains("only the conversation's admins may add or remove members")),
            "{errors:?}"
        );
        assert_eq!(c.engine.epoch_authenticator(&conv), auth_before, "nothing changed");
        let view = c.engine.conversation(&conv).unwrap();
        assert_eq!(view.members.len(), 3, "bob is still in");
        assert_eq!(view.admins, Some(vec![admin.clone()]));
    }
}
