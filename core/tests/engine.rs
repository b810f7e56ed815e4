//! Engine behaviour with several simulated clients and a simulated delivery service.

mod support;

use qpq_core::{Content, ConversationKind, EngineError, Status, SystemEvent};
use qpq_types::EnvelopeKind;
use support::{SimClient, SimServer};

fn epoch_auths(clients: &[&SimClient], conv: &qpq_types::ChannelId) -> Vec<Vec<u8>> {
    clients.iter().map(|c| c.engine.epoch_authenticator(conv).expect("in group")).collect()
}

#[test]
fn direct_chat_both_ways_with_delivery_receipts() {
    let mut s = SimServer::default();
    let mut alice = SimClient::new(&mut s, "alice", 1);
    let mut bob = SimClient::new(&mut s, "bob", 2);

    let conv = alice.start(&mut s, ConversationKind::Direct, "", &[&bob]);
    bob.sync(&mut s);
    let c = bob.engine.conversation(&conv).expect("bob joined");
    assert_eq!(c.members, vec![alice.user(), bob.user()]);
    assert_eq!(c.title(&bob.user()), "alice@sim.test");

    alice.send(&mut s, &conv, "hi bob");
    assert_eq!(alice.engine.history(&conv).last().unwrap().status, Status::Sent);
    bob.sync(&mut s);
    assert_eq!(bob.texts(&conv), vec!["hi bob"]);
    assert_eq!(bob.engine.conversation(&conv).unwrap().unread, 1);
    bob.pump(&mut s); // sends the delivery receipt
    alice.sync(&mut s);
    assert_eq!(alice.engine.history(&conv).last().unwrap().status, Status::Delivered);

    bob.send(&mut s, &conv, "hello alice");
    alice.sync(&mut s);
    assert_eq!(alice.texts(&conv), vec!["hi bob", "hello alice"]);
    let last = alice.engine.history(&conv).last().unwrap();
    assert_eq!(last.sender, bob.user());
    assert!(!last.outgoing);
    bob.engine.mark_read(&conv);
    assert_eq!(bob.engine.conversation(&conv).unwrap().unread, 0);
    assert_eq!(epoch_auths(&[&alice, &bob], &conv)[0], epoch_auths(&[&alice, &bob], &conv)[1]);
}

#[test]
fn group_of_three_with_add_and_remove_and_no_reading_after_removal() {
    let mut s = SimServer::default();
    let mut alice = SimClient::new(&mut s, "alice", 1);
    let mut bob = SimClient::new(&mut s, "bob", 2);
    let mut carol = SimClient::new(&mut s, "carol", 3);
    let mut dave = SimClient::new(&mut s, "dave", 4);

    let conv = alice.start(&mut s, ConversationKind::Group, "Team", &[&bob, &carol]);
    bob.sync(&mut s);
    carol.sync(&mut s);
    assert_eq!(carol.engine.conversation(&conv).unwrap().name, "Team");
    assert_eq!(carol.engine.conversation(&conv).unwrap().members.len(), 3);

    alice.send(&mut s, &conv, "before dave");
    // Dave is added later, by Bob, whom Alice made admin, and sees messages from then on only.
    alice.make_admin(&mut s, &conv, &bob.user());
    bob.sync(&mut s);
    bob.add(&mut s, &conv, &[&dave]);
    bob.pump(&mut s);
    for c in [&mut alice, &mut carol, &mut dave] {
        c.sync(&mut s);
    }
    assert_eq!(dave.engine.conversation(&conv).unwrap().members.len(), 4);
    carol.send(&mut s, &conv, "welcome dave");
    for c in [&mut alice, &mut bob, &mut dave] {
        c.sync(&mut s);
    }
    assert_eq!(dave.texts(&conv), vec!["welcome dave"]);
    assert_eq!(alice.texts(&conv), vec!["before dave", "welcome dave"]);
    let a = epoch_auths(&[&alice, &bob, &carol, &dave], &conv);
    assert!(a.windows(2).all(|w| w[0] == w[1]), "all members agree on the epoch");

    // Alice removes Carol.
    alice.engine.remove_members(&conv, vec![carol.user()]).unwrap();
    alice.persist();
    alice.pump(&mut s);
    carol.sync(&mut s);
    let cc = carol.engine.conversation(&conv).unwrap();
    assert!(!cc.active);
    assert!(matches!(
        carol.engine.history(&conv).last().unwrap().content,
        Content::System(SystemEvent::YouWereRemoved)
    ));
    assert_eq!(carol.engine.send_text(&conv, "still here?", None, 0), Err(EngineError::NotActive));

    bob.sync(&mut s);
    dave.sync(&mut s);
    bob.send(&mut s, &conv, "after carol left");
    // The server no longer routes to Carol; even handed the ciphertext she cannot read it.
    let leaked = s.fetch(&dave.addr(), 0).into_iter().filter(|e| e.kind == EnvelopeKind::Application).last().unwrap();
    assert!(s.fetch(&carol.addr(), carol.engine.cursor()).is_empty());
    let mut leaked = leaked;
    leaked.seq = carol.engine.cursor() + 1;
    assert!(carol.engine.receive(&leaked, s.time).is_err());
    assert!(!carol.texts(&conv).contains(&"after carol left".to_string()));
    dave.sync(&mut s);
    assert_eq!(dave.texts(&conv).last().unwrap(), "after carol left");
    let members = &alice.engine.conversation(&conv).unwrap().members;
    assert!(!members.contains(&carol.user()));
}

#[test]
fn concurrent_commits_one_wins_the_other_retries_and_nobody_forks() {
    let mut s = SimServer::default();
    let mut alice = SimClient::new(&mut s, "alice", 1);
    let mut bob = SimClient::new(&mut s, "bob", 2);
    let carol = SimClient::new(&mut s, "carol", 3);
    let dave = SimClient::new(&mut s, "dave", 4);
    let conv = alice.start(&mut s, ConversationKind::Group, "race", &[&bob]);
    alice.make_admin(&mut s, &conv, &bob.user());
    bob.sync(&mut s);

    // Both build a commit for the same epoch before either reaches the server.
    alice.add(&mut s, &conv, &[&carol]);
    bob.add(&mut s, &conv, &[&dave]);
    let a = alice.engine.next_outbound(s.time).unwrap();
    let b = bob.engine.next_outbound(s.time).unwrap();
    alice.persist();
    bob.persist();
    let ra = s.handle(&alice.addr(), &a).unwrap();
    let rb = s.handle(&bob.addr(), &b).unwrap();
    assert!(matches!(ra, qpq_core::OutboundResult::Accepted { .. }));
    assert!(matches!(rb, qpq_core::OutboundResult::Refused { code: Some(qpq_types::ErrorCode::StaleEpoch), .. }));
    alice.engine.outbound_result(a.id, ra, s.time);
    bob.engine.outbound_result(b.id, rb, s.time);
    alice.persist();
    bob.persist();
    // Bob must process the winner before rebuilding.
    assert!(bob.engine.next_outbound(s.time).is_none());
    bob.sync(&mut s);
    assert_eq!(bob.pump(&mut s), 2, "the rebuilt commit, then its GroupInfo");
    alice.sync(&mut s);

    let mut carol = carol;
    let mut dave = dave;
    carol.sync(&mut s);
    dave.sync(&mut s);
    let all = [&alice, &bob, &carol, &dave];
    let auths = epoch_auths(&all, &conv);
    assert!(auths.windows(2).all(|w| w[0] == w[1]), "no fork");
    for c in all {
        // create (0) → add bob (1) → bob made admin (2) → alice's add (3) → bob's rebuilt add (4)
        assert_eq!(c.engine.conversation(&conv).unwrap().epoch, 4);
        assert_eq!(c.engine.conversation(&conv).unwrap().members.len(), 4);
    }
}

#[test]
fn retried_send_after_lost_reply_appears_once() {
    let mut s = SimServer::default();
    let mut alice = SimClient::new(&mut s, "alice", 1);
    let mut bob = SimClient::new(&mut s, "bob", 2);
    let conv = alice.start(&mut s, ConversationKind::Direct, "", &[&bob]);
    bob.sync(&mut s);

    alice.engine.send_text(&conv, "only once", None, s.time).unwrap();
    alice.persist();
    s.lose_next_reply = true;
    assert_eq!(alice.pump(&mut s), 0);
    assert_eq!(alice.engine.history(&conv).last().unwrap().status, Status::Sending);
    // The app restarts before retrying.
    alice.reload();
    assert_eq!(alice.pump(&mut s), 1);
    assert_eq!(alice.engine.history(&conv).last().unwrap().status, Status::Sent);
    bob.sync(&mut s);
    assert_eq!(bob.texts(&conv), vec!["only once"]);
    // Delivering the same envelope again changes nothing.
    let env = s.fetch(&bob.addr(), 0).pop().unwrap();
    bob.engine.receive(&env, s.time).unwrap();
    assert_eq!(bob.texts(&conv), vec!["only once"]);
}

#[test]
fn lost_commit_reply_is_settled_by_retry() {
    let mut s = SimServer::default();
    let mut alice = SimClient::new(&mut s, "alice", 1);
    let mut bob = SimClient::new(&mut s, "bob", 2);
    let conv = alice.engine.create_conversation(ConversationKind::Group, "g", 0).unwrap();
    alice.persist();
    alice.pump(&mut s);
    alice.add(&mut s, &conv, &[&bob]);
    s.lose_next_reply = true;
    alice.pump(&mut s);
    alice.reload();
    alice.pump(&mut s);
    bob.sync(&mut s);
    alice.send(&mut s, &conv, "after retry");
    bob.sync(&mut s);
    assert_eq!(bob.texts(&conv), vec!["after retry"]);
    assert_eq!(epoch_auths(&[&alice, &bob], &conv)[0], epoch_auths(&[&alice, &bob], &conv)[1]);
}

#[test]
fn state_survives_reload_at_every_step() {
    let mut s = SimServer::default();
    let mut alice = SimClient::new(&mut s, "alice", 1);
    let mut bob = SimClient::new(&mut s, "bob", 2);
    let conv = alice.start(&mut s, ConversationKind::Direct, "", &[&bob]);
    alice.reload();
    bob.sync(&mut s);
    bob.reload();
    for i in 0..5 {
        alice.send(&mut s, &conv, &format!("a{i}"));
        alice.reload();
        bob.sync(&mut s);
        bob.reload();
        bob.send(&mut s, &conv, &format!("b{i}"));
        bob.reload();
        alice.sync(&mut s);
        alice.reload();
    }
    let expect: Vec<String> = (0..5).flat_map(|i| [format!("a{i}"), format!("b{i}")]).collect();
    assert_eq!(alice.texts(&conv), expect);
    assert_eq!(bob.texts(&conv), expect);
    assert_eq!(alice.engine.conversations().len(), 1);
}

#[test]
fn message_made_before_a_commit_is_encrypted_again_and_the_added_member_reads_it() {
    let mut s = SimServer::default();
    let mut alice = SimClient::new(&mut s, "alice", 1);
    let mut bob = SimClient::new(&mut s, "bob", 2);
    let mut carol = SimClient::new(&mut s, "carol", 3);
    let conv = alice.start(&mut s, ConversationKind::Group, "g", &[&bob]);
    bob.sync(&mut s);
    // Bob encrypts in epoch 1 but is slow to send; Alice adds Carol (epoch 2) meanwhile.
    let id = bob.engine.send_text(&conv, "sent as carol joined", None, s.time).unwrap();
    let status = |c: &SimClient| c.engine.history(&conv).iter().find(|m| m.id == id).unwrap().status.clone();
    let out = bob.engine.next_outbound(s.time).unwrap();
    bob.persist();
    alice.add(&mut s, &conv, &[&carol]);
    alice.pump(&mut s);
    // Carol could not read epoch 1: the server refuses it, and nothing of it is queued.
    let r = s.handle(&bob.addr(), &out).unwrap();
    let stale = Some(qpq_types::ErrorCode::StaleEpoch);
    assert!(matches!(r, qpq_core::OutboundResult::Refused { ref code, .. } if *code == stale), "{r:?}");
    bob.engine.outbound_result(out.id, r, s.time);
    bob.persist();
    bob.reload();
    assert!(bob.engine.next_outbound(s.time).is_none(), "it waits for the commit");
    assert_eq!(status(&bob), qpq_core::Status::Sending);
    bob.sync(&mut s);
    let again = bob.engine.next_outbound(s.time).unwrap();
    assert_eq!(again.id, out.id, "the same id: the server kept nothing of the refused attempt");
    let r = s.handle(&bob.addr(), &again).unwrap();
    assert!(matches!(r, qpq_core::OutboundResult::Accepted { .. }), "{r:?}");
    bob.engine.outbound_result(again.id, r, s.time);
    bob.pump(&mut s);
    assert_eq!(status(&bob), qpq_core::Status::Sent);
    alice.sync(&mut s);
    carol.sync(&mut s);
    assert_eq!(alice.texts(&conv), vec!["sent as carol joined"]);
    assert_eq!(carol.texts(&conv), vec!["sent as carol joined"], "the added member reads it");
}

#[test]
fn a_leave_behind_its_own_hand_over_reaches_everyone() {
    let mut s = SimServer::default();
    let mut alice = SimClient::new(&mut s, "alice", 1);
    let mut bob = SimClient::new(&mut s, "bob", 2);
    let conv = alice.start(&mut s, ConversationKind::Group, "g", &[&bob]);
    bob.sync(&mut s);
    // Alice is the only admin: leaving hands the role to Bob first (a commit), then the leave
    // message, made before that commit, goes out after it (the commit adds nobody, so the
    // message is not stale).
    alice.engine.leave_conversation(&conv, qpq_core::LeaveReason::Left, s.time).unwrap();
    alice.persist();
    alice.pump(&mut s);
    assert!(alice.engine.next_outbound(s.time).is_none(), "nothing left to send");
    let before = bob.engine.conversation(&conv).unwrap().members.len();
    bob.sync(&mut s);
    bob.pump(&mut s);
    let c = bob.engine.conversation(&conv).unwrap();
    assert_eq!(c.admins.as_deref(), Some(&[bob.user()][..]), "the role went to Bob");
    assert_eq!((before, c.members.len()), (2, 1), "Bob heard the leave and removed Alice");
}

#[test]
fn a_leave_that_loses_to_another_commit_waits_for_it_and_is_encrypted_again() {
    let mut s = SimServer::default();
    let mut alice = SimClient::new(&mut s, "alice", 1);
    let mut bob = SimClient::new(&mut s, "bob", 2);
    let mut carol = SimClient::new(&mut s, "carol", 3);
    let conv = alice.start(&mut s, ConversationKind::Group, "g", &[&bob]);
    alice.make_admin(&mut s, &conv, &bob.user());
    bob.sync(&mut s);
    // Bob adds Carol; Alice, who has not seen that commit, leaves (no hand-over: Bob is an
    // admin too). Her leave is stale, and she no longer takes part in the conversation.
    bob.add(&mut s, &conv, &[&carol]);
    bob.pump(&mut s);
    alice.engine.leave_conversation(&conv, qpq_core::LeaveReason::Left, s.time).unwrap();
    alice.persist();
    alice.pump(&mut s);
    assert!(alice.engine.next_outbound(s.time).is_none(), "the leave waits for Bob's commit");
    alice.sync(&mut s);
    assert_eq!(alice.pump(&mut s), 1, "the leave, encrypted again");
    bob.sync(&mut s);
    bob.pump(&mut s);
    carol.sync(&mut s);
    for c in [&bob, &carol] {
        assert!(!c.engine.conversation(&conv).unwrap().members.contains(&alice.user()), "Alice's leave was read");
    }
}

#[test]
fn bad_inputs_are_typed_errors_and_do_not_wedge_the_queue() {
    let mut s = SimServer::default();
    let mut alice = SimClient::new(&mut s, "alice", 1);
    let mut bob = SimClient::new(&mut s, "bob", 2);
    let conv = alice.start(&mut s, ConversationKind::Direct, "", &[&bob]);
    bob.sync(&mut s);
    for (i, payload) in [vec![], vec![0xff; 40], b"garbage".to_vec()].into_iter().enumerate() {
        s.deliver(&bob.addr(), &conv, &alice.addr(), EnvelopeKind::Application, &payload);
        let env = s.fetch(&bob.addr(), bob.engine.cursor()).pop().unwrap();
        let r = bob.engine.receive(&env, s.time);
        assert!(matches!(r, Err(EngineError::Invalid(_))), "case {i}: {r:?}");
    }
    assert!(matches!(bob.engine.send_text(&conv, "   ", None, 0), Err(EngineError::Empty)));
    let long = "x".repeat(qpq_core::MAX_TEXT_BYTES + 1);
    assert!(matches!(bob.engine.send_text(&conv, &long, None, 0), Err(EngineError::TooLong { .. })));
    // The queue still works.
    alice.send(&mut s, &conv, "still fine");
    bob.sync(&mut s);
    assert_eq!(bob.texts(&conv), vec!["still fine"]);
}

#[test]
fn key_packages_of_unknown_or_mismatched_devices_are_refused() {
    let mut s = SimServer::default();
    let mut alice = SimClient::new(&mut s, "alice", 1);
    let bob = SimClient::new(&mut s, "bob", 2);
    let mallory = SimClient::new(&mut s, "mallory", 3);
    let conv = alice.start(&mut s, ConversationKind::Direct, "", &[]);
    // Not yet learned.
    let pk = s.claim(&bob.user(), &alice.addr());
    assert!(matches!(alice.engine.add_members(&conv, pk.clone()), Err(EngineError::Unverified(_))));
    // A package of Mallory presented as Bob's.
    alice.learn(&s, &bob.user());
    let mut forged = s.claim(&mallory.user(), &alice.addr());
    forged[0].user = bob.user();
    forged[0].device = bob.engine.device_id();
    assert!(matches!(alice.engine.add_members(&conv, forged), Err(EngineError::Unverified(_))));
    alice.engine.add_members(&conv, pk).unwrap();
}

#[test]
fn key_update_is_a_commit_of_its_own_that_races_like_membership_changes() {
    let mut s = SimServer::default();
    let mut alice = SimClient::new(&mut s, "alice", 1);
    let mut bob = SimClient::new(&mut s, "bob", 2);
    let conv = alice.start(&mut s, ConversationKind::Group, "keys", &[&bob]);
    bob.sync(&mut s);
    let epoch = |c: &SimClient| c.engine.conversation(&conv).unwrap().epoch;
    assert_eq!((epoch(&alice), epoch(&bob)), (1, 1));
    let before = epoch_auths(&[&alice, &bob], &conv);

    // A lone update: a commit with no proposals, accepted, processed by the other member.
    alice.engine.update_keys(&conv).unwrap();
    alice.persist();
    let out = alice.engine.next_outbound(s.time).unwrap();
    match &out.op {
        qpq_core::OutboundOp::Commit { epoch, welcome, add, remove, .. } => {
            assert_eq!(*epoch, 1);
            assert!(welcome.is_empty() && add.is_empty() && remove.is_empty());
        }
        other => panic!("expected a commit, got {other:?}"),
    }
    let r = s.handle(&alice.addr(), &out).unwrap();
    alice.engine.outbound_result(out.id, r, s.time);
    alice.persist();
    bob.sync(&mut s);
    assert_eq!((epoch(&alice), epoch(&bob)), (2, 2));
    let after = epoch_auths(&[&alice, &bob], &conv);
    assert_eq!(after[0], after[1]);
    assert_ne!(after[0], before[0]);
    // No system entry for a key update, and messages flow in the new epoch.
    assert!(matches!(bob.engine.history(&conv).last().unwrap().content, Content::System(SystemEvent::Joined)));
    bob.send(&mut s, &conv, "after the update");
    alice.sync(&mut s);
    assert_eq!(alice.texts(&conv), vec!["after the update"]);

    // Both update at once: one commit wins, the other is rebuilt on top of it.
    alice.engine.update_keys(&conv).unwrap();
    bob.engine.update_keys(&conv).unwrap();
    alice.pump(&mut s);
    bob.pump(&mut s);
    assert_eq!(bob.engine.outbox_len(), 1, "bob's refused update waits for the winning commit");
    bob.sync(&mut s);
    bob.pump(&mut s);
    alice.sync(&mut s);
    assert_eq!((epoch(&alice), epoch(&bob)), (4, 4));
    let a = epoch_auths(&[&alice, &bob], &conv);
    assert_eq!(a[0], a[1]);
    assert_eq!(alice.engine.outbox_len() + bob.engine.outbox_len(), 0);

    // Removed members cannot update.
    alice.engine.remove_members(&conv, vec![bob.user()]).unwrap();
    alice.pump(&mut s);
    bob.sync(&mut s);
    assert_eq!(bob.engine.update_keys(&conv), Err(EngineError::NotActive));
}

#[test]
fn a_removed_member_can_be_added_again() {
    let mut s = SimServer::default();
    let mut alice = SimClient::new(&mut s, "alice", 1);
    let mut bob = SimClient::new(&mut s, "bob", 2);
    let conv = alice.start(&mut s, ConversationKind::Group, "again", &[&bob]);
    bob.sync(&mut s);
    alice.send(&mut s, &conv, "first time");
    alice.engine.remove_members(&conv, vec![bob.user()]).unwrap();
    alice.pump(&mut s);
    bob.sync(&mut s);
    assert!(!bob.engine.conversation(&conv).unwrap().active);

    // Bob still holds the group he was removed from; the Welcome to it must replace it.
    alice.add(&mut s, &conv, &[&bob]);
    alice.pump(&mut s);
    let welcome = s.fetch(&bob.addr(), bob.engine.cursor()).pop().unwrap();
    assert_eq!(welcome.kind, EnvelopeKind::Welcome);
    assert_eq!(bob.engine.receive(&welcome, s.time), Ok(()));
    bob.persist();
    let c = bob.engine.conversation(&conv).unwrap();
    assert!(c.active);
    assert_eq!(c.epoch, alice.engine.conversation(&conv).unwrap().epoch);
    assert_eq!(epoch_auths(&[&alice, &bob], &conv)[0], epoch_auths(&[&alice, &bob], &conv)[1]);
    alice.send(&mut s, &conv, "second time");
    bob.sync(&mut s);
    // The history he had is kept; the new message follows it.
    assert_eq!(bob.texts(&conv), vec!["first time", "second time"]);
    bob.reload();
    bob.send(&mut s, &conv, "back");
    alice.sync(&mut s);
    assert_eq!(alice.texts(&conv).last().unwrap(), "back");
}

#[test]
fn a_failed_membership_change_does_not_hold_back_the_messages_behind_it() {
    let mut s = SimServer::default();
    let mut alice = SimClient::new(&mut s, "alice", 1);
    let mut bob = SimClient::new(&mut s, "bob", 2);
    let carol = SimClient::new(&mut s, "carol", 3);
    let conv = alice.start(&mut s, ConversationKind::Group, "g", &[&bob, &carol]);
    alice.make_admin(&mut s, &conv, &bob.user());
    bob.sync(&mut s);
    // Both remove Carol; Bob's commit wins, Alice's is refused for its stale epoch.
    bob.engine.remove_members(&conv, vec![carol.user()]).unwrap();
    alice.engine.remove_members(&conv, vec![carol.user()]).unwrap();
    bob.pump(&mut s);
    alice.pump(&mut s);
    alice.engine.send_text(&conv, "behind the removal", None, s.time).unwrap();
    alice.persist();
    alice.sync(&mut s);
    // Rebuilt after Bob's commit, Alice's removal has nothing left to do and is dropped; the
    // text behind it goes out in the same pass.
    let out = alice.engine.next_outbound(s.time).expect("the text is ready");
    assert!(matches!(out.op, qpq_core::OutboundOp::Enqueue { .. }), "{out:?}");
    let r = s.handle(&alice.addr(), &out).unwrap();
    alice.engine.outbound_result(out.id, r, s.time);
    bob.sync(&mut s);
    assert_eq!(bob.texts(&conv), vec!["behind the removal"]);
}

#[test]
fn only_admins_manage_a_group_and_the_last_admin_hands_over_when_leaving() {
    let mut s = SimServer::default();
    let mut alice = SimClient::new(&mut s, "alice", 1);
    let mut bob = SimClient::new(&mut s, "bob", 2);
    let mut carol = SimClient::new(&mut s, "carol", 3);
    let conv = alice.start(&mut s, ConversationKind::Group, "roles", &[&bob, &carol]);
    bob.sync(&mut s);
    carol.sync(&mut s);
    for c in [&alice, &bob, &carol] {
        assert_eq!(c.engine.conversation(&conv).unwrap().admins, Some(vec![alice.user()]), "the creator is admin");
    }
    assert!(alice.engine.is_admin(&conv) && !bob.engine.is_admin(&conv));
    assert!(matches!(bob.engine.remove_members(&conv, vec![carol.user()]), Err(EngineError::NotAdmin(_))));
    assert!(matches!(bob.engine.set_disappearing(&conv, 60), Err(EngineError::NotAdmin(_))));
    assert!(matches!(bob.engine.set_admin(&conv, &bob.user(), true), Err(EngineError::NotAdmin(_))));
    assert!(matches!(alice.engine.set_admin(&conv, &alice.user(), false), Err(EngineError::BadMembers(_))), "one admin stays");

    // Alice, the only admin, leaves: Bob, the member of the longest standing after her, is
    // made admin first, and takes her out.
    alice.engine.leave_conversation(&conv, qpq_core::LeaveReason::Left, s.time).unwrap();
    alice.persist();
    alice.pump(&mut s);
    bob.sync(&mut s);
    bob.pump(&mut s);
    carol.sync(&mut s);
    for c in [&bob, &carol] {
        let view = c.engine.conversation(&conv).unwrap();
        assert_eq!(view.admins, Some(vec![bob.user()]), "{}", c.user());
        assert_eq!(view.members, vec![bob.user(), carol.user()], "{}", c.user());
    }
    let auths = epoch_auths(&[&bob, &carol], &conv);
    assert_eq!(auths[0], auths[1]);
    assert!(bob.engine.is_admin(&conv) && !carol.engine.is_admin(&conv));
}
