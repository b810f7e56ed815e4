//! What the account benchmarks (`link`, `backup`) share: one node on its SQLite default, and
//! Alice with N messages of history in a 1:1 with Bob, clients keeping state in memory.

use std::rc::Rc;

use qpq_client::{Client, Connector, MemoryStore};
use qpq_native::{QuicConnector, TokioPlatform};
use qpq_proto::{ChannelId, UserId};

pub type BenchClient = Client<MemoryStore, TokioPlatform>;

/// A node, Alice and Bob, and their 1:1 in which Alice wrote `messages` messages. Keep every
/// field until the end: the node's files are in `_dir`, and Bob answers the new devices.
pub struct WithHistory {
    pub _dir: tempfile::TempDir,
    pub node: qpq_server::RunningNode,
    pub alice: BenchClient,
    pub _bob: BenchClient,
    pub conv: ChannelId,
}

/// A client of `node` over loopback QUIC.
pub fn connector(node: &qpq_server::RunningNode) -> QuicConnector {
    QuicConnector::pinned(node.addr(), node.fingerprint()).unwrap()
}

async fn client(node: &qpq_server::RunningNode, name: &str) -> BenchClient {
    let connector = connector(node);
    let user = UserId::parse(&format!("{name}@localhost")).unwrap();
    let c = Client::register(&connector, MemoryStore::default(), TokioPlatform, user).await.unwrap();
    start(&c, &connector).await;
    c
}

/// Starts `c` and waits until it is online.
pub async fn start(c: &BenchClient, connector: &QuicConnector) {
    c.start(Rc::new(connector.clone()) as Rc<dyn Connector>);
    let c2 = c.clone();
    assert!(c.wait_for(20_000, move |_| matches!(c2.connection_state(), qpq_client::ConnState::Online { .. })).await);
}

/// Sets up [`WithHistory`].
pub async fn with_history(messages: usize) -> WithHistory {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = qpq_server::Config::for_tests(dir.path());
    cfg.log = "error".into();
    // The history is written by one sender as fast as it can.
    cfg.rates.sends_per_min = 1_000_000;
    let node = qpq_server::spawn(cfg).unwrap();
    let alice = client(&node, "alice").await;
    let bob = client(&node, "bob").await;
    let conv = alice.start_chat(&bob.user()).await.unwrap();
    for i in 0..messages {
        alice.send_text(&conv, &format!("message {i} of the history, about as long as a chat line")).await.unwrap();
    }
    assert!(alice.wait_for(600_000, |e| e.outbox_len() == 0).await, "the history is sent");
    WithHistory { _dir: dir, node, alice, _bob: bob, conv }
}
