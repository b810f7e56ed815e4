//! Reactions, edits, deletes, replies, typing, read receipts, the disappearing-message timer
//! and leaving, between simulated clients on a simulated delivery service with a virtual clock.

mod support;

use qpq_core::{Body, Content, ConversationKind, EngineError, LeaveReason, MessageId, SystemEvent};
use qpq_types::ChannelId;
use support::{SimClient, SimServer};

/// Processes what is queued for `c`, returning each envelope's outcome.
fn sync_results(c: &mut SimClient, s: &SimServer) -> Vec<Result<(), EngineError>> {
    let envs = s.fetch(&c.addr(), c.engine.cursor());
    let mut out = Vec::new();
    for e in envs {
        out.push(c.engine.receive(&e, s.time));
        c.persist();
    }
    out
}

fn last_id(c: &SimClient, conv: &ChannelId) -> MessageId {
    c.engine.history(conv).iter().rev().find(|m| m.is_content()).expect("a message").id
}

fn notices(c: &SimClient, conv: &ChannelId) -> Vec<String> {
    c.engine
        .history(conv)
        .iter()
        .filter_map(|m| match &m.content {
            Content::System(SystemEvent::Undecryptable(why)) => Some(why.clone()),
            _ => None,
        })
        .collect()
}

fn group3(s: &mut SimServer) -> (SimClient, SimClient, SimClient, ChannelId) {
    let mut alice = SimClient::new(s, "alice", 1);
    let mut bob = SimClient::new(s, "bob", 2);
    let mut carol = SimClient::new(s, "carol", 3);
    let conv = alice.start(s, ConversationKind::Group, "Team", &[&bob, &carol]);
    bob.sync(s);
    carol.sync(s);
    (alice, bob, carol, conv)
}

#[test]
fn reactions_edits_deletes_and_replies_reach_everyone() {
    let mut s = SimServer::default();
    let (mut alice, mut bob, mut carol, conv) = group3(&mut s);
    alice.send(&mut s, &conv, "lunch at noon?");
    let m = last_id(&alice, &conv);
    bob.sync(&mut s);
    carol.sync(&mut s);

    // Reactions from two people, one taken back.
    bob.engine.react(&conv, m, "👍", false, s.time).unwrap();
    bob.persist();
    bob.pump(&mut s);
    carol.engine.react(&conv, m, "👍", false, s.time).unwrap();
    carol.engine.react(&conv, m, "🎉", false, s.time).unwrap();
    carol.engine.react(&conv, m, "🎉", true, s.time).unwrap();
    carol.persist();
    carol.pump(&mut s);
    let both = vec![bob.user(), carol.user()];
    for c in [&mut alice, &mut bob, &mut carol] {
        c.sync(&mut s);
        let msg = c.engine.message_by_id(&conv, &m).unwrap();
        assert_eq!(msg.reactions.len(), 1, "{}: only 👍 remains", c.user());
        assert_eq!(msg.reactions["👍"], both);
    }

    // Bob replies quoting Alice's message.
    bob.engine.send_text(&conv, "yes", Some(m), s.time).unwrap();
    bob.persist();
    bob.pump(&mut s);
    alice.sync(&mut s);
    let reply = alice.engine.history(&conv).last().unwrap();
    assert_eq!(reply.content, Content::Text { text: "yes".into(), reply_to: Some(m) });
    assert!(alice.engine.message_by_id(&conv, &m).is_some(), "the quoted message is found by id");

    // Alice edits, then deletes her message.
    alice.engine.edit_message(&conv, m, "lunch at one?", s.time).unwrap();
    alice.persist();
    alice.pump(&mut s);
    for c in [&mut bob, &mut carol] {
        c.sync(&mut s);
        let msg = c.engine.message_by_id(&conv, &m).unwrap();
        assert_eq!(msg.content, Content::Text { text: "lunch at one?".into(), reply_to: None });
        assert!(msg.edited);
    }
    alice.engine.delete_message(&conv, m, s.time).unwrap();
    alice.persist();
    alice.pump(&mut s);
    for c in [&mut alice, &mut bob, &mut carol] {
        c.sync(&mut s);
        let msg = c.engine.message_by_id(&conv, &m).unwrap();
        assert_eq!(msg.content, Content::Deleted, "{} shows it deleted", c.user());
        assert!(msg.reactions.is_empty());
        assert!(notices(c, &conv).is_empty());
    }
    // The deletion survives a reload (it was stored, not only shown).
    bob.reload();
    assert_eq!(bob.engine.message_by_id(&conv, &m).unwrap().content, Content::Deleted);
}

#[test]
fn changing_someone_elses_message_is_refused_and_changes_nothing() {
    let mut s = SimServer::default();
    let (mut alice, mut bob, mut carol, conv) = group3(&mut s);
    alice.send(&mut s, &conv, "mine");
    let m = last_id(&alice, &conv);
    bob.sync(&mut s);
    carol.sync(&mut s);

    // Bob's own engine refuses with typed errors.
    assert_eq!(bob.engine.edit_message(&conv, m, "hacked", s.time), Err(EngineError::NotYours));
    assert_eq!(bob.engine.delete_message(&conv, m, s.time), Err(EngineError::NotYours));
    let nowhere = MessageId([0xAB; 16]);
    assert_eq!(bob.engine.react(&conv, nowhere, "👍", false, s.time), Err(EngineError::NoSuchMessage));
    assert_eq!(bob.engine.edit_message(&conv, nowhere, "x", s.time), Err(EngineError::NoSuchMessage));
    assert!(matches!(bob.engine.react(&conv, m, "", false, s.time), Err(EngineError::BadValue(_))));
    assert_eq!(bob.engine.outbox_len(), 0, "nothing was queued");

    // A hostile client sends them anyway: receivers ignore each with a reason.
    bob.engine.send_unchecked(&conv, Body::Edit { target: m, text: "hacked".into() }, s.time).unwrap();
    bob.engine.send_unchecked(&conv, Body::Delete { target: m }, s.time).unwrap();
    bob.engine.send_unchecked(&conv, Body::Reaction { target: nowhere, emoji: "👍".into(), remove: false }, s.time).unwrap();
    bob.persist();
    bob.pump(&mut s);
    let results = sync_results(&mut carol, &s);
    assert_eq!(
        results[..3],
        vec![
            Err(EngineError::Ignored("an edit of someone else's message".into())),
            Err(EngineError::Ignored("a delete of someone else's message".into())),
            Err(EngineError::Ignored("a reaction to a message that does not exist".into())),
        ]
    );
    assert!(results[3..].iter().all(Result::is_ok), "then Bob's delivery receipt");
    for c in [&mut alice, &mut carol] {
        c.sync(&mut s);
        let msg = c.engine.message_by_id(&conv, &m).unwrap();
        assert_eq!(msg.content, Content::Text { text: "mine".into(), reply_to: None });
        assert!(!msg.edited);
        assert!(notices(c, &conv).is_empty(), "ignored input shows no scary notice");
    }
    // The queue moved on: a later message still arrives.
    bob.send(&mut s, &conv, "sorry");
    carol.sync(&mut s);
    assert_eq!(carol.texts(&conv), vec!["mine", "sorry"]);
}

#[test]
fn a_newer_kind_shows_as_unsupported_not_an_error() {
    let mut s = SimServer::default();
    let (mut alice, mut bob, _carol, conv) = group3(&mut s);
    alice.engine.send_unchecked(&conv, Body::Unsupported { kind: 99 }, s.time).unwrap();
    alice.persist();
    alice.pump(&mut s);
    assert_eq!(sync_results(&mut bob, &s), vec![Ok(())]);
    assert_eq!(bob.engine.history(&conv).last().unwrap().content, Content::Unsupported { kind: 99 });
}

#[test]
fn read_receipts_direct_and_group() {
    let mut s = SimServer::default();
    let mut alice = SimClient::new(&mut s, "alice", 1);
    let mut bob = SimClient::new(&mut s, "bob", 2);
    let conv = alice.start(&mut s, ConversationKind::Direct, "", &[&bob]);
    bob.sync(&mut s);
    alice.send(&mut s, &conv, "did you read this?");
    let m = last_id(&alice, &conv);
    bob.sync(&mut s);
    bob.pump(&mut s); // delivery receipt
    alice.sync(&mut s);
    assert!(alice.engine.message_by_id(&conv, &m).unwrap().read_by.is_empty());
    bob.engine.mark_read(&conv);
    bob.persist();
    bob.pump(&mut s);
    alice.sync(&mut s);
    assert_eq!(alice.engine.message_by_id(&conv, &m).unwrap().read_by, vec![bob.user()]);
    // Marking read again sends nothing new.
    bob.engine.mark_read(&conv);
    assert_eq!(bob.engine.next_outbound(s.time), None);

    let mut s = SimServer::default();
    let (mut alice, mut bob, mut carol, conv) = group3(&mut s);
    alice.send(&mut s, &conv, "group news");
    let m = last_id(&alice, &conv);
    for c in [&mut bob, &mut carol] {
        c.sync(&mut s);
    }
    carol.engine.mark_read(&conv);
    carol.persist();
    carol.pump(&mut s);
    alice.sync(&mut s);
    assert_eq!(alice.engine.message_by_id(&conv, &m).unwrap().read_by, vec![carol.user()]);
    bob.engine.mark_read(&conv);
    bob.persist();
    bob.pump(&mut s);
    alice.sync(&mut s);
    let msg = alice.engine.message_by_id(&conv, &m).unwrap();
    assert_eq!(msg.read_by.len(), 2);
    assert_eq!(msg.status, qpq_core::Status::Delivered, "read implies delivered");
}

#[test]
fn typing_starts_stops_and_times_out() {
    let mut s = SimServer::default();
    let (mut alice, mut bob, _carol, conv) = group3(&mut s);
    bob.engine.set_typing(&conv, true, s.time).unwrap();
    bob.persist();
    bob.pump(&mut s);
    alice.sync(&mut s);
    assert_eq!(alice.engine.typing(&conv, s.time), vec![bob.user()]);
    assert!(alice.engine.drain_events().contains(&qpq_core::Event::TypingChanged(conv.clone())));
    // Without renewal it lapses.
    assert!(alice.engine.typing(&conv, s.time + qpq_core::TYPING_TIMEOUT_MS + 1).is_empty());
    // A message from Bob ends it; so does an explicit stop.
    bob.send(&mut s, &conv, "done typing");
    alice.sync(&mut s);
    assert!(alice.engine.typing(&conv, s.time).is_empty());
    bob.engine.set_typing(&conv, true, s.time).unwrap();
    bob.engine.set_typing(&conv, false, s.time).unwrap();
    bob.persist();
    bob.pump(&mut s);
    alice.sync(&mut s);
    assert!(alice.engine.typing(&conv, s.time).is_empty());
    // A typing start that sat in the queue too long is ignored.
    bob.engine.set_typing(&conv, true, s.time).unwrap();
    bob.persist();
    bob.pump(&mut s);
    s.time += qpq_core::TYPING_TIMEOUT_MS * 2;
    alice.sync(&mut s);
    assert!(alice.engine.typing(&conv, s.time).is_empty());
}

#[test]
fn disappearing_messages_expire_everywhere_on_a_simulated_clock() {
    let mut s = SimServer::default();
    let (mut alice, mut bob, mut carol, conv) = group3(&mut s);
    alice.send(&mut s, &conv, "before the timer");
    // Only admins change the timer: Alice, the creator, makes Bob one.
    assert!(matches!(bob.engine.set_disappearing(&conv, 60), Err(EngineError::NotAdmin(_))));
    alice.make_admin(&mut s, &conv, &bob.user());
    bob.sync(&mut s);
    carol.sync(&mut s);
    assert!(matches!(bob.engine.set_disappearing(&conv, qpq_core::MAX_DISAPPEAR_SECS + 1), Err(EngineError::BadValue(_))));

    // Bob (not the creator) sets a one-minute timer; everyone agrees and sees the change.
    bob.sync(&mut s);
    bob.engine.set_disappearing(&conv, 60).unwrap();
    bob.persist();
    bob.pump(&mut s);
    assert!(notices(&bob, &conv).is_empty(), "{:?}", notices(&bob, &conv));
    assert_eq!(bob.engine.outbox_len(), 0);
    let bob_id = bob.user();
    for c in [&mut alice, &mut bob, &mut carol] {
        c.sync(&mut s);
        assert_eq!(c.engine.conversation(&conv).unwrap().disappear_secs, 60, "{} {:?}", c.user(), notices(c, &conv));
        let announced = c.engine.history(&conv).iter().any(|m| {
            m.sender == bob_id && m.content == Content::System(SystemEvent::TimerChanged(60))
        });
        assert!(announced, "{} shows who set the timer", c.user());
    }
    let auths: Vec<_> = [&alice, &bob, &carol].iter().map(|c| c.engine.epoch_authenticator(&conv).unwrap()).collect();
    assert!(auths.windows(2).all(|w| w[0] == w[1]));

    s.time = 1_000_000;
    alice.send(&mut s, &conv, "this one vanishes");
    assert_eq!(s.enqueue_ttls.last(), Some(&60), "the server is told to drop undelivered copies");
    let m = last_id(&alice, &conv);
    for c in [&mut bob, &mut carol] {
        c.sync(&mut s);
    }
    let sent = alice.engine.message_by_id(&conv, &m).unwrap().expires_at.unwrap();
    let got = bob.engine.message_by_id(&conv, &m).unwrap().clone();
    assert_eq!(got.expires_at, Some(got.server_time + 60_000));
    assert!(sent.abs_diff(got.expires_at.unwrap()) < 1_000);
    let before_timer = alice.engine.history(&conv).iter().find(|m| m.content == Content::Text { text: "before the timer".into(), reply_to: None }).unwrap();
    assert_eq!(before_timer.expires_at, None, "messages from before the timer stay");

    // Not yet…
    for c in [&mut alice, &mut bob, &mut carol] {
        assert_eq!(c.engine.expire(got.server_time + 59_000), 0);
    }
    // …then gone from memory and from storage on every device.
    for c in [&mut alice, &mut bob, &mut carol] {
        let at = c.engine.next_expiry().unwrap();
        assert_eq!(c.engine.expire(at), 1, "{}", c.user());
        let ev = c.engine.drain_events();
        assert!(ev.iter().any(|e| matches!(e, qpq_core::Event::MessageRemoved { .. })));
        c.persist();
        assert!(c.engine.message_by_id(&conv, &m).is_none());
        assert_eq!(c.texts(&conv), vec!["before the timer"]);
        c.reload();
        assert_eq!(c.texts(&conv), vec!["before the timer"], "{} after reload", c.user());
        assert_eq!(c.engine.next_expiry(), None);
    }

    // History keeps working after the gap; turning the timer off is announced too.
    alice.engine.set_disappearing(&conv, 0).unwrap();
    alice.persist();
    alice.pump(&mut s);
    carol.sync(&mut s);
    bob.sync(&mut s);
    alice.send(&mut s, &conv, "stays");
    bob.sync(&mut s);
    let last = bob.engine.history(&conv).last().unwrap();
    assert_eq!(last.expires_at, None);
    assert_eq!(bob.engine.message(&conv, last.index).unwrap().id, last.id);
    assert!(bob.engine.history(&conv).iter().any(|m| m.content == Content::System(SystemEvent::TimerChanged(0))));
    assert_eq!(s.enqueue_ttls.last(), Some(&0));
}

#[test]
fn a_member_who_leaves_is_removed_once_and_everyone_sees_it() {
    let mut s = SimServer::default();
    let (mut alice, mut bob, mut carol, conv) = group3(&mut s);
    carol.engine.leave_conversation(&conv, LeaveReason::Left, s.time).unwrap();
    carol.persist();
    carol.pump(&mut s);
    assert!(!carol.engine.conversation(&conv).unwrap().active);
    assert_eq!(carol.engine.send_text(&conv, "still here?", None, s.time), Err(EngineError::NotActive));

    // Both remaining members queue the removal; one commit wins, the other is dropped quietly.
    alice.sync(&mut s);
    bob.sync(&mut s);
    alice.pump(&mut s);
    bob.pump(&mut s);
    bob.sync(&mut s);
    bob.pump(&mut s);
    alice.sync(&mut s);
    for c in [&alice, &bob] {
        assert_eq!(c.engine.conversation(&conv).unwrap().members, vec![alice.user(), bob.user()]);
        assert!(c.engine.history(&conv).iter().any(|m| m.sender == carol.user() && m.content == Content::System(SystemEvent::Left)));
        assert!(notices(c, &conv).is_empty(), "{}: {:?}", c.user(), notices(c, &conv));
        assert_eq!(c.engine.outbox_len(), 0);
    }
    assert_eq!(s.channels[&conv].members.len(), 2, "the server no longer routes to her");
    assert_eq!(alice.engine.epoch_authenticator(&conv), bob.engine.epoch_authenticator(&conv));
    alice.send(&mut s, &conv, "just us");
    bob.sync(&mut s);
    assert_eq!(bob.texts(&conv).last().unwrap(), "just us");
}

#[test]
fn a_deleted_account_is_shown_as_deleted() {
    let mut s = SimServer::default();
    let mut alice = SimClient::new(&mut s, "alice", 1);
    let mut bob = SimClient::new(&mut s, "bob", 2);
    let conv = alice.start(&mut s, ConversationKind::Direct, "", &[&bob]);
    bob.sync(&mut s);
    bob.engine.leave_conversation(&conv, LeaveReason::AccountDeleted, s.time).unwrap();
    bob.persist();
    bob.pump(&mut s);
    alice.sync(&mut s);
    alice.pump(&mut s);
    let c = alice.engine.conversation(&conv).unwrap();
    assert_eq!(c.members, vec![alice.user()]);
    assert!(alice
        .engine
        .history(&conv)
        .iter()
        .any(|m| m.sender == bob.user() && m.content == Content::System(SystemEvent::AccountDeleted)));
}
