//! Files end to end with native clients and a real node: a file goes and comes back whole;
//! transfers continue after the node restarts; damaged, missing, misplaced and oversize
//! chunks and files each get a clear outcome, and the conversation goes on.

mod support;

use std::cell::RefCell;
use std::rc::Rc;

use futures::future::{FutureExt, LocalBoxFuture};
use qpq_client::files::{self, Cancel, FileSink, FileSource, CHUNK_BYTES};
use qpq_client::ClientError;
use qpq_core::{Content, FileRef};
use qpq_native::NativeClient;
use qpq_proto::ChannelId;
use sha2::{Digest, Sha256};
use support::*;

/// A file in memory.
struct Bytes(Vec<u8>);

impl FileSource for Bytes {
    fn size(&self) -> u64 {
        self.0.len() as u64
    }
    fn read(&self, offset: u64, len: u32) -> LocalBoxFuture<'_, Result<Vec<u8>, String>> {
        let end = (offset as usize + len as usize).min(self.0.len());
        let part = self.0[offset as usize..end].to_vec();
        async move { Ok(part) }.boxed_local()
    }
}

/// A download target in memory.
#[derive(Default)]
struct Sink(RefCell<Vec<u8>>);

impl FileSink for Sink {
    fn write(&self, offset: u64, data: Vec<u8>) -> LocalBoxFuture<'_, Result<(), String>> {
        let mut v = self.0.borrow_mut();
        v.truncate(offset as usize);
        v.extend_from_slice(&data);
        async { Ok(()) }.boxed_local()
    }
    fn read(&self, offset: u64, len: u32) -> LocalBoxFuture<'_, Result<Vec<u8>, String>> {
        let v = self.0.borrow();
        let part = v[offset as usize..(offset as usize + len as usize).min(v.len())].to_vec();
        async move { Ok(part) }.boxed_local()
    }
}

fn random_bytes(n: usize, seed: u8) -> Vec<u8> {
    // Not compressible, not all equal: a running hash.
    let mut out = Vec::with_capacity(n + 32);
    let mut block: [u8; 32] = Sha256::digest([seed]).into();
    while out.len() < n {
        out.extend_from_slice(&block);
        block = Sha256::digest(block).into();
    }
    out.truncate(n);
    out
}

async fn chat(node: &qpq_server::RunningNode, dir: &std::path::Path) -> (NativeClient, NativeClient, ChannelId) {
    let alice = client(node, dir, "alice").await;
    let bob = client(node, dir, "bob").await;
    let conv = alice.start_chat(&user("bob")).await.unwrap();
    wait_conversation(&bob, &conv).await;
    (alice, bob, conv)
}

/// Waits until `c` has the file message `id` and returns its reference.
async fn wait_file(c: &NativeClient, conv: &ChannelId, id: &qpq_core::MessageId) -> FileRef {
    let ok = c.wait_for(10_000, |e| e.message_by_id(conv, id).is_some()).await;
    assert!(ok, "the file message arrives");
    c.file_of(conv, id).unwrap()
}

/// Records every progress report and checks it never goes back.
#[derive(Default)]
struct Progress(RefCell<Vec<(u64, u64)>>);

impl Progress {
    fn report(&self, done: u64, total: u64) {
        let mut v = self.0.borrow_mut();
        if let Some(&(last, _)) = v.last() {
            assert!(done >= last, "progress went back from {last} to {done}");
        }
        assert!(done <= total);
        v.push((done, total));
    }
    fn last(&self) -> u64 {
        self.0.borrow().last().map(|p| p.0).unwrap_or(0)
    }
}

#[test]
fn a_file_goes_and_comes_back_whole() {
    run(async {
        let dir = tempfile::tempdir().unwrap();
        let node = sqlite_node(dir.path());
        let (alice, bob, conv) = chat(&node, dir.path()).await;
        let data = random_bytes(3 * CHUNK_BYTES as usize + 1234, 1);
        let up = Progress::default();
        let id = alice
            .send_file(&conv, &Bytes(data.clone()), "../secret/report.pdf", "Application/PDF", &|d, t| up.report(d, t), &Cancel::default())
            .await
            .unwrap();
        assert_eq!(up.last(), data.len() as u64, "the upload reports its end");
        assert_eq!(up.0.borrow().len(), 4, "one report per chunk");

        let file = wait_file(&bob, &conv, &id).await;
        assert_eq!(file.name, "report.pdf", "no path travels");
        assert_eq!(file.mime, "application/pdf");
        assert_eq!(file.size, data.len() as u64);
        let full = Sink::default();
        let down = Progress::default();
        bob.download_file(&conv, &id, &full, 0, &|d, t| down.report(d, t), &Cancel::default()).await.unwrap();
        assert_eq!(*full.0.borrow(), data, "the same bytes");
        assert_eq!(down.last(), data.len() as u64);
        let big = id;

        // The server holds ciphertext only: the plaintext is nowhere in its database.
        let db = std::fs::read(dir.path().join("qpq.sqlite")).unwrap();
        assert!(!db.windows(64).any(|w| w == &data[1000..1064]), "no plaintext at rest");

        // An empty file works too.
        let id = alice.send_file(&conv, &Bytes(vec![]), "empty.txt", "text/plain", &|_, _| {}, &Cancel::default()).await.unwrap();
        wait_file(&bob, &conv, &id).await;
        let sink = Sink::default();
        bob.download_file(&conv, &id, &sink, 0, &|_, _| {}, &Cancel::default()).await.unwrap();
        assert!(sink.0.borrow().is_empty());

        // A complete copy is checked from the sink, with nothing fetched: it needs no node,
        // and a copy altered in its last (shorter) chunk fails the fingerprint.
        let sink = full;
        node.stop();
        let again = Progress::default();
        let whole = data.len() as u64;
        bob.download_file(&conv, &big, &sink, whole, &|d, t| again.report(d, t), &Cancel::default()).await.unwrap();
        assert!(again.0.borrow().is_empty(), "no chunk was fetched");
        sink.0.borrow_mut()[data.len() - 1] ^= 1;
        let altered = bob.download_file(&conv, &big, &sink, whole, &|_, _| {}, &Cancel::default()).await;
        assert!(matches!(&altered, Err(ClientError::Input(m)) if m.contains("fingerprint")), "{altered:?}");
    });
}

#[test]
fn transfers_continue_after_the_node_restarts() {
    run(async {
        let dir = tempfile::tempdir().unwrap();
        let node = Rc::new(RefCell::new(Some(sqlite_node(dir.path()))));
        let addr = node.borrow().as_ref().unwrap().addr();
        let (alice, bob, conv) = chat(node.borrow().as_ref().unwrap(), dir.path()).await;
        let data = random_bytes(24 * CHUNK_BYTES as usize, 2);

        // The node goes down when the upload is a third through, and comes back.
        let restart_at = |part: u64| {
            let node = node.clone();
            let dir = dir.path().to_path_buf();
            let fired = RefCell::new(false);
            move |done: u64| {
                if done >= part && !*fired.borrow() {
                    *fired.borrow_mut() = true;
                    if let Some(n) = node.borrow_mut().take() {
                        n.stop();
                    }
                    *node.borrow_mut() = Some(sqlite_node_on(&dir, addr.port()));
                }
            }
        };
        let third = data.len() as u64 / 3;
        let up = Progress::default();
        let restart = restart_at(third);
        let id = alice
            .send_file(&conv, &Bytes(data.clone()), "big.bin", "", &|d, t| {
                up.report(d, t);
                restart(d);
            }, &Cancel::default())
            .await
            .unwrap();
        assert_eq!(up.last(), data.len() as u64);
        // Fewer reports than chunks would mean chunks were skipped; more, that it started over.
        assert_eq!(up.0.borrow().len(), 24, "every chunk sent exactly once");

        let file = wait_file(&bob, &conv, &id).await;
        assert_eq!(file.mime, "application/octet-stream");
        let sink = Sink::default();
        let down = Progress::default();
        let restart = restart_at(2 * third);
        bob.download_file(&conv, &id, &sink, 0, &|d, t| {
            down.report(d, t);
            restart(d);
        }, &Cancel::default())
        .await
        .unwrap();
        assert_eq!(*sink.0.borrow(), data);
        assert_eq!(down.0.borrow().len(), 24, "every chunk fetched once");

        // A download that was interrupted earlier (the sink holds part of it) continues there.
        let partial = Sink::default();
        partial.0.borrow_mut().extend_from_slice(&data[..5 * CHUNK_BYTES as usize + 10]);
        let later = Progress::default();
        let have = partial.0.borrow().len() as u64;
        bob.download_file(&conv, &id, &partial, have, &|d, t| later.report(d, t), &Cancel::default())
            .await
            .unwrap();
        assert_eq!(*partial.0.borrow(), data);
        assert_eq!(later.0.borrow().len(), 19, "only the missing chunks are fetched");
        node.borrow_mut().take().unwrap().stop();
    });
}

#[test]
fn cancelling_stops_between_chunks_and_sends_nothing() {
    run(async {
        let dir = tempfile::tempdir().unwrap();
        let node = sqlite_node(dir.path());
        let (alice, _bob, conv) = chat(&node, dir.path()).await;
        let before = alice.with_engine(|e| e.history(&conv).len());
        let cancel = Cancel::default();
        let c = cancel.clone();
        let err = alice
            .send_file(&conv, &Bytes(random_bytes(8 * CHUNK_BYTES as usize, 3)), "x", "", &move |d, _| {
                if d >= 2 * u64::from(CHUNK_BYTES) {
                    c.cancel();
                }
            }, &cancel)
            .await
            .unwrap_err();
        assert!(matches!(err, ClientError::Cancelled(_)), "{err:?}");
        assert_eq!(err.code(), "cancelled");
        assert_eq!(alice.with_engine(|e| e.history(&conv).len()), before, "no message for a cancelled file");
        node.stop();
    });
}

#[test]
fn bad_chunks_and_files_get_clear_outcomes() {
    run(async {
        let dir = tempfile::tempdir().unwrap();
        let mut config = qpq_server::Config::for_tests(dir.path());
        config.max_blob_bytes = 2 * u64::from(CHUNK_BYTES) + 1000;
        let node = qpq_server::spawn(config).unwrap();
        let (alice, bob, conv) = chat(&node, dir.path()).await;
        let session = alice.session().unwrap();
        let key = [9u8; 32];
        let data = random_bytes(2 * CHUNK_BYTES as usize, 4);
        let total = files::chunk_count(data.len() as u64, CHUNK_BYTES);
        let sealed = |i: u32| {
            let c = &data[(i * CHUNK_BYTES) as usize..((i + 1) * CHUNK_BYTES) as usize];
            files::seal_chunk(&key, total, i, c)
        };
        let file_ref = |blob| FileRef {
            blob,
            key,
            sha256: Sha256::digest(&data).into(),
            size: data.len() as u64,
            chunk_size: CHUNK_BYTES,
            name: "f.bin".into(),
            mime: "application/octet-stream".into(),
        };

        // A chunk out of order is refused by the server.
        let blob = files::create_blob(&session, &conv, data.len() as u64, 0).await.unwrap();
        let err = session.put_chunk(&blob, 1, &sealed(1)).await.unwrap_err();
        assert_eq!(err.remote_code(), Some(qpq_proto::ErrorCode::BadChunk), "{err}");

        // A corrupt chunk is stored (the server cannot tell) but the receiver's check fails,
        // naming the part; nothing else is lost.
        session.put_chunk(&blob, 0, &sealed(0)).await.unwrap();
        let mut bad = sealed(1);
        bad[100] ^= 0x40;
        session.put_chunk(&blob, 1, &bad).await.unwrap();
        let id = alice.share_file(&conv, file_ref(blob)).await.unwrap();
        wait_file(&bob, &conv, &id).await;
        let err = bob.download_file(&conv, &id, &Sink::default(), 0, &|_, _| {}, &Cancel::default()).await.unwrap_err();
        assert!(err.to_string().contains("part 2 of 2 of the file is damaged"), "{err}");

        // A missing chunk.
        let blob = files::create_blob(&session, &conv, data.len() as u64, 0).await.unwrap();
        session.put_chunk(&blob, 0, &sealed(0)).await.unwrap();
        let id = alice.share_file(&conv, file_ref(blob)).await.unwrap();
        wait_file(&bob, &conv, &id).await;
        let err = bob.download_file(&conv, &id, &Sink::default(), 0, &|_, _| {}, &Cancel::default()).await.unwrap_err();
        assert!(err.to_string().contains("part 2 of 2 is missing"), "{err}");

        // Whole chunks that open, but not the file the sender described.
        let blob = files::create_blob(&session, &conv, data.len() as u64, 0).await.unwrap();
        session.put_chunk(&blob, 0, &sealed(0)).await.unwrap();
        session.put_chunk(&blob, 1, &sealed(1)).await.unwrap();
        let mut wrong = file_ref(blob);
        wrong.sha256[0] ^= 1;
        let id = alice.share_file(&conv, wrong).await.unwrap();
        wait_file(&bob, &conv, &id).await;
        let err = bob.download_file(&conv, &id, &Sink::default(), 0, &|_, _| {}, &Cancel::default()).await.unwrap_err();
        assert!(err.to_string().contains("does not match its fingerprint"), "{err}");

        // A file over the server's limit: refused before anything is sent.
        let before = alice.with_engine(|e| e.history(&conv).len());
        let err = alice
            .send_file(&conv, &Bytes(random_bytes(3 * CHUNK_BYTES as usize, 5)), "huge.bin", "", &|_, _| {}, &Cancel::default())
            .await
            .unwrap_err();
        assert!(err.to_string().contains("too large for this server"), "{err}");
        assert_eq!(alice.with_engine(|e| e.history(&conv).len()), before);

        // Someone outside the conversation cannot read the blob.
        let carol = client(&node, dir.path(), "carol").await;
        let err = carol.session().unwrap().get_chunk(&blob, 0).await.unwrap_err();
        assert!(err.remote_code().is_some(), "a refusal, not a disconnect: {err}");

        // And the conversation goes on.
        alice.send_text(&conv, "still here").await.unwrap();
        let ok = bob
            .wait_for(10_000, |e| e.history(&conv).iter().any(|m| matches!(&m.content, Content::Text { text, .. } if text == "still here")))
            .await;
        assert!(ok);
        node.stop();
    });
}
