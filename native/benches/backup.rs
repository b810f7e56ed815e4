//! Backup and restore of an account with 10,000 messages (in one conversation with Bob): the
//! backup file's size, how long sealing it takes (export, Argon2id, ChaCha20-Poly1305), and how
//! long a fresh device takes from opening the file to holding the history again — *opened*
//! (Argon2id, every chunk opened, contents decoded), *registered* (the node replaced the
//! account's device), *rejoined* (logged in, Bob's client added it, the Welcome arrived and
//! the history went in). One node on its SQLite default, loopback QUIC, clients keeping
//! state in memory.
//!
//! Run: `cargo bench -p qpq-native --bench backup`

mod support;

use std::time::Instant;

use qpq_client::{BackupProgress, Client, MemoryStore};
use qpq_native::TokioPlatform;
use support::*;

const PASS: &str = "a benchmark passphrase";

fn main() {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    tokio::task::LocalSet::new().block_on(&rt, async {
        println!("backup: one node (SQLite), loopback; restore times from opening the file");
        println!(
            "{:>9} {:>11} {:>9} {:>9} {:>12} {:>10}",
            "messages", "file B", "backup s", "opened s", "registered s", "rejoined s"
        );
        for messages in [1_000usize, 10_000] {
            run(messages).await;
        }
    });
}

async fn run(messages: usize) {
    let WithHistory { _dir, node, alice, _bob, conv } = with_history(messages).await;
    let t0 = Instant::now();
    let file = alice.backup(PASS, "", |_| {}).await.unwrap();
    let backup = t0.elapsed();
    alice.shutdown().await;

    let connector = connector(&node);
    let opened = std::cell::Cell::new(None);
    let t0 = Instant::now();
    let restored = Client::restore(&connector, MemoryStore::default(), TokioPlatform, &file, PASS, "bench", |p| {
        if p == BackupProgress::Registering {
            opened.set(Some(t0.elapsed()));
        }
    })
    .await
    .unwrap();
    let registered = t0.elapsed();
    let fresh = restored.client;
    start(&fresh, &connector).await;
    let texts = |e: &qpq_core::Engine| e.history(&conv).iter().filter(|m| m.is_content()).count();
    assert!(fresh.wait_for(300_000, |e| texts(e) >= messages && e.restoring() == 0).await, "history back");
    let rejoined = t0.elapsed();
    println!(
        "{messages:>9} {:>11} {:>9.2} {:>9.2} {:>12.2} {:>10.2}",
        file.len(),
        backup.as_secs_f64(),
        opened.get().unwrap_or_default().as_secs_f64(),
        registered.as_secs_f64(),
        rejoined.as_secs_f64()
    );
    node.stop();
}
