//! History for a newly linked device: exported by one device of the account, put before what
//! the new device received since it joined, numbered again, read, and kept across a reload.

mod support;

use qpq_core::{decode_history, encode_history, ConversationKind};
use support::*;

#[test]
fn a_linked_device_gets_the_history_before_what_it_received_and_keeps_it() {
    let mut s = SimServer::default();
    let mut alice = SimClient::new(&mut s, "alice", 1);
    let mut bob = SimClient::new(&mut s, "bob", 2);
    let conv = alice.start(&mut s, ConversationKind::Direct, "", &[&bob]);
    bob.sync(&mut s);
    alice.send(&mut s, &conv, "one");
    bob.sync(&mut s);
    bob.send(&mut s, &conv, "two");
    alice.sync(&mut s);
    alice.send(&mut s, &conv, "three");
    bob.sync(&mut s);

    let mut laptop = link(&mut s, &alice, 9);
    alice.add(&mut s, &conv, &[&laptop]);
    alice.pump(&mut s);
    laptop.sync(&mut s);
    bob.sync(&mut s);
    bob.send(&mut s, &conv, "four");
    laptop.sync(&mut s);
    alice.sync(&mut s);
    assert_eq!(laptop.texts(&conv), ["four"]);
    let c = laptop.engine.conversation(&conv).unwrap();
    assert!(!c.request, "added by its own account: no request");
    assert!(laptop.engine.is_contact(&bob.user()), "the members of what it joins are its contacts, as the account's");

    // The hand-over travels as bytes (sealed by the shell); what the laptop has is not repeated.
    let bytes = encode_history(alice.engine.export_history(0, 10_000));
    let parts = decode_history(&bytes).unwrap();
    assert_eq!(parts.len(), 1);
    let added = laptop.engine.import_history(parts[0].clone());
    laptop.persist();
    assert_eq!(added, 3, "the three messages people wrote (entries the laptop has are not repeated)");
    assert_eq!(laptop.texts(&conv), ["one", "two", "three", "four"]);
    let h = laptop.engine.history(&conv);
    assert!(h.iter().enumerate().all(|(i, m)| m.index == i as u64), "numbered from the start");
    let mine: Vec<bool> = h.iter().filter(|m| m.is_content()).map(|m| m.outgoing).collect();
    assert_eq!(mine, [true, false, true, false], "Alice's own messages are the laptop's own");
    assert_eq!(laptop.engine.conversation(&conv).unwrap().unread, 1, "only what arrived here is unread");
    assert_eq!(laptop.engine.import_history(parts[0].clone()), 0, "a second import adds nothing");

    // Stored as shown: a reload has the same history, and new messages go on after it.
    laptop.reload();
    assert_eq!(laptop.texts(&conv), ["one", "two", "three", "four"]);
    bob.send(&mut s, &conv, "five");
    laptop.sync(&mut s);
    assert_eq!(laptop.texts(&conv), ["one", "two", "three", "four", "five"]);
    laptop.send(&mut s, &conv, "six");
    bob.sync(&mut s);
    assert_eq!(bob.texts(&conv), ["one", "two", "three", "four", "five", "six"]);
}

#[test]
fn the_export_keeps_the_most_recent_entries_since_a_time() {
    let mut s = SimServer::default();
    let mut alice = SimClient::new(&mut s, "alice", 1);
    let bob = SimClient::new(&mut s, "bob", 2);
    let conv = alice.start(&mut s, ConversationKind::Direct, "", &[&bob]);
    for i in 0..10 {
        s.time = 1_000 * (i + 1);
        alice.send(&mut s, &conv, &format!("m{i}"));
    }
    let texts = |parts: Vec<qpq_core::ConversationHistory>| -> Vec<String> {
        parts
            .into_iter()
            .flat_map(|p| p.messages)
            .filter_map(|m| match m.content {
                qpq_core::Content::Text { text, .. } => Some(text),
                _ => None,
            })
            .collect()
    };
    assert_eq!(texts(alice.engine.export_history(0, 3)), ["m7", "m8", "m9"]);
    assert_eq!(texts(alice.engine.export_history(8_000, 100)), ["m7", "m8", "m9"]);
    assert!(decode_history(b"{\"version\":2,\"conversations\":[]}").is_err());
    assert!(decode_history(b"garbage").is_err());
}

#[test]
fn reading_on_one_device_clears_unread_on_the_others() {
    let mut s = SimServer::default();
    let mut alice = SimClient::new(&mut s, "alice", 1);
    let mut bob = SimClient::new(&mut s, "bob", 2);
    let mut laptop = link(&mut s, &alice, 9);
    let conv = alice.start(&mut s, ConversationKind::Direct, "", &[&bob]);
    alice.add(&mut s, &conv, &[&laptop]);
    alice.pump(&mut s);
    laptop.sync(&mut s);
    bob.sync(&mut s);
    bob.send(&mut s, &conv, "one");
    bob.send(&mut s, &conv, "two");
    alice.sync(&mut s);
    laptop.sync(&mut s);
    let unread = |c: &SimClient| c.engine.conversation(&conv).unwrap().unread;
    assert_eq!((unread(&alice), unread(&laptop)), (2, 2));

    alice.engine.mark_read(&conv);
    alice.persist();
    alice.pump(&mut s);
    laptop.sync(&mut s);
    assert_eq!((unread(&alice), unread(&laptop)), (0, 0), "read on her phone, read on her laptop");

    // What arrives after stays unread on both until one of them reads it.
    bob.send(&mut s, &conv, "three");
    alice.sync(&mut s);
    laptop.sync(&mut s);
    assert_eq!((unread(&alice), unread(&laptop)), (1, 1));
    laptop.engine.mark_read(&conv);
    laptop.persist();
    laptop.pump(&mut s);
    alice.sync(&mut s);
    assert_eq!((unread(&alice), unread(&laptop)), (0, 0));
    // Bob sees each message read once, by Alice.
    bob.sync(&mut s);
    assert!(bob.engine.history(&conv).iter().filter(|m| m.is_content()).all(|m| m.read_by == [alice.user()]));
}
