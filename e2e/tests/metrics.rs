//! The operator's view: `/metrics`, `/livez` and `/readyz` on a node and a gateway, scraped
//! over real TCP while real clients chat through them.

mod support;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use qpq_server::Config;
use support::*;

/// The value of one series (`name{labels}` exactly as exported), if present.
fn value(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|l| l.strip_prefix(series).and_then(|rest| rest.strip_prefix(' ')).and_then(|v| v.parse().ok()))
}

async fn scrape(addr: SocketAddr) -> String {
    let (status, body) = http_get(addr, "/metrics").await;
    assert_eq!(status, 200);
    String::from_utf8(body).expect("UTF-8 text")
}

/// Scrapes until `series` is at least `min`; returns that scrape.
async fn scrape_until(addr: SocketAddr, series: &str, min: f64) -> String {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let text = scrape(addr).await;
        if value(&text, series).is_some_and(|v| v >= min) {
            return text;
        }
        assert!(tokio::time::Instant::now() < deadline, "{series} never reached {min}:\n{text}");
        sleep(100).await;
    }
}

/// Every line is a comment or `name{labels} number`, and every family has HELP and TYPE.
fn well_formed(text: &str) {
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# ") {
            assert!(rest.starts_with("HELP ") || rest.starts_with("TYPE "), "{line}");
            continue;
        }
        let (_, v) = line.rsplit_once(' ').unwrap_or_else(|| panic!("no value: {line}"));
        assert!(v == "+Inf" || v.parse::<f64>().is_ok(), "not a number: {line}");
    }
    let helps = text.lines().filter(|l| l.starts_with("# HELP ")).count();
    assert_eq!(helps, text.lines().filter(|l| l.starts_with("# TYPE ")).count());
}

#[test]
fn nodes_and_gateways_export_metrics_and_probes() {
    run(async {
        let dir = tempfile::tempdir().unwrap();
        let mut c = Config::for_tests(dir.path().join("node"));
        c.metrics_listen = Some("127.0.0.1:0".parse().unwrap());
        c.rates.sends_per_min = 10;
        let node = qpq_server::spawn(c).expect("node starts");
        let nm = node.metrics_addr().expect("the node serves metrics");
        assert_eq!(http_get(nm, "/livez").await, (200, b"alive\n".to_vec()));
        assert_eq!(http_get(nm, "/readyz").await, (200, b"ready\n".to_vec()));
        assert_eq!(http_get(nm, "/other").await.0, 404);

        let mut gc = gateway_config(&[&node], dir.path());
        gc.metrics_listen = Some("127.0.0.1:0".parse().unwrap());
        let gw = start_gateway(gc, 1).await;
        let gm = gw.metrics_addr().expect("the gateway serves metrics");
        assert_eq!(http_get(gm, "/readyz").await.0, 200);

        // Alice through the gateway's WebSocket, Bob straight to the node over QUIC.
        let alice = ws_client(gw.addr(), dir.path(), "alice").await;
        let bob = client(&node, dir.path(), "bob").await;
        let conv = chat(&alice, &bob).await;
        // Bob writes faster than the node's send rate: some enqueues are refused for now
        // (his client retries them later).
        for i in 0..12 {
            bob.send_text(&conv, &format!("burst {i}")).await.unwrap();
        }
        let text = scrape_until(nm, r#"qpq_node_rpc_calls_total{method="enqueue",outcome="rate_limited"}"#, 1.0).await;
        well_formed(&text);
        let v = |s: &str| value(&text, s).unwrap_or_else(|| panic!("{s} missing:\n{text}"));
        assert!(v(r#"qpq_node_rpc_calls_total{method="enqueue",outcome="ok"}"#) >= 2.0);
        assert!(v(r#"qpq_node_rpc_calls_total{method="login",outcome="ok"}"#) >= 2.0);
        assert!(v(r#"qpq_node_messages_accepted_total{kind="application"}"#) >= 2.0);
        assert!(v(r#"qpq_node_messages_accepted_total{kind="commit"}"#) >= 1.0);
        assert!(v("qpq_node_envelopes_out_total") >= 2.0);
        assert!(v("qpq_node_sessions") >= 2.0, "alice's (through the gateway) and bob's");
        assert!(v("qpq_node_subscriptions") >= 2.0);
        assert!(v("qpq_node_connections") >= 2.0, "the gateway's connection and bob's");
        assert!(v("qpq_node_streams") >= 2.0);
        assert!(v("qpq_node_queued_envelopes") >= 0.0);
        // A histogram's count is the number of calls of its method, whatever their outcome.
        let enqueues: f64 = text
            .lines()
            .filter(|l| l.starts_with(r#"qpq_node_rpc_calls_total{method="enqueue","#))
            .map(|l| l.rsplit_once(' ').unwrap().1.parse::<f64>().unwrap())
            .sum();
        let counted = v(r#"qpq_node_rpc_duration_seconds_count{method="enqueue"}"#);
        assert!(counted >= enqueues - 1.0 && counted <= enqueues + 1.0, "{counted} vs {enqueues}");
        assert_eq!(
            v(r#"qpq_node_rpc_duration_seconds_bucket{method="enqueue",le="+Inf"}"#),
            counted,
            "the +Inf bucket holds every observation"
        );
        for name in ["alice", "bob", "localhost"] {
            assert!(!text.contains(name), "the node's metrics name nobody ({name}):\n{text}");
        }

        // A page from a foreign origin is refused, and counted.
        let foreign = raw_ws(gw.addr(), IpAddr::V4(Ipv4Addr::LOCALHOST), Some("https://elsewhere.example")).await;
        assert_eq!(refused_status(foreign), 403);
        let text = scrape_until(gm, r#"qpq_gateway_sessions_refused_total{reason="origin"}"#, 1.0).await;
        well_formed(&text);
        let v = |s: &str| value(&text, s).unwrap_or_else(|| panic!("{s} missing:\n{text}"));
        assert!(v(r#"qpq_gateway_sessions_opened_total{transport="websocket"}"#) >= 1.0);
        assert!(v(r#"qpq_gateway_sessions{transport="websocket"}"#) >= 1.0, "alice's live session");
        assert!(v(r#"qpq_gateway_frames_total{direction="to_node"}"#) >= 1.0);
        assert!(v(r#"qpq_gateway_bytes_total{direction="to_client"}"#) >= 1.0);
        assert!(v(r#"qpq_gateway_session_setup_seconds_count{transport="websocket"}"#) >= 1.0);
        assert_eq!(v("qpq_gateway_nodes"), 1.0);
        assert_eq!(v("qpq_gateway_nodes_up"), 1.0);
        for name in ["alice", "bob", "127.0.0.1", "elsewhere"] {
            assert!(!text.contains(name), "the gateway's metrics name nobody ({name}):\n{text}");
        }

        // Without a node the gateway is alive but not ready.
        drop(alice);
        drop(bob);
        node.stop();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
        loop {
            let (status, body) = http_get(gm, "/readyz").await;
            if status == 503 {
                assert_eq!(body, b"not ready: no server node is up\n");
                break;
            }
            assert!(tokio::time::Instant::now() < deadline, "the gateway notices the node is gone");
            sleep(100).await;
        }
        assert_eq!(http_get(gm, "/livez").await.0, 200);
        let text = scrape(gm).await;
        assert_eq!(value(&text, "qpq_gateway_nodes_up"), Some(0.0));
        gw.stop();
    });
}
