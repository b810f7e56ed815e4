//! HTTPS, HTTP/3 and WebTransport on a real gateway: the app over HTTP/3 with the same headers
//! and types, Alt-Svc on HTTPS, `/transport.json`, the development certificate and its
//! renewal, a native WebTransport client chatting through real nodes, and every refusal on
//! the HTTP/3 side with others served afterwards.

mod support;

use std::io::Read as _;
use std::net::{IpAddr, SocketAddr};
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use base64::Engine as _;
use qpq_gateway::transport_info::TransportInfo;
use qpq_gateway::Config as GatewayConfig;
use qpq_native::QuicConnector;
use sha2::{Digest, Sha256};
use support::h3client::{self, WtConnector};
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const LOCAL: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);
const DAY: u64 = 86_400;

fn local(n: u8) -> IpAddr {
    IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, n))
}

/// An index.html and a compressible .wasm in `dir/www` and `dir/pkg`.
fn write_site(dir: &std::path::Path) -> Vec<u8> {
    let (www, pkg) = (dir.join("www"), dir.join("pkg"));
    std::fs::create_dir_all(&www).unwrap();
    std::fs::create_dir_all(&pkg).unwrap();
    std::fs::write(www.join("index.html"), "<!doctype html><title>qpq</title>").unwrap();
    let wasm: Vec<u8> = b"\0asm\x01\0\0\0".iter().copied().chain((0..8192u32).map(|i| (i % 7) as u8)).collect();
    std::fs::write(pkg.join("qpq_web_bg.wasm"), &wasm).unwrap();
    wasm
}

/// A gateway with no reachable node (enough for everything but sessions).
fn gateway_without_nodes(dir: &std::path::Path, adjust: impl FnOnce(&mut GatewayConfig)) -> qpq_gateway::RunningGateway {
    write_site(dir);
    let mut c = GatewayConfig::for_tests(&[("127.0.0.1:9".parse().unwrap(), &"00".repeat(32))], dir.join("www"), dir.join("pkg"));
    adjust(&mut c);
    qpq_gateway::spawn(c).expect("gateway starts")
}

fn pin(gw: &qpq_gateway::RunningGateway) -> Vec<[u8; 32]> {
    gw.state().certificates().expect("HTTPS is on").info().published_hashes()
}

fn header<'a>(resp: &'a http::Response<()>, name: &str) -> &'a str {
    resp.headers().get(name).map(|v| v.to_str().unwrap()).unwrap_or("")
}

async fn transport_json(addr: SocketAddr) -> TransportInfo {
    let (status, body) = http_get(addr, "/transport.json").await;
    assert_eq!(status, 200);
    serde_json::from_slice(&body).expect("transport.json is JSON")
}

#[test]
fn http3_serves_the_app_with_the_same_headers_and_types() {
    run(async {
        let dir = tempfile::tempdir().unwrap();
        let gw = gateway_without_nodes(dir.path(), |_| {});
        let https = gw.https_addr().unwrap();
        let wasm = std::fs::read(dir.path().join("pkg/qpq_web_bg.wasm")).unwrap();
        let mut h3 = h3client::connect(https, LOCAL, pin(&gw)).await.expect("HTTP/3 connects");
        let csp = qpq_gateway::security::content_security_policy("'none'");

        let (resp, body) = h3client::get(&mut h3, https, "/", &[]).await;
        assert_eq!(resp.status(), 200);
        assert!(header(&resp, "content-type").starts_with("text/html"));
        assert_eq!(header(&resp, "content-security-policy"), csp);
        assert_eq!(header(&resp, "x-content-type-options"), "nosniff");
        assert_eq!(header(&resp, "cache-control"), "no-cache");
        assert!(String::from_utf8(body).unwrap().contains("<title>qpq</title>"));

        let (resp, body) = h3client::get(&mut h3, https, "/pkg/qpq_web_bg.wasm", &[("accept-encoding", "br")]).await;
        assert_eq!(resp.status(), 200);
        assert_eq!(header(&resp, "content-type"), "application/wasm");
        assert_eq!(header(&resp, "content-encoding"), "br");
        assert_eq!(header(&resp, "content-security-policy"), csp);
        let mut plain = Vec::new();
        brotli_decompressor::Decompressor::new(&body[..], 4096).read_to_end(&mut plain).unwrap();
        assert_eq!(plain, wasm, "the .wasm round-trips over HTTP/3");

        let (resp, _) = h3client::get(&mut h3, https, "/no/such/file", &[]).await;
        assert_eq!(resp.status(), 404);
        assert_eq!(header(&resp, "content-security-policy"), csp, "refusals carry the headers too");

        let (resp, body) = h3client::get(&mut h3, https, "/transport.json", &[]).await;
        assert_eq!(resp.status(), 200);
        let info: TransportInfo = serde_json::from_slice(&body).unwrap();
        assert_eq!(info.webtransport.unwrap().url, format!("https://127.0.0.1:{}/wt", https.port()));
        drop(h3);
        gw.stop();
    });
}

#[test]
fn https_on_tcp_speaks_http2_and_http11_and_announces_http3() {
    run(async {
        let dir = tempfile::tempdir().unwrap();
        let gw = gateway_without_nodes(dir.path(), |_| {});
        let https = gw.https_addr().unwrap();
        let tls = |alpn: &[&[u8]], pins: Vec<[u8; 32]>| {
            let provider = Arc::new(rustls::crypto::ring::default_provider());
            let mut c = rustls::ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .unwrap()
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(qpq_quic::PinnedVerifier::new(pins)))
                .with_no_client_auth();
            c.alpn_protocols = alpn.iter().map(|a| a.to_vec()).collect();
            tokio_rustls::TlsConnector::from(Arc::new(c))
        };
        let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();

        // HTTP/2 is chosen when the client offers it.
        let tcp = tokio::net::TcpStream::connect(https).await.unwrap();
        let s = tls(&[b"h2", b"http/1.1"], pin(&gw)).connect(name.clone(), tcp).await.expect("TLS handshake");
        assert_eq!(s.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
        drop(s);

        // HTTP/1.1: the response announces HTTP/3 on the same port and has the usual headers.
        let tcp = tokio::net::TcpStream::connect(https).await.unwrap();
        let mut s = tls(&[b"http/1.1"], pin(&gw)).connect(name, tcp).await.expect("TLS handshake");
        s.write_all(format!("GET / HTTP/1.1\r\nHost: {https}\r\nConnection: close\r\n\r\n").as_bytes()).await.unwrap();
        let mut raw = Vec::new();
        s.read_to_end(&mut raw).await.unwrap();
        let text = String::from_utf8_lossy(&raw).to_ascii_lowercase();
        assert!(text.starts_with("http/1.1 200"), "{text}");
        assert!(text.contains(&format!("alt-svc: h3=\":{}\"; ma=86400\r\n", https.port())), "{text}");
        assert!(text.contains("content-security-policy: default-src 'self'"), "{text}");

        // The plain listener does not announce it (browsers would not use it from http://).
        let mut plain = tokio::net::TcpStream::connect(gw.addr()).await.unwrap();
        plain.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").await.unwrap();
        let mut raw = Vec::new();
        plain.read_to_end(&mut raw).await.unwrap();
        assert!(!String::from_utf8_lossy(&raw).to_ascii_lowercase().contains("alt-svc"));
        gw.stop();

        // Without HTTP/3 nothing is announced, and transport.json offers no WebTransport.
        let dir = tempfile::tempdir().unwrap();
        let gw = gateway_without_nodes(dir.path(), |c| c.no_http3 = true);
        assert_eq!(transport_json(gw.addr()).await, TransportInfo { webtransport: None });
        let tcp = tokio::net::TcpStream::connect(gw.https_addr().unwrap()).await.unwrap();
        let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
        let mut s = tls(&[b"http/1.1"], pin(&gw)).connect(name, tcp).await.expect("TLS handshake");
        s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").await.unwrap();
        let mut raw = Vec::new();
        s.read_to_end(&mut raw).await.unwrap();
        assert!(!String::from_utf8_lossy(&raw).to_ascii_lowercase().contains("alt-svc"));
        gw.stop();
    });
}

#[test]
fn transport_json_gives_the_webtransport_url_and_the_development_certificate_hash() {
    run(async {
        let dir = tempfile::tempdir().unwrap();
        let gw = gateway_without_nodes(dir.path(), |_| {});
        let https = gw.https_addr().unwrap();
        let info = transport_json(gw.addr()).await.webtransport.expect("WebTransport is offered");
        assert_eq!(info.url, format!("https://127.0.0.1:{}/wt", https.port()));

        // The hash is the certificate's the gateway presents, which is short-lived ECDSA.
        let h3 = h3client::connect(https, LOCAL, pin(&gw)).await.unwrap();
        let cert = h3client::peer_certificate(&h3.quic);
        let sha = Sha256::digest(cert.as_ref());
        assert_eq!(info.cert_hashes, vec![base64::engine::general_purpose::STANDARD.encode(sha)]);
        let (not_before, not_after) = qpq_quic::validity(cert.as_ref()).unwrap();
        let span = not_after.duration_since(not_before).unwrap();
        assert!(span < Duration::from_secs(14 * DAY), "browsers accept at most 14 days: {span:?}");
        assert_eq!(span, Duration::from_secs(13 * DAY));
        assert!(not_before < SystemTime::now() && SystemTime::now() < not_after);
        drop(h3);
        gw.stop();

        // A configured certificate: pages trust it through its CA, so no hashes.
        let dir = tempfile::tempdir().unwrap();
        let bundle = qpq_quic::CertificateBundle::generate(&["localhost".into()], Duration::from_secs(30 * DAY)).unwrap();
        let pem = |label: &str, der: &[u8]| {
            let b64 = base64::engine::general_purpose::STANDARD.encode(der);
            let lines: Vec<&str> = b64.as_bytes().chunks(64).map(|c| std::str::from_utf8(c).unwrap()).collect();
            format!("-----BEGIN {label}-----\n{}\n-----END {label}-----\n", lines.join("\n"))
        };
        std::fs::write(dir.path().join("cert.pem"), pem("CERTIFICATE", bundle.chain[0].as_ref())).unwrap();
        std::fs::write(dir.path().join("key.pem"), pem("PRIVATE KEY", bundle.key.secret_der())).unwrap();
        let gw = gateway_without_nodes(dir.path(), |c| {
            c.tls_cert = Some(dir.path().join("cert.pem"));
            c.tls_key = Some(dir.path().join("key.pem"));
        });
        let info = transport_json(gw.addr()).await.webtransport.unwrap();
        assert!(info.cert_hashes.is_empty(), "{info:?}");
        let h3 = h3client::connect(gw.https_addr().unwrap(), LOCAL, vec![bundle.sha256()]).await.expect("the configured certificate is presented");
        drop(h3);
        gw.stop();
    });
}

#[test]
fn the_development_certificate_is_renewed_while_the_gateway_runs() {
    run(async {
        let dir = tempfile::tempdir().unwrap();
        // 8 s certificates renewed 6 s before they end: the successor is announced about a
        // second after start, and presented three seconds later.
        let gw = gateway_without_nodes(dir.path(), |c| {
            c.dev_cert_validity_secs = 8;
            c.dev_cert_renew_before_secs = 6;
        });
        let certs = gw.state().certificates().unwrap().clone();
        let first = certs.info();
        let mut watch = certs.watch();
        let wait = |watch: &mut tokio::sync::watch::Receiver<qpq_gateway::tls::CertificateInfo>, what: &'static str, f: Box<dyn Fn(&qpq_gateway::tls::CertificateInfo) -> bool>| {
            let mut w = watch.clone();
            async move {
                tokio::time::timeout(Duration::from_secs(15), w.wait_for(|i| f(i))).await.unwrap_or_else(|_| panic!("{what}")).unwrap().clone()
            }
        };
        let b64 = |h: &[u8; 32]| base64::engine::general_purpose::STANDARD.encode(h);

        // Step 1: the successor is announced; connections still get the current certificate.
        let announced = wait(&mut watch, "a successor is announced", Box::new(|i| i.next.is_some())).await;
        let next = announced.next.unwrap();
        assert_eq!(announced.current, first.current);
        let info = transport_json(gw.addr()).await.webtransport.unwrap();
        assert_eq!(info.cert_hashes, vec![b64(&first.current), b64(&next)], "both during the overlap");
        let before = h3client::connect(gw.https_addr().unwrap(), LOCAL, vec![first.current]).await.expect("the current one is presented");

        // Step 2: new connections get the successor; the open connection keeps working.
        let switched = wait(&mut watch, "the successor is presented", Box::new(move |i| i.current == next)).await;
        assert!(switched.current_not_after > first.current_not_after);
        let info = transport_json(gw.addr()).await.webtransport.unwrap();
        assert_eq!(info.cert_hashes[0], b64(&next));
        assert!(!info.cert_hashes.contains(&b64(&first.current)), "the old one is no longer listed");
        let after = h3client::connect(gw.https_addr().unwrap(), LOCAL, vec![next]).await.expect("the new one is presented");
        assert_eq!(Sha256::digest(h3client::peer_certificate(&after.quic).as_ref()).as_slice(), &next[..]);
        assert!(h3client::connect(gw.https_addr().unwrap(), LOCAL, vec![first.current]).await.is_err(), "not the old one");
        assert!(before.quic.close_reason().is_none(), "open connections are not disturbed");
        drop((before, after));
        gw.stop();
    });
}

fn wt_connector(gw: &qpq_gateway::RunningGateway) -> WtConnector {
    WtConnector { addr: gw.https_addr().unwrap(), pins: pin(gw), origin: Some(format!("http://{}", gw.addr())) }
}

#[test]
fn a_native_webtransport_client_chats_with_a_client() {
    run(async {
        let dir = tempfile::tempdir().unwrap();
        let node = sqlite_node(&dir.path().join("node"));
        let gw = start_gateway(gateway_config(&[&node], dir.path()), 1).await;
        let quic = QuicConnector::pinned(node.addr(), node.fingerprint()).unwrap();
        let alice = client_via(dir.path(), "alice", &quic, Rc::new(wt_connector(&gw))).await;
        assert_eq!(alice.connection_state(), qpq_client::ConnState::Online { transport: "WebTransport".into() });
        let bob = client(&node, dir.path(), "bob").await;
        let conv = chat(&alice, &bob).await;
        for i in 0..5 {
            alice.send_text(&conv, &format!("a{i}")).await.unwrap();
        }
        let mut all: Vec<String> = vec!["hi bob".into(), "hello alice".into()];
        all.extend((0..5).map(|i| format!("a{i}")));
        wait_texts_unordered(&bob, &conv, &all).await;
        wait_sessions_at_most(&gw, 1).await;
        let (_, health) = healthz(gw.addr()).await;
        assert_eq!(health.nodes[0].sessions, 1, "alice's WebTransport session is counted: {health:?}");
        drop((alice, bob));
        gw.stop();
        node.stop();
    });
}

/// A raw WebTransport session from `from`, or the refusal's status.
async fn raw_wt(gw: &qpq_gateway::RunningGateway, from: IpAddr, path: &str, origin: Option<&str>) -> Result<(h3client::H3, h3client::H3Stream), (http::StatusCode, String)> {
    let https = gw.https_addr().unwrap();
    let mut h3 = h3client::connect(https, from, pin(gw)).await.expect("HTTP/3 connects");
    let connect = h3client::connect_wt(&mut h3, https, path, origin).await?;
    Ok((h3, connect))
}

#[test]
fn webtransport_refusals_are_clear_and_others_keep_chatting() {
    run(async {
        let dir = tempfile::tempdir().unwrap();
        let node = sqlite_node(&dir.path().join("node"));
        let mut config = gateway_config(&[&node], dir.path());
        config.max_sessions_per_ip = 3;
        config.max_sessions = 4;
        config.max_message_bytes = 256 << 10;
        let gw = start_gateway(config, 1).await;
        let origin = format!("http://{}", gw.addr());

        // Alice registers directly and runs over WebTransport; Bob speaks QUIC to the node.
        let quic = QuicConnector::pinned(node.addr(), node.fingerprint()).unwrap();
        let alice = client_via(dir.path(), "alice", &quic, Rc::new(wt_connector(&gw))).await;
        let bob = client(&node, dir.path(), "bob").await;
        let conv = chat(&alice, &bob).await;
        wait_sessions_at_most(&gw, 1).await;

        // A CONNECT elsewhere than /wt: 404.
        let (status, body) = raw_wt(&gw, LOCAL, "/elsewhere", Some(&origin)).await.err().expect("refused");
        assert_eq!((status.as_u16(), body.contains("/wt")), (404, true), "{body}");
        // A foreign page: 403.
        let (status, body) = raw_wt(&gw, LOCAL, "/wt", Some("https://evil.example")).await.err().expect("refused");
        assert_eq!((status.as_u16(), body.contains("origin")), (403, true), "{body}");

        // Too many sessions from one address: 429; a full gateway: 503.
        let a = raw_wt(&gw, LOCAL, "/wt", Some(&origin)).await.expect("second session from 127.0.0.1");
        let b = raw_wt(&gw, LOCAL, "/wt", None).await.expect("third session from 127.0.0.1");
        let (status, body) = raw_wt(&gw, LOCAL, "/wt", Some(&origin)).await.err().expect("refused");
        assert_eq!((status.as_u16(), body.contains("too many sessions")), (429, true), "{body}");
        let c = raw_wt(&gw, local(2), "/wt", None).await.expect("a session from another address");
        let (status, _) = raw_wt(&gw, local(3), "/wt", None).await.err().expect("refused");
        assert_eq!(status.as_u16(), 503);
        drop((a, b, c));
        wait_sessions_at_most(&gw, 1).await;

        // Garbage (framed, but not Cap'n Proto RPC): the node ends the stream, the gateway
        // closes the session with 1011 and says why.
        let (h3, mut connect) = raw_wt(&gw, LOCAL, "/wt", Some(&origin)).await.unwrap();
        let (mut send, _recv) = h3client::open_wt_stream(&h3.quic, &connect).await;
        let mut garbage = vec![0u8, 0, 0, 0, 8, 0, 0, 0];
        garbage.extend([0xff; 64]);
        send.write_all(&garbage).await.unwrap();
        let (code, reason) = h3client::close_info(&mut connect).await;
        assert_eq!((code, reason.as_str()), (1011, "the server node ended this session"));
        drop((send, connect, h3));

        // A message over the limit: 1009, with the limit in the reason, even while the
        // client is still sending.
        let (h3, mut connect) = raw_wt(&gw, LOCAL, "/wt", Some(&origin)).await.unwrap();
        let (mut send, _recv) = h3client::open_wt_stream(&h3.quic, &connect).await;
        let mut big = vec![0u8, 0, 0, 0];
        big.extend(((300u32 << 10) / 8).to_le_bytes());
        big.extend(vec![0u8; 300 << 10]);
        let sending = async move {
            let _ = send.write_all(&big).await;
            send
        };
        let (send, (code, reason)) = futures::join!(sending, h3client::close_info(&mut connect));
        assert_eq!(code, 1009, "{reason}");
        assert!(reason.contains(&(256u32 << 10).to_string()), "the reason says the limit: {reason}");
        drop((send, connect, h3));

        // Nothing of it hurt anyone else.
        alice.send_text(&conv, "still fine?").await.unwrap();
        wait_texts(&bob, &conv, &["hi bob", "hello alice", "still fine?"]).await;
        bob.send_text(&conv, "all good").await.unwrap();
        wait_texts(&alice, &conv, &["hi bob", "hello alice", "still fine?", "all good"]).await;
        assert_eq!(alice.connection_state(), qpq_client::ConnState::Online { transport: "WebTransport".into() });
        let (status, h) = healthz(gw.addr()).await;
        assert_eq!((status, h.nodes[0].up), (200, true));
        drop((alice, bob));
        gw.stop();
        node.stop();
    });
}

#[test]
fn webtransport_sessions_close_with_a_reason_when_idle_when_the_node_goes_and_on_shutdown() {
    run(async {
        let dir = tempfile::tempdir().unwrap();
        let node = sqlite_node(&dir.path().join("node"));
        let mut config = gateway_config(&[&node], dir.path());
        config.idle_timeout_secs = 1;
        let gw = start_gateway(config, 1).await;

        // Idle: nothing moves for a second.
        let (h3, mut connect) = raw_wt(&gw, LOCAL, "/wt", None).await.unwrap();
        let (_send, _recv) = h3client::open_wt_stream(&h3.quic, &connect).await;
        let (code, reason) = h3client::close_info(&mut connect).await;
        assert_eq!((code, reason.as_str()), (1000, "idle for 1 s"));
        drop((connect, h3));

        // The gateway shuts down: 1001.
        let (h3, mut connect) = raw_wt(&gw, LOCAL, "/wt", None).await.unwrap();
        let (_send, _recv) = h3client::open_wt_stream(&h3.quic, &connect).await;
        let stopping = std::thread::spawn(move || gw.stop());
        let (code, reason) = h3client::close_info(&mut connect).await;
        assert_eq!((code, reason.as_str()), (1001, "the gateway is shutting down"));
        drop((connect, h3));
        stopping.join().unwrap();

        // The node goes away: 1012, reconnect.
        let mut config = gateway_config(&[&node], dir.path());
        config.idle_timeout_secs = 60;
        let gw = start_gateway(config, 1).await;
        let (h3, mut connect) = raw_wt(&gw, LOCAL, "/wt", None).await.unwrap();
        let (_send, _recv) = h3client::open_wt_stream(&h3.quic, &connect).await;
        wait_sessions_at_most(&gw, 1).await;
        node.stop();
        let (code, reason) = h3client::close_info(&mut connect).await;
        assert_eq!((code, reason.as_str()), (1012, "the server node went away; reconnect"));
        drop((connect, h3));
        gw.stop();
    });
}

#[test]
fn the_echo_endpoint_exists_only_with_bench_echo() {
    use futures::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    run(async {
        // Without the flag: no /echo over HTTP, WebSocket or WebTransport.
        let dir = tempfile::tempdir().unwrap();
        let gw = gateway_without_nodes(dir.path(), |_| {});
        assert_eq!(http_get(gw.addr(), "/echo").await.0, 404);
        match tokio_tungstenite::connect_async(format!("ws://{}/echo", gw.addr())).await {
            Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => assert_eq!(resp.status(), 404),
            other => panic!("expected 404, got {:?}", other.map(|_| ())),
        }
        let (status, _) = raw_wt(&gw, LOCAL, "/echo", None).await.err().expect("refused");
        assert_eq!(status.as_u16(), 404);
        gw.stop();

        // With it: a WebSocket and a WebTransport stream get their bytes back, no node needed.
        let dir = tempfile::tempdir().unwrap();
        let gw = gateway_without_nodes(dir.path(), |c| c.bench_echo = true);
        let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{}/echo", gw.addr())).await.expect("an echo socket");
        for size in [1usize, 100, 64 << 10] {
            let payload: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
            ws.send(Message::Binary(payload.clone().into())).await.unwrap();
            match tokio::time::timeout(Duration::from_secs(5), ws.next()).await.expect("an answer") {
                Some(Ok(Message::Binary(b))) => assert_eq!(b.as_ref(), &payload[..]),
                other => panic!("expected the bytes back, got {other:?}"),
            }
        }
        assert_eq!(gw.state().limiter().active(), 1, "an echo session counts against the limits");
        drop(ws);

        let (h3, connect) = raw_wt(&gw, LOCAL, "/echo", Some(&format!("http://{}", gw.addr()))).await.expect("an echo session");
        let (mut send, mut recv) = h3client::open_wt_stream(&h3.quic, &connect).await;
        let payload: Vec<u8> = (0..200_000u32).map(|i| (i % 253) as u8).collect();
        let writing = async {
            send.write_all(&payload).await.unwrap();
            send
        };
        let reading = async {
            let mut back = vec![0u8; payload.len()];
            recv.read_exact(&mut back).await.expect("the bytes come back");
            back
        };
        let (_send, back) = futures::join!(writing, reading);
        assert!(back == payload, "the stream's bytes come back unchanged");
        let (status, _) = raw_wt(&gw, LOCAL, "/echo", Some("https://evil.example")).await.err().expect("refused");
        assert_eq!(status.as_u16(), 403, "the origin check applies to the echo too");
        drop((connect, h3));
        gw.stop();
    });
}
