//! End to end through the gateway, without a browser: real server nodes, a real gateway, and
//! `qpq-client` over a WebSocket connector that speaks to `/ws` as the browser does.

mod support;

use std::net::IpAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::StreamExt;
use qpq_client::Connector;
use qpq_native::QuicConnector;
use support::*;
use tokio_tungstenite::tungstenite::Message;

const LOCAL: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

fn local(n: u8) -> IpAddr {
    IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, n))
}

#[test]
fn a_browser_session_through_the_gateway_chats_with_a_native_client() {
    run(async {
        let dir = tempfile::tempdir().unwrap();
        let node = sqlite_node(&dir.path().join("node"));
        let gw = start_gateway(gateway_config(&[&node], dir.path()), 1).await;

        // Alice registers and runs through the gateway; Bob speaks QUIC to the node.
        let alice = ws_client(gw.addr(), dir.path(), "alice").await;
        let bob = client(&node, dir.path(), "bob").await;
        assert_eq!(alice.connection_state(), qpq_client::ConnState::Online { transport: "WebSocket".into() });

        let conv = chat(&alice, &bob).await;
        for i in 0..5 {
            alice.send_text(&conv, &format!("a{i}")).await.unwrap();
            bob.send_text(&conv, &format!("b{i}")).await.unwrap();
        }
        let mut all: Vec<String> = vec!["hi bob".into(), "hello alice".into()];
        all.extend((0..5).flat_map(|i| [format!("a{i}"), format!("b{i}")]));
        wait_texts_unordered(&alice, &conv, &all).await;
        wait_texts_unordered(&bob, &conv, &all).await;

        // The registration's stream is closed; Alice's live session is the only one.
        wait_sessions_at_most(&gw, 1).await;
        let (status, health) = healthz(gw.addr()).await;
        assert_eq!(status, 200);
        assert_eq!(health.status, "ok");
        assert!(health.nodes[0].up);
        assert_eq!(health.nodes[0].sessions, 1, "alice's session is counted: {health:?}");
        gw.stop();
        node.stop();
    });
}

#[test]
fn a_gateway_restart_loses_and_duplicates_nothing() {
    run(async {
        let dir = tempfile::tempdir().unwrap();
        let node = sqlite_node(&dir.path().join("node"));
        let config = gateway_config(&[&node], dir.path());
        let gw = start_gateway(config.clone(), 1).await;
        let addr = gw.addr();

        let alice = ws_client(addr, dir.path(), "alice").await;
        let bob = ws_client(addr, dir.path(), "bob").await;
        let conv = chat(&alice, &bob).await;
        let mut watcher = raw_ws(addr, LOCAL, None).await.expect("a plain session opens");

        // The gateway goes away: every session is closed with 1001 "going away".
        gw.stop();
        let f = close_frame(&mut watcher).await;
        assert_eq!(u16::from(f.code), 1001, "{f:?}");
        assert!(offline(&alice).await && offline(&bob).await, "both notice");

        // Both keep writing while it is down: the messages wait in their outboxes.
        for i in 0..3 {
            alice.send_text(&conv, &format!("alice while down {i}")).await.unwrap();
            bob.send_text(&conv, &format!("bob while down {i}")).await.unwrap();
        }
        assert!(alice.with_engine(|e| e.outbox_len()) > 0 && bob.with_engine(|e| e.outbox_len()) > 0);

        // It comes back on the same address; the clients reconnect by themselves.
        let mut config = config;
        config.listen = addr;
        let restarted = Instant::now();
        let gw = start_gateway(config, 1).await;
        assert!(online(&alice).await && online(&bob).await, "both reconnect");
        let reconnected = restarted.elapsed();
        let mut all: Vec<String> = vec!["hi bob".into(), "hello alice".into()];
        all.extend((0..3).flat_map(|i| [format!("alice while down {i}"), format!("bob while down {i}")]));
        wait_texts_unordered(&alice, &conv, &all).await;
        wait_texts_unordered(&bob, &conv, &all).await;
        let flowing = restarted.elapsed();
        println!("gateway restart: clients online after {reconnected:?}, queued messages delivered after {flowing:?}");

        // Exactly once, and the conversation goes on.
        alice.send_text(&conv, "after the restart").await.unwrap();
        all.push("after the restart".into());
        wait_texts_unordered(&bob, &conv, &all).await;
        wait_outbox_empty(&alice).await;
        wait_outbox_empty(&bob).await;
        gw.stop();
        node.stop();
    });
}

#[test]
fn when_a_node_dies_its_sessions_move_to_the_other_node() {
    run(async {
        let db = create_database().await;
        let dir = tempfile::tempdir().unwrap();
        let n1 = pg_node(&dir.path().join("n1"), &db.url);
        let n2 = pg_node(&dir.path().join("n2"), &db.url);
        let mut config = gateway_config(&[&n1, &n2], dir.path());
        config.node_retry_max_ms = 500;
        let gw = start_gateway(config, 2).await;
        let ws: Rc<dyn Connector> = Rc::new(WsConnector::new(gw.addr()));

        // Registration goes straight to a node, so the gateway carries exactly one session
        // per client; the gateway puts Bob on the node Alice is not on.
        let alice =
            client_via(dir.path(), "alice", &QuicConnector::pinned(n1.addr(), n1.fingerprint()).unwrap(), ws.clone())
                .await;
        let (_, h) = healthz(gw.addr()).await;
        let alice_node = h.nodes.iter().position(|n| n.sessions == 1).expect("alice's session is on one node");
        let bob =
            client_via(dir.path(), "bob", &QuicConnector::pinned(n2.addr(), n2.fingerprint()).unwrap(), ws.clone())
                .await;
        let (_, h) = healthz(gw.addr()).await;
        assert!(h.nodes.iter().all(|n| n.up && n.sessions == 1), "one session on each node: {h:?}");
        let conv = chat(&alice, &bob).await;

        // Alice's node dies.
        let (dead, alive) = if alice_node == 0 { (n1, n2) } else { (n2, n1) };
        let dead_addr = dead.addr().to_string();
        let killed = Instant::now();
        dead.stop();
        alice.send_text(&conv, "sent as the node died").await.unwrap();
        wait_texts(&bob, &conv, &["hi bob", "hello alice", "sent as the node died"]).await;
        let first_delivery = killed.elapsed();

        // Alice is back online through the gateway, on the other node; the dead one is down.
        assert!(online(&alice).await);
        let (status, h) = healthz(gw.addr()).await;
        assert_eq!(status, 200, "one node is still up");
        let dead_status = h.nodes.iter().find(|n| n.addr == dead_addr).unwrap();
        let alive_status = h.nodes.iter().find(|n| n.addr == alive.addr().to_string()).unwrap();
        assert!(!dead_status.up && dead_status.sessions == 0, "{h:?}");
        assert!(alive_status.up && alive_status.sessions == 2, "both sessions on the living node: {h:?}");

        // Messages keep flowing both ways.
        bob.send_text(&conv, "still here").await.unwrap();
        wait_texts(&alice, &conv, &["hi bob", "hello alice", "sent as the node died", "still here"]).await;
        println!("node failover: first message delivered {first_delivery:?} after the node was stopped");

        drop((alice, bob));
        gw.stop();
        alive.stop();
        db.drop_database().await;
    });
}

#[test]
fn bad_input_is_refused_clearly_and_other_sessions_keep_working() {
    run(async {
        let dir = tempfile::tempdir().unwrap();
        let node = sqlite_node(&dir.path().join("node"));
        let mut config = gateway_config(&[&node], dir.path());
        config.max_sessions_per_ip = 3;
        config.max_sessions = 4;
        config.max_message_bytes = 256 << 10;
        let gw = start_gateway(config, 1).await;
        let addr = gw.addr();
        let origin = format!("http://{addr}");

        // Alice registers directly (so her only session through the gateway is her live one)
        // and runs through the gateway.
        let quic = QuicConnector::pinned(node.addr(), node.fingerprint()).unwrap();
        let alice = client_via(dir.path(), "alice", &quic, Rc::new(WsConnector::new(addr))).await;
        let bob = client(&node, dir.path(), "bob").await;
        let conv = chat(&alice, &bob).await;
        wait_sessions_at_most(&gw, 1).await;

        // Too many sessions from one address: 429; a full gateway: 503.
        let a = raw_ws(addr, LOCAL, Some(&origin)).await.expect("second session from 127.0.0.1");
        let b = raw_ws(addr, LOCAL, Some(&origin)).await.expect("third session from 127.0.0.1");
        assert_eq!(refused_status(raw_ws(addr, LOCAL, Some(&origin)).await), 429);
        let c = raw_ws(addr, local(2), None).await.expect("a session from another address");
        assert_eq!(refused_status(raw_ws(addr, local(3), None).await), 503);
        for mut ws in [a, b, c] {
            ws.close(None).await.unwrap();
            while ws.next().await.is_some() {}
        }
        wait_sessions_at_most(&gw, 1).await;

        // A wrong Origin: 403, before any session exists.
        assert_eq!(refused_status(raw_ws(addr, LOCAL, Some("https://evil.example")).await), 403);

        // A text frame: closed with 1003.
        let mut ws = raw_ws(addr, LOCAL, Some(&origin)).await.unwrap();
        send(&mut ws, Message::text("hello?")).await;
        let f = close_frame(&mut ws).await;
        assert_eq!((u16::from(f.code), f.reason.contains("binary")), (1003, true), "{f:?}");
        drop(ws);

        // A message over the limit: closed with 1009, even while the client is still sending.
        let ws = raw_ws(addr, LOCAL, Some(&origin)).await.unwrap();
        let (mut tx, mut rx) = ws.split();
        let big = Message::binary(vec![0u8; 300 << 10]);
        let sending = async move {
            let _ = futures::SinkExt::send(&mut tx, big).await;
            tx
        };
        let (tx, f) = futures::join!(sending, close_frame(&mut rx));
        assert_eq!(u16::from(f.code), 1009, "{f:?}");
        assert!(f.reason.contains(&(256u32 << 10).to_string()), "the reason says the limit: {f:?}");
        drop((tx, rx));

        // Garbage that is not Cap'n Proto: the node ends the stream, the gateway closes with 1011.
        let mut ws = raw_ws(addr, LOCAL, Some(&origin)).await.unwrap();
        send(&mut ws, Message::Binary(Bytes::from_static(&[0xff; 64]))).await;
        let f = close_frame(&mut ws).await;
        assert_eq!(u16::from(f.code), 1011, "{f:?}");
        drop(ws);

        // Nothing of it hurt anyone else.
        alice.send_text(&conv, "still fine?").await.unwrap();
        wait_texts(&bob, &conv, &["hi bob", "hello alice", "still fine?"]).await;
        bob.send_text(&conv, "all good").await.unwrap();
        wait_texts(&alice, &conv, &["hi bob", "hello alice", "still fine?", "all good"]).await;
        let (status, h) = healthz(addr).await;
        assert_eq!((status, h.nodes[0].up), (200, true));
        gw.stop();
        node.stop();
    });
}

#[test]
fn idle_sessions_are_closed_but_pings_keep_them_open() {
    run(async {
        let dir = tempfile::tempdir().unwrap();
        let node = sqlite_node(&dir.path().join("node"));
        let mut config = gateway_config(&[&node], dir.path());
        config.idle_timeout_secs = 1;
        let gw = start_gateway(config, 1).await;

        let mut quiet = raw_ws(gw.addr(), LOCAL, None).await.unwrap();
        let pinging = raw_ws(gw.addr(), LOCAL, None).await.unwrap();
        let (mut ping_tx, mut ping_rx) = pinging.split();
        let opened = Instant::now();

        // One stays quiet; the other pings every 300 ms for three seconds, then stops.
        let pinger = async {
            for _ in 0..10 {
                futures::SinkExt::send(&mut ping_tx, Message::Ping(Bytes::new())).await.unwrap();
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
        };
        let pinged_close = async {
            loop {
                match ping_rx.next().await {
                    Some(Ok(Message::Pong(_))) => continue,
                    Some(Ok(Message::Close(f))) => return (opened.elapsed(), f),
                    other => panic!("unexpected {other:?}"),
                }
            }
        };
        let quiet_close = async {
            let f = close_frame(&mut quiet).await;
            (opened.elapsed(), f)
        };
        let ((), (quiet_lived, quiet_frame), (pinged_lived, f)) = futures::join!(pinger, quiet_close, pinged_close);

        // The quiet one is closed after about a second, the pinging one a second after its
        // last ping.
        assert_eq!(u16::from(quiet_frame.code), 1000, "{quiet_frame:?}");
        assert!(quiet_frame.reason.contains("idle"), "{quiet_frame:?}");
        assert!(
            quiet_lived >= Duration::from_millis(900) && quiet_lived < Duration::from_millis(2_500),
            "{quiet_lived:?}"
        );
        assert!(pinged_lived >= Duration::from_millis(3_500), "pings kept it open: {pinged_lived:?}");
        assert_eq!(f.map(|f| u16::from(f.code)), Some(1000));
        gw.stop();
        node.stop();
    });
}
