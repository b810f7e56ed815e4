//! Profiles between simulated clients: a card set on one device reaches the people in its
//! conversations and the account's other devices, a changed one replaces it, a forged or
//! replayed one is not used, and nothing goes to a request before it is accepted.

mod support;

use qpq_core::{ConversationKind, Picture};
use qpq_types::ChannelId;
use support::{link, SimClient, SimServer};

fn png() -> Picture {
    Picture { mime: "image/png".into(), bytes: b"\x89PNG\r\n\x1a\n a very small picture".to_vec() }
}

fn name_at(c: &SimClient, of: &SimClient) -> Option<String> {
    c.engine.display_name(&of.user())
}

/// Alice (with a profile) and Bob in a 1:1.
fn alice_and_bob(s: &mut SimServer) -> (SimClient, SimClient, ChannelId) {
    let mut alice = SimClient::new(s, "alice", 1);
    let mut bob = SimClient::new(s, "bob", 2);
    alice.engine.set_profile("Alice Liddell", "down the rabbit hole", Some(png()), s.time).unwrap();
    alice.persist();
    let conv = alice.start(s, ConversationKind::Direct, "", &[&bob]);
    alice.send(s, &conv, "hello");
    bob.sync(s);
    (alice, bob, conv)
}

#[test]
fn a_profile_reaches_the_people_one_writes_to_and_a_change_replaces_it() {
    let mut s = SimServer::default();
    let (mut alice, mut bob, conv) = alice_and_bob(&mut s);
    let p = bob.engine.profile(&alice.user()).expect("Bob holds Alice's profile").profile.expect("verified");
    assert_eq!((p.name.as_str(), p.status.as_str()), ("Alice Liddell", "down the rabbit hole"));
    assert_eq!(p.picture, Some(png()));
    assert!(!bob.engine.profile(&alice.user()).unwrap().forged);

    // Bob has none; once he sets one, it reaches Alice without him writing a message.
    assert_eq!(name_at(&alice, &bob), None);
    bob.engine.set_profile("Bob", "", None, s.time).unwrap();
    bob.persist();
    bob.pump(&mut s);
    alice.sync(&mut s);
    assert_eq!(name_at(&alice, &bob).as_deref(), Some("Bob"));

    // A change replaces the card; the picture can be taken away.
    s.time += 10;
    alice.engine.set_profile("Alice", "back", None, s.time).unwrap();
    alice.persist();
    alice.pump(&mut s);
    bob.sync(&mut s);
    let p = bob.engine.profile(&alice.user()).unwrap().profile.unwrap();
    assert_eq!((p.name.as_str(), p.status.as_str(), p.picture.is_none()), ("Alice", "back", true));

    // It goes out once per version: another message carries no second copy.
    let before = s.fetch(&bob.addr(), 0).len();
    alice.send(&mut s, &conv, "no profile with this one");
    assert_eq!(s.fetch(&bob.addr(), 0).len(), before + 1);

    // Kept across a reload on both sides.
    bob.reload();
    alice.reload();
    assert_eq!(name_at(&bob, &alice).as_deref(), Some("Alice"));
    assert_eq!(alice.engine.profile(&alice.user()).unwrap().profile.unwrap().status, "back");
}

#[test]
fn a_forged_card_is_not_used_and_a_replayed_old_one_changes_nothing() {
    let mut s = SimServer::default();
    let (mut alice, mut bob, _) = alice_and_bob(&mut s);
    let mut carol = SimClient::new(&mut s, "carol", 3);
    let group = alice.start(&mut s, ConversationKind::Group, "tea party", &[&bob, &carol]);
    alice.send(&mut s, &group, "welcome");
    bob.sync(&mut s);
    carol.sync(&mut s);
    let card = carol.engine.profile_card(&alice.user()).expect("Carol got Alice's card in the group");

    // Carol changes the name inside Alice's card (same length) and forwards it.
    let mut forged = card.clone();
    let at = forged.windows(13).position(|w| w == b"Alice Liddell").expect("the name is in the card");
    forged[at..at + 13].copy_from_slice(b"Mallory Evil!");
    carol.engine.share_profile_card(&group, forged, s.time).unwrap();
    carol.persist();
    carol.pump(&mut s);
    bob.sync(&mut s);
    let held = bob.engine.profile(&alice.user()).unwrap();
    assert!(held.forged, "the forged card is reported");
    assert_eq!(held.profile.unwrap().name, "Alice Liddell", "and not used");

    // A genuine newer card clears the mark; the old genuine one forwarded again changes nothing.
    s.time += 10;
    alice.engine.set_profile("Alice L.", "", None, s.time).unwrap();
    alice.persist();
    alice.pump(&mut s);
    bob.sync(&mut s);
    carol.sync(&mut s);
    assert!(!bob.engine.profile(&alice.user()).unwrap().forged);
    carol.engine.share_profile_card(&group, card, s.time).unwrap();
    carol.persist();
    carol.pump(&mut s);
    bob.sync(&mut s);
    assert_eq!(name_at(&bob, &alice).as_deref(), Some("Alice L."), "an older card does not replace a newer one");

    // Forwarding a card of someone who is not a member is refused at the sender.
    let mut dave = SimClient::new(&mut s, "dave", 4);
    dave.engine.set_profile("Dave", "", None, s.time).unwrap();
    let daves = dave.engine.profile_card(&dave.user()).unwrap();
    assert!(carol.engine.share_profile_card(&group, daves, s.time).is_err());
    assert!(carol.engine.share_profile_card(&group, b"not a card".to_vec(), s.time).is_err());
}

#[test]
fn a_request_gets_no_profile_until_it_is_accepted() {
    let mut s = SimServer::default();
    let mut alice = SimClient::new(&mut s, "alice", 1);
    alice.strangers = true;
    for c in alice.engine.contacts() {
        alice.engine.remove_contact(&c.user);
    }
    alice.engine.set_profile("Alice Liddell", "", None, s.time).unwrap();
    alice.persist();
    let mut carol = SimClient::new(&mut s, "carol", 3);
    let conv = carol.start(&mut s, ConversationKind::Direct, "", &[&alice]);
    carol.send(&mut s, &conv, "hi, we have not met");
    alice.sync(&mut s);
    assert!(alice.engine.conversation(&conv).unwrap().request);
    alice.engine.mark_read(&conv);
    alice.pump(&mut s);
    carol.sync(&mut s);
    assert_eq!(name_at(&carol, &alice), None, "nothing goes back to a request");

    alice.engine.accept_request(&conv, s.time).unwrap();
    alice.persist();
    alice.pump(&mut s);
    carol.sync(&mut s);
    assert_eq!(name_at(&carol, &alice).as_deref(), Some("Alice Liddell"), "accepting shares it");
}

#[test]
fn the_accounts_devices_share_one_profile() {
    let mut s = SimServer::default();
    let (mut alice, mut bob, conv) = alice_and_bob(&mut s);
    let mut laptop = link(&mut s, &alice, 9);
    alice.add(&mut s, &conv, &[&laptop]);
    alice.send(&mut s, &conv, "my laptop is here");
    laptop.sync(&mut s);
    bob.sync(&mut s);
    let own = laptop.engine.profile(&alice.user()).expect("the laptop got the account's card").profile.unwrap();
    assert_eq!(own.name, "Alice Liddell", "a new device of the account gets the card");

    // Changed on the laptop: Bob and Alice's first device take it.
    s.time += 10;
    laptop.engine.set_profile("Alice on a laptop", "", None, s.time).unwrap();
    laptop.persist();
    laptop.pump(&mut s);
    alice.sync(&mut s);
    bob.sync(&mut s);
    assert_eq!(name_at(&bob, &alice).as_deref(), Some("Alice on a laptop"));
    assert_eq!(name_at(&alice, &alice).as_deref(), Some("Alice on a laptop"));
}
