//! Safety numbers and changed identity keys: both sides see the same number; a verified
//! contact whose key changes is held back from until the new number is verified; an
//! unverified change is a notice, not a dead end; the state survives a reload.

mod support;

use qpq_core::{Content, ConversationKind, EngineError, SystemEvent, Verification};
use qpq_types::ChannelId;
use support::{SimClient, SimServer};

/// Alice and Bob in a 1:1 chat, with one message from Alice read by Bob.
fn chat(server: &mut SimServer) -> (SimClient, SimClient, ChannelId) {
    let mut alice = SimClient::new(server, "alice", 1);
    let mut bob = SimClient::new(server, "bob", 2);
    let conv = alice.start(server, ConversationKind::Direct, "", &[&bob]);
    alice.send(server, &conv, "hello");
    bob.sync(server);
    assert_eq!(bob.texts(&conv), vec!["hello"]);
    (alice, bob, conv)
}

/// Bob's account is deleted and registered again under the same name: a new identity key.
fn bob_registers_again(server: &mut SimServer) -> SimClient {
    SimClient::new(server, "bob", 77)
}

fn changed_notices(c: &SimClient, conv: &ChannelId) -> Vec<bool> {
    c.engine
        .history(conv)
        .iter()
        .filter_map(|m| match m.content {
            Content::System(SystemEvent::SafetyNumberChanged { was_verified }) => Some(was_verified),
            _ => None,
        })
        .collect()
}

#[test]
fn both_sides_see_the_same_safety_number() {
    let mut server = SimServer::default();
    let (alice, bob, _) = chat(&mut server);
    let a = alice.engine.safety_number(&bob.user()).expect("alice knows bob's key");
    let b = bob.engine.safety_number(&alice.user()).expect("bob knows alice's key");
    assert_eq!(a.digits, b.digits);
    assert_eq!(a.digits.len(), qpq_core::SAFETY_NUMBER_DIGITS);
    assert_eq!(a.verification, Verification::Unverified);
    assert!(alice.engine.safety_number(&alice.user()).is_none(), "no safety number with oneself");
}

#[test]
fn a_verified_contact_whose_key_changes_is_not_written_to_until_verified_again() {
    let mut server = SimServer::default();
    let (mut alice, _old_bob, conv) = chat(&mut server);
    let bob = alice.engine.conversation(&conv).unwrap().members.iter().find(|u| u.as_str().starts_with("bob")).cloned().unwrap();
    let first = alice.engine.safety_number(&bob).unwrap();

    // A number other than the one on screen is not marked.
    let mut wrong = first.digits.clone();
    wrong.replace_range(0..1, if wrong.starts_with('0') { "1" } else { "0" });
    assert!(matches!(alice.engine.mark_verified(&bob, &wrong), Err(EngineError::BadValue(_))));
    assert_eq!(alice.engine.verification(&bob), Verification::Unverified);
    alice.engine.mark_verified(&bob, &first.grouped()).unwrap();
    alice.persist();
    assert_eq!(alice.engine.verification(&bob), Verification::Verified);

    let mut new_bob = bob_registers_again(&mut server);
    alice.learn(&server, &bob);
    assert_eq!(alice.engine.verification(&bob), Verification::ChangedSinceVerified);
    assert_eq!(changed_notices(&alice, &conv), vec![true], "the chat says the number changed");
    let second = alice.engine.safety_number(&bob).unwrap();
    assert_ne!(first.digits, second.digits);

    // Nothing goes to Bob: not in the old chat, not in a new one.
    let refused = alice.engine.send_text(&conv, "are you still you?", None, server.time);
    assert!(matches!(refused, Err(EngineError::SafetyNumberChanged { ref user }) if *user == bob), "{refused:?}");
    assert!(refused.unwrap_err().to_string().contains("Safety number"));
    let new_conv = alice.engine.create_conversation(ConversationKind::Direct, "", server.time).unwrap();
    let pkgs = server.claim(&bob, &alice.addr());
    assert!(matches!(alice.engine.add_members(&new_conv, pkgs), Err(EngineError::SafetyNumberChanged { .. })));
    alice.persist();

    // The state survives a reload.
    alice.reload();
    assert_eq!(alice.engine.verification(&bob), Verification::ChangedSinceVerified);

    // Alice compares the new number and verifies it: she can write to the new Bob again.
    alice.engine.mark_verified(&bob, &second.digits).unwrap();
    alice.persist();
    assert_eq!(alice.engine.verification(&bob), Verification::Verified);
    let pkgs = server.claim(&bob, &alice.addr());
    alice.engine.add_members(&new_conv, pkgs).unwrap();
    alice.persist();
    alice.pump(&mut server);
    alice.send(&mut server, &new_conv, "welcome back");
    new_bob.sync(&mut server);
    assert_eq!(new_bob.texts(&new_conv), vec!["welcome back"]);
    assert_eq!(new_bob.engine.safety_number(&alice.user()).unwrap().digits, second.digits);
}

#[test]
fn an_unverified_change_is_a_notice_and_the_chat_goes_on() {
    let mut server = SimServer::default();
    let (mut alice, _old_bob, conv) = chat(&mut server);
    let bob = alice.engine.conversation(&conv).unwrap().members.iter().find(|u| u.as_str().starts_with("bob")).cloned().unwrap();
    let _new_bob = bob_registers_again(&mut server);
    alice.learn(&server, &bob);
    assert_eq!(alice.engine.verification(&bob), Verification::Unverified);
    assert_eq!(changed_notices(&alice, &conv), vec![false]);
    alice.engine.send_text(&conv, "still here", None, server.time).expect("an unverified change does not block");
    // Learning the same key again adds no second notice.
    alice.learn(&server, &bob);
    assert_eq!(changed_notices(&alice, &conv), vec![false]);
}

#[test]
fn a_verification_can_be_taken_back_and_survives_a_reload() {
    let mut server = SimServer::default();
    let (mut alice, bob, _) = chat(&mut server);
    let n = alice.engine.safety_number(&bob.user()).unwrap();
    alice.engine.mark_verified(&bob.user(), &n.digits).unwrap();
    alice.persist();
    alice.reload();
    assert_eq!(alice.engine.verification(&bob.user()), Verification::Verified);
    alice.engine.clear_verified(&bob.user());
    alice.persist();
    alice.reload();
    assert_eq!(alice.engine.verification(&bob.user()), Verification::Unverified);
}

#[test]
fn another_identity_key_for_ones_own_account_is_refused() {
    let mut server = SimServer::default();
    let mut alice = SimClient::new(&mut server, "alice", 1);
    let (_, recs) = server.identities.get(&alice.user()).unwrap().clone();
    let mut other_key = alice.engine.identity_public_key();
    other_key[0] ^= 1;
    let r = alice.engine.learn_devices(&alice.user(), &other_key, &recs, server.time);
    assert!(matches!(r, Err(EngineError::IdentityKeyChanged { .. })), "{r:?}");
}
