//! Linking a device with history: how long a new device takes from sending its link request
//! to holding the account's recent history, for an account with 1,000 and 10,000 messages in
//! one conversation (the hand-over's bound). One node on its SQLite default, loopback QUIC,
//! clients keeping state in memory.
//!
//! Phases: *answer* — the request is sent, the account's device registers the device,
//! exports, seals and uploads the history and answers; *joined* — the new device logs in and
//! publishes key packages, the account's device adds it to the conversation, the Welcome
//! arrives; *history in* — the new device fetches the blob, opens it and puts the history in.
//!
//! Run: `cargo bench -p qpq-native --bench link`

mod support;

use std::time::Instant;

use qpq_client::{Client, MemoryStore};
use qpq_native::TokioPlatform;
use support::*;

fn main() {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    tokio::task::LocalSet::new().block_on(&rt, async {
        println!("link: one node (SQLite), loopback; times from the new device's request");
        println!("{:>9} {:>12} {:>10} {:>10} {:>12}", "messages", "history B", "answer s", "joined s", "history in s");
        for messages in [1_000usize, 10_000] {
            run(messages).await;
        }
    });
}

async fn run(messages: usize) {
    let WithHistory { _dir, node, alice, _bob, conv } = with_history(messages).await;
    let (code, _) = alice.open_link().await.unwrap();
    let text = code.text();
    let a = alice.clone();
    let serving = tokio::task::spawn_local(async move { a.serve_link(&code, "", |_| {}).await });
    let connector = connector(&node);
    let t0 = Instant::now();
    let laptop = Client::link(&connector, MemoryStore::default(), TokioPlatform, &text, "bench", |_| {}).await.unwrap();
    let answer = t0.elapsed();
    let history_bytes = laptop
        .with_engine(|e| e.pending_handover().map(|b| qpq_client::link::HistoryRef::from_bytes(b).unwrap().size))
        .unwrap_or(0);
    start(&laptop, &connector).await;
    assert!(laptop.wait_for(120_000, |e| e.conversation(&conv).is_some()).await, "joined");
    let joined = t0.elapsed();
    let texts = |e: &qpq_core::Engine| e.history(&conv).iter().filter(|m| m.is_content()).count();
    assert!(laptop.wait_for(300_000, |e| texts(e) >= messages && e.pending_handover().is_none()).await, "history in");
    let history_in = t0.elapsed();
    serving.await.unwrap().unwrap();
    println!(
        "{messages:>9} {history_bytes:>12} {:>10.2} {:>10.2} {:>12.2}",
        answer.as_secs_f64(),
        joined.as_secs_f64(),
        history_in.as_secs_f64()
    );
    node.stop();
}
