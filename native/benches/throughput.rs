//! Messages per second through one server node over QUIC with several clients, side by side
//! with a raw quinn echo of the same message sizes, measured in the same run.
//!
//! qpq path: each sender's client composes, MLS-encrypts and enqueues (one RPC per message,
//! waiting for the reply, as the outbox does); the node stores and fans out to the receiver's
//! subscription; the receiver decrypts, stores and acknowledges (and sends delivery
//! receipts). Clients keep state in memory so the client's disk is not measured; the node
//! uses its SQLite default. Raw path: the same number of clients each send the same number
//! of frames of the ciphertext's size over a quinn stream and wait for each echo.
//!
//! Run: `cargo bench -p qpq-native --bench throughput`

use std::rc::Rc;
use std::time::{Duration, Instant};

use qpq_client::{Client, Connector, MemoryStore};
use qpq_native::{QuicConnector, TokioPlatform};
use qpq_proto::UserId;
use qpq_quic::Trust;

const PAIRS: usize = 4;
const MESSAGES: usize = 400;

type BenchClient = Client<MemoryStore, TokioPlatform>;

fn main() {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    tokio::task::LocalSet::new().block_on(&rt, async {
        println!("throughput: {PAIRS} sender/receiver pairs, {MESSAGES} messages per sender, one node (SQLite), loopback");
        println!("{:>10} {:>12} {:>12} {:>12} {:>8}", "text B", "wire B", "qpq msg/s", "raw msg/s", "ratio");
        for text_len in [32usize, 1000] {
            let (qpq, wire) = qpq_path(text_len).await;
            let raw = raw_path(wire).await;
            println!("{text_len:>10} {wire:>12} {qpq:>12.0} {raw:>12.0} {:>8.3}", qpq / raw);
        }
    });
}

async fn client(node: &qpq_server::RunningNode, name: &str) -> BenchClient {
    let connector = QuicConnector::pinned(node.addr(), node.fingerprint()).unwrap();
    let user = UserId::parse(&format!("{name}@localhost")).unwrap();
    let c = Client::register(&connector, MemoryStore::default(), TokioPlatform, user).await.unwrap();
    c.start(Rc::new(connector) as Rc<dyn Connector>);
    let c2 = c.clone();
    assert!(c.wait_for(10_000, move |_| matches!(c2.connection_state(), qpq_client::ConnState::Online { .. })).await);
    c
}

/// Returns messages per second and the size of one message on the wire.
async fn qpq_path(text_len: usize) -> (f64, usize) {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = qpq_server::Config::for_tests(dir.path());
    cfg.log = "error".into();
    let node = qpq_server::spawn(cfg).unwrap();
    let mut pairs = Vec::new();
    for i in 0..PAIRS {
        let a = client(&node, &format!("s{i}")).await;
        let b = client(&node, &format!("r{i}")).await;
        let conv = a.start_chat(&b.user()).await.unwrap();
        assert!(b.wait_for(10_000, |e| e.conversation(&conv).is_some()).await);
        pairs.push((a, b, conv));
    }
    let text = "m".repeat(text_len);
    let t = Instant::now();
    let sends = pairs.iter().map(|(a, _, conv)| {
        let (a, conv, text) = (a.clone(), conv.clone(), text.clone());
        async move {
            for _ in 0..MESSAGES {
                a.send_text(&conv, &text).await.unwrap();
            }
        }
    });
    futures::future::join_all(sends).await;
    for (_, b, conv) in &pairs {
        let ok = b
            .wait_for(120_000, |e| e.history(conv).iter().filter(|m| !m.outgoing && matches!(m.content, qpq_core::Content::Text { .. })).count() == MESSAGES)
            .await;
        assert!(ok, "every message arrives");
    }
    let rate = (PAIRS * MESSAGES) as f64 / t.elapsed().as_secs_f64();
    let wire = SimPair::new().ciphertext_len(&text);
    for (a, b, _) in &pairs {
        a.stop();
        b.stop();
    }
    node.stop();
    (rate, wire)
}

/// One engine in a group of its own, to measure a ciphertext's size (padding makes it
/// depend only on the text's size).
struct SimPair {
    a: qpq_core::Engine,
    conv: qpq_proto::ChannelId,
}

impl SimPair {
    fn new() -> Self {
        let mut a = qpq_core::Engine::create(UserId::parse("a@x").unwrap(), [1; 32], 1);
        let conv = a.create_conversation(qpq_core::ConversationKind::Group, "g", 1).unwrap();
        let out = a.next_outbound(1).unwrap();
        a.outbound_result(out.id, qpq_core::OutboundResult::Accepted { server_time: 1 }, 1);
        SimPair { a, conv }
    }

    fn ciphertext_len(&mut self, text: &str) -> usize {
        self.a.send_text(&self.conv, text, None, 1).unwrap();
        match self.a.next_outbound(1).unwrap().op {
            qpq_core::OutboundOp::Enqueue { payload, .. } => payload.len(),
            op => panic!("unexpected {op:?}"),
        }
    }
}

async fn raw_path(size: usize) -> f64 {
    let bundle = qpq_quic::CertificateBundle::generate(&["localhost".into()], Duration::from_secs(86400)).unwrap();
    let fp = bundle.sha256();
    let (tx, rx) = std::sync::mpsc::channel();
    let server = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async move {
            let cfg = qpq_quic::server_config(&bundle, &[b"echo"], Duration::from_secs(30)).unwrap();
            let ep = qpq_quic::server_endpoint(cfg, "127.0.0.1:0".parse().unwrap()).unwrap();
            tx.send(ep.local_addr().unwrap()).unwrap();
            while let Some(inc) = ep.accept().await {
                tokio::spawn(async move {
                    let Ok(conn) = inc.await else { return };
                    while let Ok((mut send, mut recv)) = conn.accept_bi().await {
                        tokio::spawn(async move {
                            let mut len = [0u8; 4];
                            while recv.read_exact(&mut len).await.is_ok() {
                                let mut buf = vec![0u8; u32::from_be_bytes(len) as usize];
                                if recv.read_exact(&mut buf).await.is_err() {
                                    return;
                                }
                                let _ = send.write_all(&len).await;
                                let _ = send.write_all(&buf).await;
                            }
                        });
                    }
                });
            }
        });
    });
    let addr = rx.recv().unwrap();
    let mut ep = qpq_quic::client_endpoint(addr).unwrap();
    ep.set_default_client_config(qpq_quic::client_config(&Trust::Pinned(vec![fp]), b"echo", Duration::from_secs(30)).unwrap());
    let conn = ep.connect(addr, "localhost").unwrap().await.unwrap();
    let payload = vec![7u8; size];
    let t = Instant::now();
    let clients = (0..PAIRS).map(|_| {
        let (conn, payload) = (conn.clone(), payload.clone());
        async move {
            let (mut send, mut recv) = conn.open_bi().await.unwrap();
            let mut back = vec![0u8; payload.len()];
            let mut len = [0u8; 4];
            for _ in 0..MESSAGES {
                send.write_all(&(payload.len() as u32).to_be_bytes()).await.unwrap();
                send.write_all(&payload).await.unwrap();
                recv.read_exact(&mut len).await.unwrap();
                recv.read_exact(&mut back).await.unwrap();
            }
        }
    });
    futures::future::join_all(clients).await;
    let rate = (PAIRS * MESSAGES) as f64 / t.elapsed().as_secs_f64();
    conn.close(0u32.into(), b"done");
    drop(server);
    rate
}
