//! End-to-end test harness: real server nodes (QUIC, SQLite or PostgreSQL) on their own
//! threads, and native clients on the test's LocalSet.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::Duration;

use qpq_client::{Client, ConnState, Connector, Platform, StateStore};
use qpq_native::{FileStore, NativeClient, QuicConnector, TokioPlatform};
use qpq_proto::{ChannelId, UserId};
use qpq_server::{Config, RunningNode};

/// Runs an async test body on a current-thread runtime inside a LocalSet.
pub fn run<F: std::future::Future<Output = ()>>(f: F) {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    tokio::task::LocalSet::new().block_on(&rt, f);
}

/// A node with the SQLite default in `dir`, on `port` (0: any).
pub fn sqlite_node(dir: &Path, port: u16) -> RunningNode {
    let mut c = Config::for_tests(dir);
    c.listen = SocketAddr::from(([127, 0, 0, 1], port));
    qpq_server::spawn(c).expect("node starts")
}

/// A node on the PostgreSQL database `url`, keeping its certificate in `dir`.
pub fn pg_node(dir: &Path, url: &str) -> RunningNode {
    let mut c = Config::for_tests(dir);
    c.database = Some(url.to_string());
    qpq_server::spawn(c).expect("node starts")
}

/// A fresh PostgreSQL database for one test; dropped by `drop_database`.
pub struct PgDb {
    pub admin: String,
    pub name: String,
    pub url: String,
}

pub async fn create_database() -> PgDb {
    use rand::RngCore;
    let admin = std::env::var("QPQ_TEST_POSTGRES").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let mut b = [0u8; 6];
    rand::thread_rng().fill_bytes(&mut b);
    let name = format!("qpq_e2e_{}", hex::encode(b));
    let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&admin).await.expect("PostgreSQL answers");
    sqlx::query(&format!("CREATE DATABASE {name}")).execute(&mut conn).await.unwrap();
    let base = admin.rsplit_once('/').map(|(b, _)| b.to_string()).unwrap();
    PgDb { url: format!("{base}/{name}"), admin, name }
}

impl PgDb {
    pub async fn drop_database(&self) {
        let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&self.admin).await.unwrap();
        let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name)).execute(&mut conn).await;
    }
}

pub fn user(name: &str) -> UserId {
    UserId::parse(&format!("{name}@localhost")).unwrap()
}

/// A registered, started client of `node`, with its state in `dir/NAME.state`.
pub async fn client(node: &RunningNode, dir: &Path, name: &str) -> NativeClient {
    client_at(node.addr(), node.fingerprint(), dir, name).await
}

pub async fn client_at(addr: SocketAddr, fingerprint: &str, dir: &Path, name: &str) -> NativeClient {
    let connector = QuicConnector::pinned(addr, fingerprint).unwrap();
    let store = FileStore::open(state_path(dir, name), true).unwrap();
    let c = NativeClient::register(&connector, store, TokioPlatform, user(name)).await.expect("registers");
    c.start(Rc::new(connector) as Rc<dyn Connector>);
    assert!(online(&c).await, "{name} comes online");
    c
}

/// Reopens a client from its state file (as after an app restart).
pub async fn reopen(addr: SocketAddr, fingerprint: &str, dir: &Path, name: &str) -> NativeClient {
    let connector = QuicConnector::pinned(addr, fingerprint).unwrap();
    let store = FileStore::open(state_path(dir, name), true).unwrap();
    let c = NativeClient::open(store, TokioPlatform).await.unwrap().expect("account is stored");
    c.start(Rc::new(connector) as Rc<dyn Connector>);
    c
}

pub fn state_path(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!("{name}.state"))
}

pub async fn online<S: StateStore, P: Platform>(c: &Client<S, P>) -> bool {
    let c2 = c.clone();
    c.wait_for(15_000, move |_| matches!(c2.connection_state(), ConnState::Online { .. })).await
}

/// Texts of a conversation's history.
pub fn texts(c: &NativeClient, conv: &ChannelId) -> Vec<String> {
    c.with_engine(|e| {
        e.history(conv)
            .iter()
            .filter_map(|m| match &m.content {
                qpq_core::Content::Text { text, .. } => Some(text.clone()),
                _ => None,
            })
            .collect()
    })
}

/// Waits until `c` has `conv` with exactly `expected` texts.
pub async fn wait_texts(c: &NativeClient, conv: &ChannelId, expected: &[&str]) {
    let ok = c
        .wait_for(20_000, |e| {
            let got: Vec<String> = e
                .history(conv)
                .iter()
                .filter_map(|m| match &m.content {
                    qpq_core::Content::Text { text, .. } => Some(text.clone()),
                    _ => None,
                })
                .collect();
            got == expected
        })
        .await;
    assert!(ok, "{} expected {:?}, has {:?}", c.user(), expected, texts(c, conv));
}

pub async fn wait_conversation(c: &NativeClient, conv: &ChannelId) {
    assert!(c.wait_for(20_000, |e| e.conversation(conv).is_some()).await, "{} joins the conversation", c.user());
}

pub async fn wait_members(c: &NativeClient, conv: &ChannelId, n: usize) {
    let ok = c.wait_for(20_000, |e| e.conversation(conv).map(|x| x.members.len()) == Some(n)).await;
    assert!(ok, "{} sees {n} members", c.user());
}

pub async fn wait_outbox_empty(c: &NativeClient) {
    assert!(c.wait_for(20_000, |e| e.outbox_len() == 0).await, "{} outbox drains", c.user());
}

pub fn sleep(ms: u64) -> tokio::time::Sleep {
    tokio::time::sleep(Duration::from_millis(ms))
}
