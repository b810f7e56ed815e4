//! The end-to-end harness shared by every test of this crate: real server nodes (QUIC,
//! SQLite or PostgreSQL) and a real gateway on their own threads, a throwaway PostgreSQL
//! database per test, native clients on the test's LocalSet (directly over QUIC, or through
//! the gateway), and WebSockets to the gateway's `/ws` — the `Connector` that speaks to it the
//! way the browser does is `qpq_load::ws_client`'s, re-exported here. (`h3client` adds HTTP/3
//! and WebTransport; `push_service` is a local RFC 8030 push service, the browser vendor's
//! part of Web Push.)

#![allow(dead_code)]

pub mod h3client;
pub mod mls;
pub mod push_service;
pub mod raw;

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::Duration;

use futures::{Sink, SinkExt, Stream, StreamExt};
use qpq_client::{Client, ConnState, Connection, Connector, Platform, StateStore};
use qpq_quic::{Trust, ALPN_NODE};
use tokio_util::compat::{TokioAsyncReadCompatExt, TokioAsyncWriteCompatExt};
use qpq_gateway::{Config as GatewayConfig, Health, RunningGateway};
use qpq_native::{FileStore, NativeClient, QuicConnector, TokioPlatform};
use qpq_proto::{ChannelId, UserId};
use qpq_server::{Config, RunningNode};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::Message;

/// Runs an async test body on a current-thread runtime inside a LocalSet.
pub fn run<F: std::future::Future<Output = ()>>(f: F) {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    tokio::task::LocalSet::new().block_on(&rt, f);
}

// --- nodes ------------------------------------------------------------------------------------

/// A node on SQLite in `dir`, on any free port.
pub fn sqlite_node(dir: &Path) -> RunningNode {
    sqlite_node_on(dir, 0)
}

/// A node on SQLite in `dir`, on `port` (to restart a node where its clients expect it).
pub fn sqlite_node_on(dir: &Path, port: u16) -> RunningNode {
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
    let admin =
        std::env::var("QPQ_TEST_POSTGRES").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
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

// --- gateway ----------------------------------------------------------------------------------

/// A gateway configuration for `nodes`, serving the (empty) `dir/www` and `dir/pkg`.
pub fn gateway_config(nodes: &[&RunningNode], dir: &Path) -> GatewayConfig {
    let (www, pkg) = (dir.join("www"), dir.join("pkg"));
    std::fs::create_dir_all(&www).unwrap();
    std::fs::create_dir_all(&pkg).unwrap();
    let pins: Vec<(SocketAddr, &str)> = nodes.iter().map(|n| (n.addr(), n.fingerprint())).collect();
    GatewayConfig::for_tests(&pins, www, pkg)
}

/// Starts a gateway and waits until `up` of its nodes are connected.
pub async fn start_gateway(config: GatewayConfig, up: usize) -> RunningGateway {
    let gw = qpq_gateway::spawn(config).expect("gateway starts");
    let ok = tokio::time::timeout(Duration::from_secs(15), gw.state().nodes().wait_up(up)).await.is_ok();
    assert!(ok, "the gateway connects to {up} node(s)");
    gw
}

/// Waits until the gateway has at most `n` sessions open.
pub async fn wait_sessions_at_most(gw: &RunningGateway, n: usize) {
    let mut rx = gw.state().limiter().watch();
    let ok = tokio::time::timeout(Duration::from_secs(10), rx.wait_for(|&k| k <= n)).await.is_ok();
    assert!(ok, "the gateway gets down to {n} sessions (has {})", gw.state().limiter().active());
}

/// `GET /healthz` over a real TCP connection: the status code and the body.
pub async fn healthz(addr: SocketAddr) -> (u16, Health) {
    let (status, body) = http_get(addr, "/healthz").await;
    (status, serde_json::from_slice(&body).expect("healthz is JSON"))
}

/// A minimal HTTP/1.1 GET: status and body.
pub async fn http_get(addr: SocketAddr, path: &str) -> (u16, Vec<u8>) {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).await.unwrap();
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").expect("a complete response");
    let head = String::from_utf8_lossy(&raw[..split]).to_string();
    let status = head.split(' ').nth(1).and_then(|c| c.parse().ok()).expect("a status line");
    (status, raw[split + 4..].to_vec())
}

// --- WebSockets ---------------------------------------------------------------------------------

/// The WebSocket connector (`Connector` over the gateway's `/ws`) is `qpq_load::ws_client`'s,
/// shared with `qpq-idle-sessions`; raw sockets for the refusal and close cases are here.
pub use qpq_load::ws_client::{Ws, WsConnector};

/// A raw WebSocket to the gateway from the local address `from` (any 127.x.y.z), with an
/// optional `Origin`. Errors are the handshake's (an HTTP refusal shows its status).
pub async fn raw_ws(
    gw: SocketAddr,
    from: IpAddr,
    origin: Option<&str>,
) -> Result<Ws, tokio_tungstenite::tungstenite::Error> {
    let mut req = format!("ws://{gw}/ws").into_client_request()?;
    if let Some(o) = origin {
        req.headers_mut().insert("origin", o.parse().unwrap());
    }
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind(SocketAddr::new(from, 0)).unwrap();
    let tcp = socket.connect(gw).await.unwrap();
    let (ws, _) = tokio_tungstenite::client_async(req, tokio_tungstenite::MaybeTlsStream::Plain(tcp)).await?;
    Ok(ws)
}

/// The HTTP status of a refused WebSocket handshake.
pub fn refused_status(r: Result<Ws, tokio_tungstenite::tungstenite::Error>) -> u16 {
    match r {
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => resp.status().as_u16(),
        Err(e) => panic!("expected an HTTP refusal, got {e}"),
        Ok(_) => panic!("expected an HTTP refusal, got a WebSocket"),
    }
}

/// Reads until the server's close frame and returns it.
pub async fn close_frame<S>(ws: &mut S) -> CloseFrame
where
    S: Stream<Item = Result<Message, tokio_tungstenite::tungstenite::Error>> + Unpin,
{
    let read = async {
        loop {
            match ws.next().await {
                Some(Ok(Message::Close(Some(f)))) => return f,
                Some(Ok(Message::Close(None))) => panic!("closed without a code"),
                Some(Ok(_)) => continue,
                Some(Err(e)) => panic!("the socket failed before a close frame: {e}"),
                None => panic!("the socket ended before a close frame"),
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(10), read).await.expect("a close frame arrives")
}

/// Sends a message on a raw socket.
pub async fn send<S: Sink<Message> + Unpin>(ws: &mut S, m: Message)
where
    S::Error: std::fmt::Debug,
{
    ws.send(m).await.expect("sends");
}

// --- clients ----------------------------------------------------------------------------------

pub fn user(name: &str) -> UserId {
    UserId::parse(&format!("{name}@localhost")).unwrap()
}

pub fn state_path(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!("{name}.state"))
}

/// Registers `name` over `register_with` and starts it on `run_with`; waits until online.
pub async fn client_via(
    dir: &Path,
    name: &str,
    register_with: &dyn Connector,
    run_with: Rc<dyn Connector>,
) -> NativeClient {
    let store = FileStore::open(state_path(dir, name), true).unwrap();
    let c = NativeClient::register(register_with, store, TokioPlatform, user(name)).await.expect("registers");
    c.start(run_with);
    assert!(online(&c).await, "{name} comes online");
    c
}

/// A client registered and running through the gateway's WebSocket.
pub async fn ws_client(gw: SocketAddr, dir: &Path, name: &str) -> NativeClient {
    let ws = WsConnector::new(gw);
    client_via(dir, name, &ws, Rc::new(ws.clone())).await
}

/// A client of `node`, registered and running directly over QUIC, with its state in
/// `dir/NAME.state`.
pub async fn client(node: &RunningNode, dir: &Path, name: &str) -> NativeClient {
    client_at(node.addr(), node.fingerprint(), dir, name).await
}

/// A client registered and running over QUIC with the node at `addr`.
pub async fn client_at(addr: SocketAddr, fingerprint: &str, dir: &Path, name: &str) -> NativeClient {
    let q = QuicConnector::pinned(addr, fingerprint).unwrap();
    client_via(dir, name, &q, Rc::new(q.clone())).await
}

/// Reopens a client from its state file (as after an app restart), over QUIC.
pub async fn reopen(addr: SocketAddr, fingerprint: &str, dir: &Path, name: &str) -> NativeClient {
    let connector = QuicConnector::pinned(addr, fingerprint).unwrap();
    let store = FileStore::open(state_path(dir, name), true).unwrap();
    let c = NativeClient::open(store, TokioPlatform).await.unwrap().expect("account is stored");
    c.start(Rc::new(connector) as Rc<dyn Connector>);
    c
}

pub async fn online<S: StateStore, P: Platform>(c: &Client<S, P>) -> bool {
    let c2 = c.clone();
    c.wait_for(20_000, move |_| matches!(c2.connection_state(), ConnState::Online { .. })).await
}

pub async fn offline(c: &NativeClient) -> bool {
    let c2 = c.clone();
    c.wait_for(20_000, move |_| !matches!(c2.connection_state(), ConnState::Online { .. })).await
}

/// Texts of a conversation's history.
pub fn texts(c: &NativeClient, conv: &ChannelId) -> Vec<String> {
    c.with_engine(|e| history_texts(e, conv))
}

fn history_texts(e: &qpq_core::Engine, conv: &ChannelId) -> Vec<String> {
    e.history(conv)
        .iter()
        .filter_map(|m| match &m.content {
            qpq_core::Content::Text { text, .. } => Some(text.clone()),
            _ => None,
        })
        .collect()
}

/// Waits until `c` has exactly `expected` texts in `conv`, in this order.
pub async fn wait_texts(c: &NativeClient, conv: &ChannelId, expected: &[&str]) {
    let ok = c.wait_for(20_000, |e| history_texts(e, conv) == expected).await;
    assert!(ok, "{} expected {:?}, has {:?}", c.user(), expected, texts(c, conv));
}

/// Waits until `c` has exactly the texts `expected` in `conv`, each once, in any order.
pub async fn wait_texts_unordered(c: &NativeClient, conv: &ChannelId, expected: &[String]) {
    let mut want = expected.to_vec();
    want.sort();
    let ok = c
        .wait_for(30_000, |e| {
            let mut got = history_texts(e, conv);
            got.sort();
            got == want
        })
        .await;
    assert!(ok, "{} expected {:?} (any order), has {:?}", c.user(), want, texts(c, conv));
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

/// Alice starts a chat with Bob and each sends one message; returns the conversation.
pub async fn chat(alice: &NativeClient, bob: &NativeClient) -> ChannelId {
    let conv = alice.start_chat(&bob.user()).await.unwrap();
    wait_conversation(bob, &conv).await;
    alice.send_text(&conv, "hi bob").await.unwrap();
    wait_texts(bob, &conv, &["hi bob"]).await;
    bob.send_text(&conv, "hello alice").await.unwrap();
    wait_texts(alice, &conv, &["hi bob", "hello alice"]).await;
    conv
}

pub fn sleep(ms: u64) -> tokio::time::Sleep {
    tokio::time::sleep(Duration::from_millis(ms))
}

/// A raw QUIC connection to the node, for sending bytes no client would.
pub async fn raw_connection(node: &RunningNode) -> quinn::Connection {
    let mut ep = qpq_quic::client_endpoint(node.addr()).unwrap();
    ep.set_default_client_config(
        qpq_quic::client_config(&Trust::Pinned(vec![node.fingerprint_bytes()]), ALPN_NODE, Duration::from_secs(10)).unwrap(),
    );
    ep.connect(node.addr(), "localhost").unwrap().await.unwrap()
}

/// An RPC connection on a fresh stream, not logged in.
pub async fn rpc(conn: &quinn::Connection) -> Connection {
    let (send, recv) = conn.open_bi().await.unwrap();
    let (c, driver) = Connection::new(recv.compat(), send.compat_write());
    tokio::task::spawn_local(driver);
    c
}

/// `admin` makes `other` an admin of `conv`, and `other` sees it.
pub async fn make_admin(admin: &NativeClient, other: &NativeClient, conv: &ChannelId) {
    admin.set_admin(conv, &other.user(), true).await.unwrap();
    assert!(other.wait_for(20_000, |e| e.is_admin(conv)).await, "{} sees it is admin", other.user());
}
