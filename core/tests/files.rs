//! File messages in the engine: the reference (blob, key, hash, size, name, type) reaches every
//! member intact, survives a reload, and a bad reference is refused before anything is sent.

mod support;

use qpq_core::{Content, ConversationKind, EngineError, FileRef};
use support::{SimClient, SimServer};

fn photo() -> FileRef {
    FileRef {
        blob: [7; 16],
        key: [8; 32],
        sha256: [9; 32],
        size: 3_000_000,
        chunk_size: 256 * 1024,
        name: "beach <1>.jpg".into(),
        mime: "image/jpeg".into(),
    }
}

#[test]
fn a_file_reference_reaches_every_member_and_survives_a_reload() {
    let mut s = SimServer::default();
    let mut alice = SimClient::new(&mut s, "alice", 1);
    let mut bob = SimClient::new(&mut s, "bob", 2);
    let mut carol = SimClient::new(&mut s, "carol", 3);
    let conv = alice.start(&mut s, ConversationKind::Group, "Trip", &[&bob, &carol]);
    bob.sync(&mut s);
    carol.sync(&mut s);

    let id = alice.engine.send_file(&conv, photo(), s.time).unwrap();
    alice.persist();
    alice.pump(&mut s);
    for c in [&mut bob, &mut carol] {
        c.sync(&mut s);
        c.reload();
        let m = c.engine.message_by_id(&conv, &id).expect("the file message arrived");
        assert_eq!(m.content, Content::File { file: photo() }, "{} has the same reference", c.engine.user());
        assert!(!m.outgoing);
    }
    let mine = alice.engine.message_by_id(&conv, &id).unwrap();
    assert_eq!(mine.content, Content::File { file: photo() });
}

#[test]
fn a_bad_file_reference_is_refused_before_sending() {
    let mut s = SimServer::default();
    let mut alice = SimClient::new(&mut s, "alice", 1);
    let bob = SimClient::new(&mut s, "bob", 2);
    let conv = alice.start(&mut s, ConversationKind::Direct, "", &[&bob]);
    let before = alice.engine.outbox_len();
    let mut f = photo();
    f.chunk_size = 0;
    assert!(matches!(alice.engine.send_file(&conv, f, s.time), Err(EngineError::Invalid(_))));
    let mut f = photo();
    f.name = "x".repeat(2000);
    assert!(matches!(alice.engine.send_file(&conv, f, s.time), Err(EngineError::TooLong { .. })));
    assert_eq!(alice.engine.outbox_len(), before, "nothing queued");
}
