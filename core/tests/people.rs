//! Contacts, message requests and blocked people, between simulated clients that do not
//! know each other (`strangers`).

mod support;

use qpq_core::{ConversationKind, Engine, Status};
use qpq_types::ChannelId;
use support::{SimClient, SimServer};

fn stranger(s: &mut SimServer, name: &str, seed: u8) -> SimClient {
    let mut c = SimClient::new(s, name, seed);
    c.strangers = true;
    // `new` knew the users registered before; a stranger knows nobody.
    for u in c.engine.contacts() {
        c.engine.remove_contact(&u.user);
    }
    c.persist();
    c
}

/// Carol, whom Alice does not know, starts a chat with Alice and writes `text`.
fn carol_writes(s: &mut SimServer, text: &str) -> (SimClient, SimClient, ChannelId) {
    let mut alice = stranger(s, "alice", 1);
    let mut carol = stranger(s, "carol", 3);
    let conv = carol.start(s, ConversationKind::Direct, "", &[&alice]);
    carol.send(s, &conv, text);
    alice.sync(s);
    (alice, carol, conv)
}

fn status_of_last(c: &SimClient, conv: &ChannelId) -> Status {
    c.engine.history(conv).iter().rev().find(|m| m.is_content()).expect("a message").status.clone()
}

#[test]
fn a_strangers_chat_is_a_request_and_nothing_goes_back_until_it_is_accepted() {
    let mut s = SimServer::default();
    let (mut alice, mut carol, conv) = carol_writes(&mut s, "hello, we have not met");
    let c = alice.engine.conversation(&conv).expect("the request is there");
    assert!(c.request && !c.hidden);
    assert_eq!(c.invited_by.as_ref(), Some(&carol.user()));
    assert_eq!(alice.texts(&conv), ["hello, we have not met"]);
    assert!(carol.engine.is_contact(&alice.user()), "whoever one adds is a contact");
    assert!(!alice.engine.is_contact(&carol.user()));

    // No delivery receipt, no read receipt, no typing.
    alice.engine.mark_read(&conv);
    alice.engine.set_typing(&conv, true, s.time).unwrap();
    assert!(alice.engine.next_outbound(s.time).is_none(), "nothing goes back to a request");
    alice.persist();
    carol.sync(&mut s);
    assert_eq!(status_of_last(&carol, &conv), Status::Sent);
    assert!(carol.engine.history(&conv).iter().all(|m| m.read_by.is_empty()));

    alice.engine.accept_request(&conv, s.time).unwrap();
    alice.persist();
    assert!(!alice.engine.conversation(&conv).unwrap().request);
    assert!(alice.engine.is_contact(&carol.user()), "accepting makes the inviter a contact");
    alice.pump(&mut s);
    carol.sync(&mut s);
    assert_eq!(status_of_last(&carol, &conv), Status::Delivered, "accepting sends the delivery receipts held back");
    assert!(carol.engine.history(&conv).iter().all(|m| m.read_by.is_empty()), "but no read receipt");
    carol.send(&mut s, &conv, "thanks");
    alice.sync(&mut s);
    alice.engine.mark_read(&conv);
    alice.persist();
    alice.pump(&mut s);
    carol.sync(&mut s);
    assert_eq!(status_of_last(&carol, &conv), Status::Delivered, "receipts flow once accepted");
    let last = carol.engine.history(&conv).iter().rev().find(|m| m.is_content()).unwrap().read_by.clone();
    assert_eq!(last, [alice.user()], "and read receipts");

    // The request state survives a reload.
    alice.reload();
    assert!(!alice.engine.conversation(&conv).unwrap().request);
}

#[test]
fn a_contacts_chat_is_no_request_and_writing_in_a_request_accepts_it() {
    let mut s = SimServer::default();
    let mut alice = stranger(&mut s, "alice", 1);
    let mut bob = stranger(&mut s, "bob", 2);
    alice.engine.add_contacts([(bob.user(), 5)]);
    alice.persist();
    let conv = bob.start(&mut s, ConversationKind::Direct, "", &[&alice]);
    bob.send(&mut s, &conv, "hi");
    alice.sync(&mut s);
    assert!(!alice.engine.conversation(&conv).unwrap().request, "a contact's chat is no request");

    let mut dave = stranger(&mut s, "dave", 4);
    let conv2 = dave.start(&mut s, ConversationKind::Group, "Club", &[&alice]);
    alice.sync(&mut s);
    assert!(alice.engine.conversation(&conv2).unwrap().request, "a stranger's group invitation is a request");
    alice.engine.send_text(&conv2, "hello club", None, s.time).unwrap();
    assert!(!alice.engine.conversation(&conv2).unwrap().request, "writing accepts it");
    assert!(alice.engine.is_contact(&dave.user()));
    alice.persist();
    alice.pump(&mut s);
    dave.sync(&mut s);
    assert_eq!(dave.texts(&conv2), ["hello club"]);
}

#[test]
fn a_deleted_request_is_left_and_unlisted_and_a_blocked_ones_comes_back_after_an_unblock() {
    let mut s = SimServer::default();
    let (mut alice, mut carol, conv) = carol_writes(&mut s, "first");
    alice.engine.delete_request(&conv, s.time).unwrap();
    alice.persist();
    let c = alice.engine.conversation(&conv).unwrap();
    assert!(c.hidden && !c.active, "deleted: left and not listed");
    alice.pump(&mut s);
    carol.sync(&mut s);
    carol.pump(&mut s);
    assert!(!carol.engine.conversation(&conv).unwrap().members.contains(&alice.user()), "Carol's side saw her leave");

    // A second chat from Carol: blocked (the node drops what she sends from then on; here
    // the engine puts the request away), then unblocked: her next message brings it back.
    let conv2 = carol.start(&mut s, ConversationKind::Direct, "", &[&alice]);
    carol.send(&mut s, &conv2, "again");
    alice.sync(&mut s);
    assert!(alice.engine.conversation(&conv2).unwrap().request);
    alice.engine.set_blocked(&carol.user(), true);
    assert!(alice.engine.is_blocked(&carol.user()));
    assert!(alice.engine.conversation(&conv2).unwrap().hidden, "blocking puts the request away");
    alice.engine.set_blocked(&carol.user(), false);
    alice.persist();
    carol.send(&mut s, &conv2, "after the unblock");
    alice.sync(&mut s);
    let c = alice.engine.conversation(&conv2).unwrap();
    assert!(!c.hidden && c.request, "back, still a request");
    assert_eq!(alice.texts(&conv2), ["again", "after the unblock"]);
}

#[test]
fn what_a_blocked_member_writes_in_a_group_is_not_shown() {
    let mut s = SimServer::default();
    let mut alice = SimClient::new(&mut s, "alice", 1);
    let mut bob = SimClient::new(&mut s, "bob", 2);
    let mut mallory = SimClient::new(&mut s, "mallory", 3);
    let conv = alice.start(&mut s, ConversationKind::Group, "Team", &[&bob, &mallory]);
    bob.sync(&mut s);
    mallory.sync(&mut s);
    alice.engine.set_blocked_users(vec![mallory.user()]);
    alice.persist();
    mallory.send(&mut s, &conv, "spam");
    bob.send(&mut s, &conv, "real");
    alice.sync(&mut s);
    assert_eq!(alice.texts(&conv), ["real"]);
    bob.sync(&mut s);
    assert_eq!(bob.texts(&conv), ["real", "spam"], "only the blocker hides them");
    alice.reload();
    assert_eq!(alice.engine.blocked_users(), [mallory.user()], "the node's list is kept");
}

#[test]
fn contacts_export_and_import_and_old_state_takes_its_contacts_from_its_conversations() {
    let mut s = SimServer::default();
    let mut alice = stranger(&mut s, "alice", 1);
    let bob = stranger(&mut s, "bob", 2);
    alice.engine.add_contacts([(bob.user(), 42)]);
    let json = qpq_core::encode_contacts(&alice.engine.contacts());
    let back = qpq_core::decode_contacts(&json).unwrap();
    assert_eq!(back, alice.engine.contacts());
    for bad in ["", "{}", "[1,2]", r#"{"format":"quicproquo contacts","version":1,"contacts":[{"user":"<b>x"}]}"#] {
        let e = qpq_core::decode_contacts(bad).unwrap_err();
        assert!(e.to_string().starts_with("this is not a contact list"), "{bad}: {e}");
    }
    let newer = qpq_core::decode_contacts(r#"{"format":"quicproquo contacts","version":2,"contacts":[]}"#).unwrap_err();
    assert!(newer.to_string().contains("newer version"));

    // State written before contacts existed: its meta has no contacts entry.
    let mut carol = stranger(&mut s, "carol", 3);
    let conv = carol.start(&mut s, ConversationKind::Direct, "", &[&alice]);
    carol.persist();
    let mut store = carol.store.clone();
    let meta = store.get_mut(b"meta".as_slice()).unwrap();
    let mut v: serde_json::Value = serde_json::from_slice(meta).unwrap();
    v.as_object_mut().unwrap().remove("contacts");
    *meta = serde_json::to_vec(&v).unwrap();
    let old = Engine::load(store, [9; 32]).unwrap();
    assert!(old.is_contact(&alice.user()), "a member of {conv:?} became a contact at load");
}

#[test]
fn accepting_or_deleting_a_request_on_one_device_does_the_same_on_the_accounts_others() {
    let mut s = SimServer::default();
    let mut phone = stranger(&mut s, "alice", 1);
    let mut laptop = support::link(&mut s, &phone, 9);
    let mut carol = stranger(&mut s, "carol", 3);
    let mut dave = stranger(&mut s, "dave", 4);

    // Carol's chat with a message: accepted on the phone, whose receipts tell the laptop.
    let chat = carol.start(&mut s, ConversationKind::Direct, "", &[&phone]);
    carol.send(&mut s, &chat, "hello alice");
    // An invitation to a group where nobody wrote yet: nothing to acknowledge.
    let quiet = dave.start(&mut s, ConversationKind::Group, "Quiet club", &[&phone]);
    // A third, deleted on the phone.
    let spam = dave.start(&mut s, ConversationKind::Direct, "", &[&phone]);
    dave.send(&mut s, &spam, "buy now");
    phone.sync(&mut s);
    laptop.sync(&mut s);
    for c in [&chat, &quiet, &spam] {
        assert!(phone.engine.conversation(c).unwrap().request && laptop.engine.conversation(c).unwrap().request);
    }

    phone.engine.accept_request(&chat, s.time).unwrap();
    phone.engine.accept_request(&quiet, s.time).unwrap();
    phone.engine.delete_request(&spam, s.time).unwrap();
    phone.persist();
    phone.pump(&mut s);
    dave.sync(&mut s);
    dave.pump(&mut s);
    laptop.sync(&mut s);
    for c in [&chat, &quiet] {
        let on_laptop = laptop.engine.conversation(c).unwrap();
        assert!(!on_laptop.request && !on_laptop.hidden, "accepted on the phone, so on the laptop");
    }
    assert!(laptop.engine.is_contact(&carol.user()) && laptop.engine.is_contact(&dave.user()));
    assert!(laptop.engine.conversation(&spam).unwrap().hidden, "deleted on the phone, unlisted on the laptop");

    // The laptop answers like an accepted conversation: Carol sees her message read.
    laptop.engine.mark_read(&chat);
    laptop.persist();
    laptop.pump(&mut s);
    carol.sync(&mut s);
    let last = carol.engine.history(&chat).iter().rev().find(|m| m.is_content()).unwrap().read_by.clone();
    assert_eq!(last, [phone.user()]);
}
