//! Bounds everywhere, against a real node over QUIC: one subscription per session, calls in
//! flight per session, connections per address, streams per connection, rate limits per
//! account (logins, claims, sends) answered `rate_limited` with a retry time, quotas
//! (key packages, queue depth) answered `quota_exceeded`, fetch bounded by bytes, every
//! envelope given an expiry, application messages only of epochs every member can read, and
//! the gateway's limit on new sessions per address. After each refusal the node goes on
//! serving.

mod support;
#[path = "support/raw_group.rs"]
mod raw_group;

use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;

use futures::future::join_all;
use qpq_proto::node_capnp::session;
use qpq_proto::{ChannelId, ErrorCode, RemoteError};
use qpq_server::{Config, RunningNode};
use support::raw::{login, raw_account, try_login, Login, RawDevice};
use support::*;

fn node_with(dir: &std::path::Path, tweak: impl FnOnce(&mut Config)) -> RunningNode {
    let mut c = Config::for_tests(dir);
    tweak(&mut c);
    qpq_server::spawn(c).expect("node starts")
}

fn code_of(e: &capnp::Error) -> RemoteError {
    RemoteError::from_description(&e.extra)
}

/// A channel of `a` (logged in as `ad`) with `bd` added (a commit carrying a Welcome for it).
async fn channel_of_two(a: &Login, ad: &RawDevice, bd: &RawDevice, n: u8) -> ChannelId {
    let channel = ChannelId::from_slice(&[n; 32]).unwrap();
    let (mut group, info) = raw_group::RawGroup::create(ad, &channel);
    let cap = a.session.capability();
    let mut req = cap.create_channel_request();
    req.get().set_channel_id(channel.as_bytes());
    req.get().set_group_info(&info);
    req.send().promise.await.unwrap();
    let (commit, welcome) = group.add(&[bd]);
    let mut req = cap.commit_request();
    {
        let mut r = req.get().init_request();
        r.set_channel_id(channel.as_bytes());
        r.set_epoch(0);
        r.set_commit(&commit);
        r.set_welcome(&welcome);
        r.set_client_msg_id(&[n; 16]);
        qpq_proto::wire::write_device_address(r.init_add_devices(1).get(0), &bd.addr());
    }
    req.send().promise.await.unwrap();
    channel
}

/// Enqueues `payload` framed as a message of epoch 1, where [`channel_of_two`] leaves a channel.
async fn enqueue(s: &session::Client, channel: &ChannelId, payload: &[u8], id: u32, ttl: u32) -> Result<(), capnp::Error> {
    enqueue_at(s, channel, 1, payload, id, ttl).await
}

/// Enqueues `payload` framed as a message of `epoch`.
async fn enqueue_at(
    s: &session::Client,
    channel: &ChannelId,
    epoch: u64,
    payload: &[u8],
    id: u32,
    ttl: u32,
) -> Result<(), capnp::Error> {
    let mut req = s.enqueue_request();
    req.get().set_channel_id(channel.as_bytes());
    req.get().set_payload(&mls::application(channel, epoch, payload));
    let mut msg_id = [0u8; 16];
    msg_id[..4].copy_from_slice(&id.to_be_bytes());
    req.get().set_client_msg_id(&msg_id);
    req.get().set_ttl_seconds(ttl);
    req.send().promise.await.map(|_| ())
}

#[test]
fn a_session_has_one_subscription_and_a_bounded_number_of_calls_in_flight() {
    run(async {
        let dir = tempfile::tempdir().unwrap();
        let node = node_with(dir.path(), |c| c.max_calls_in_flight = 4);
        let (_, d) = raw_account(&node, "alice", 31, 1).await;
        let a = login(&node, &d[0]).await;

        let listener = || -> qpq_proto::node_capnp::listener::Client { capnp_rpc::new_client(NoListener) };
        let first = a.session.subscribe(listener(), 0).await.expect("the first subscription");
        let err = a.session.subscribe(listener(), 0).await.err().expect("a second one is refused");
        assert_eq!(err.remote_code(), Some(ErrorCode::QuotaExceeded), "{err}");
        drop(first);
        let mut again = None;
        for _ in 0..50 {
            match a.session.subscribe(listener(), 0).await {
                Ok(h) => {
                    again = Some(h);
                    break;
                }
                Err(_) => sleep(20).await,
            }
        }
        assert!(again.is_some(), "once the first is dropped a new subscription is accepted");

        // 200 pipelined calls at once: at most 4 are served together, the rest refused.
        let cap = a.session.capability();
        let calls = (0..200).map(|_| {
            let mut req = cap.fetch_request();
            req.get().set_limit(10);
            req.send().promise
        });
        let results = join_all(calls).await;
        let served = results.iter().filter(|r| r.is_ok()).count();
        let refused: Vec<RemoteError> = results.iter().filter_map(|r| r.as_ref().err()).map(code_of).collect();
        assert!(served >= 4, "calls within the bound are served ({served})");
        assert!(!refused.is_empty(), "calls past the bound are refused");
        assert!(refused.iter().all(|e| e.code == Some(ErrorCode::QuotaExceeded)), "{refused:?}");
        a.session.whoami().await.expect("the session goes on");
        node.stop();
    });
}

struct NoListener;

impl qpq_proto::node_capnp::listener::Server for NoListener {}

#[test]
fn connections_per_address_and_streams_per_connection_are_capped() {
    run(async {
        let dir = tempfile::tempdir().unwrap();
        let node = node_with(dir.path(), |c| {
            c.max_connections_per_address = 2;
            c.max_streams_per_connection = 2;
        });
        let c1 = raw_connection(&node).await;
        let c2 = raw_connection(&node).await;
        let mut ep = qpq_quic::client_endpoint(node.addr()).unwrap();
        ep.set_default_client_config(
            qpq_quic::client_config(
                &qpq_quic::Trust::Pinned(vec![node.fingerprint_bytes()]),
                qpq_quic::ALPN_NODE,
                Duration::from_secs(10),
            )
            .unwrap(),
        );
        let third = tokio::time::timeout(Duration::from_secs(5), ep.connect(node.addr(), "localhost").unwrap())
            .await
            .expect("the refusal comes at once");
        assert!(third.is_err(), "a third connection from the address is refused");
        c2.close(0u32.into(), b"done");
        sleep(300).await;
        let c3 = raw_connection(&node).await;

        // Two streams at once on one connection; the third waits for one to end.
        let s1 = rpc(&c1).await;
        let _s2 = rpc(&c1).await;
        s1.hello("one").await.unwrap();
        let waiting = tokio::time::timeout(Duration::from_millis(500), c1.open_bi()).await;
        assert!(waiting.is_err(), "a third stream is not opened while two are");
        s1.close().await;
        let opened = tokio::time::timeout(Duration::from_secs(5), c1.open_bi()).await;
        assert!(opened.is_ok(), "a stream is opened once another ended");
        rpc(&c3).await.hello("still serving").await.expect("the node goes on");
        node.stop();
    });
}

#[test]
fn a_connection_gets_more_streams_as_it_uses_them_up_to_the_cap() {
    run(async {
        let dir = tempfile::tempdir().unwrap();
        // Above the 32 a connection starts with (the node raises its allowance as streams open).
        let node = node_with(dir.path(), |c| c.max_streams_per_connection = 100);
        let c = raw_connection(&node).await;
        let mut sessions = Vec::new();
        for i in 0..100 {
            let s = tokio::time::timeout(Duration::from_secs(5), rpc(&c))
                .await
                .unwrap_or_else(|_| panic!("stream {i} of the 100 allowed is opened"));
            s.hello("open").await.unwrap();
            sessions.push(s);
        }
        let waiting = tokio::time::timeout(Duration::from_millis(500), c.open_bi()).await;
        assert!(waiting.is_err(), "a 101st stream is not opened while 100 are");
        // quinn hands out new stream credit once an eighth of the allowance is free.
        for _ in 0..13 {
            sessions.pop().unwrap().close().await;
        }
        let opened = tokio::time::timeout(Duration::from_secs(5), c.open_bi()).await;
        assert!(opened.is_ok(), "a stream is opened once others ended");
        node.stop();
    });
}

#[test]
fn logins_claims_and_sends_are_rate_limited_per_account_with_a_retry_time() {
    run(async {
        let dir = tempfile::tempdir().unwrap();
        let node = node_with(dir.path(), |c| {
            c.rates.logins_per_min = 3;
            c.rates.claims_per_min = 2;
            c.rates.sends_per_min = 5;
        });
        let (_, alice) = raw_account(&node, "alice", 33, 1).await; // one login
        let (_, bob) = raw_account(&node, "bob", 35, 1).await;
        let a = login(&node, &alice[0]).await;
        let b = login(&node, &bob[0]).await;
        let _third = login(&node, &alice[0]).await;
        let conn = rpc(&raw_connection(&node).await).await;
        let err = try_login(&conn, &alice[0]).await.err().expect("a fourth login within the minute");
        assert_eq!(err.remote_code(), Some(ErrorCode::RateLimited), "{err}");
        let retry = RemoteError::from_description(&err.to_string()).retry_after_ms().expect("a retry time");
        assert!(retry > 0 && retry <= 20_000, "one login comes back every 20 s: {retry} ms");
        // Another account is not held back.
        let conn = rpc(&raw_connection(&node).await).await;
        try_login(&conn, &bob[0]).await.expect("bob logs in");

        b.session.upload_key_packages(&[b"b1".to_vec(), b"b2".to_vec(), b"b3".to_vec()], None).await.unwrap();
        a.session.claim_key_packages(&bob[0].record.user).await.unwrap();
        a.session.claim_key_packages(&bob[0].record.user).await.unwrap();
        let err = a.session.claim_key_packages(&bob[0].record.user).await.expect_err("a third claim");
        assert_eq!(err.remote_code(), Some(ErrorCode::RateLimited));
        assert_eq!(b.session.key_package_count().await.unwrap(), 1, "the refused claim took nothing");

        let channel = channel_of_two(&a, &alice[0], &bob[0], 7).await; // the commit is a send
        let cap = a.session.capability();
        for i in 0..4 {
            enqueue(&cap, &channel, b"m", i, 0).await.expect("within the rate");
        }
        let err = enqueue(&cap, &channel, b"m", 99, 0).await.expect_err("past the rate");
        let e = code_of(&err);
        assert_eq!(e.code, Some(ErrorCode::RateLimited));
        assert!(e.retry_after_ms().is_some_and(|ms| ms > 0 && ms <= 12_000), "{e}");
        // Bob still sends.
        enqueue(&b.session.capability(), &channel, b"from bob", 1, 0).await.expect("another account sends");
        node.stop();
    });
}

#[test]
fn quotas_fetch_bytes_and_envelope_lifetimes() {
    run(async {
        let dir = tempfile::tempdir().unwrap();
        let node = node_with(dir.path(), |c| {
            c.max_key_packages_per_device = 5;
            c.max_queue_per_device = 4;
            c.envelope_days = 2;
        });
        let (_, alice) = raw_account(&node, "alice", 37, 1).await;
        let (_, bob) = raw_account(&node, "bob", 39, 1).await;
        let a = login(&node, &alice[0]).await;
        let b = login(&node, &bob[0]).await;

        let six: Vec<Vec<u8>> = (0..6).map(|i| format!("kp {i}").into_bytes()).collect();
        let err = a.session.upload_key_packages(&six, None).await.expect_err("six are one too many");
        assert_eq!(err.remote_code(), Some(ErrorCode::QuotaExceeded), "{err}");
        assert_eq!(a.session.key_package_count().await.unwrap(), 0, "nothing of it was stored");
        assert_eq!(a.session.upload_key_packages(&six[..5], None).await.unwrap(), 5);

        // Bob's queue: the Welcome and three messages of 1000 bytes fill it.
        let channel = channel_of_two(&a, &alice[0], &bob[0], 9).await;
        let cap = a.session.capability();
        for i in 0..3 {
            enqueue(&cap, &channel, &[i as u8; 1000], i, if i == 0 { 3600 } else { 0 }).await.unwrap();
        }
        let err = enqueue(&cap, &channel, b"one more", 50, 0).await.expect_err("bob's queue is full");
        assert_eq!(code_of(&err).code, Some(ErrorCode::QuotaExceeded));

        // Fetch bounded by bytes: past the first, at most maxBytes of payload.
        let fetch = |max_bytes: u32| {
            let mut req = b.session.capability().fetch_request();
            req.get().set_limit(100);
            req.get().set_max_bytes(max_bytes);
            req.send().promise
        };
        // Framed, each message is 1066 bytes; the Welcome is a real one.
        let welcome = b.session.fetch(0, 1).await.unwrap()[0].payload.len();
        let message = mls::application(&channel, 1, &[0; 1000]).len();
        let bound = welcome + 2 * message + message / 2;
        let r = fetch(bound as u32).await.unwrap();
        let got: Vec<qpq_proto::Envelope> = r
            .get()
            .unwrap()
            .get_envelopes()
            .unwrap()
            .iter()
            .map(|e| qpq_proto::wire::read_envelope(e).unwrap())
            .collect();
        let sizes: Vec<usize> = got.iter().map(|e| e.payload.len()).collect();
        assert_eq!(sizes, vec![welcome, message, message], "the Welcome and two messages fit in {bound} bytes, not three");
        let all = b.session.fetch(0, 100).await.unwrap();
        assert_eq!(all.len(), 4);
        // Every envelope expires: the Welcome (a commit's), and messages without a timer,
        // after the node's lifetime; a message's shorter timer wins.
        let day = 86_400_000;
        for e in &all {
            let ttl = if e.payload == mls::application(&channel, 1, &[0; 1000]) { 3_600_000 } else { 2 * day };
            assert_eq!(e.expires_at, e.server_time + ttl, "{:?} expires after {ttl} ms", e.kind);
        }
        // Once bob acknowledges, there is room again.
        b.session.ack(all.last().unwrap().seq).await.unwrap();
        enqueue(&cap, &channel, b"one more", 51, 0).await.expect("room again");
        node.stop();
    });
}

/// A listener that counts the envelopes it is given and answers each delivery, once
/// `answers` gives it a permit, with `stored(the batch's last sequence number)`.
struct Keeper {
    stored: fn(u64) -> u64,
    seen: Rc<Cell<usize>>,
    answers: Rc<tokio::sync::Semaphore>,
}

impl qpq_proto::node_capnp::listener::Server for Keeper {
    fn deliver(
        self: capnp::capability::Rc<Self>,
        params: qpq_proto::node_capnp::listener::DeliverParams,
        mut results: qpq_proto::node_capnp::listener::DeliverResults,
    ) -> impl std::future::Future<Output = Result<(), capnp::Error>> + 'static {
        let last = params.get().and_then(|p| p.get_envelopes()).map(|list| {
            self.seen.set(self.seen.get() + list.len() as usize);
            list.iter().map(|e| e.get_seq()).max().unwrap_or(0)
        });
        async move {
            self.answers.acquire().await.expect("open").forget();
            results.get().set_stored((self.stored)(last?));
            Ok(())
        }
    }
}

/// Waits up to 10 s for `done`.
async fn eventually(what: &str, done: impl Fn() -> bool) {
    for _ in 0..1000 {
        if done() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("{what} did not happen within 10 s");
}

/// How many envelopes the node holds for `b`'s device.
async fn queued(b: &Login) -> usize {
    b.session.fetch(0, 100).await.unwrap().len()
}

/// Waits up to 10 s for the node to hold `n` envelopes for `b`'s device.
async fn until_queued(b: &Login, n: usize) {
    for _ in 0..1000 {
        if queued(b).await == n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the node holds {} envelopes after 10 s, not {n}", queued(b).await);
}

#[test]
fn a_deliverys_answer_acknowledges_what_the_listener_stored_and_no_more() {
    run(async {
        let dir = tempfile::tempdir().unwrap();
        let node = node_with(dir.path(), |c| c.max_queue_per_device = 6);
        let (_, alice) = raw_account(&node, "alice", 37, 1).await;
        let (_, bob) = raw_account(&node, "bob", 39, 1).await;
        let a = login(&node, &alice[0]).await;
        let cap = a.session.capability();
        let channel = channel_of_two(&a, &alice[0], &bob[0], 9).await;
        for i in 0..4 {
            enqueue(&cap, &channel, &[i as u8; 100], i, 0).await.unwrap();
        }

        // A listener that says it stored nothing (as one from before answers carried it
        // does) leaves the queue as it was: the Welcome and four messages.
        let b = login(&node, &bob[0]).await;
        let seen = Rc::new(Cell::new(0));
        let answers = Rc::new(tokio::sync::Semaphore::new(1000));
        let listener = capnp_rpc::new_client(Keeper { stored: |_| 0, seen: seen.clone(), answers });
        let handle = b.session.subscribe(listener, 0).await.unwrap();
        eventually("the first listener being given five envelopes", || seen.get() == 5).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(queued(&b).await, 5, "nothing was acknowledged");
        drop(handle);
        b.quic.close(0u32.into(), b"done");

        // One that stores what it is given: its answers empty the queue, with no `ack` call.
        // It claims more than it was given, which settles only what it was: a message
        // queued while it held its first answer stays until that message's own answer.
        let b = login(&node, &bob[0]).await;
        let seen = Rc::new(Cell::new(0));
        let answers = Rc::new(tokio::sync::Semaphore::new(0));
        let listener = capnp_rpc::new_client(Keeper { stored: |_| u64::MAX, seen: seen.clone(), answers: answers.clone() });
        let _handle = b.session.subscribe(listener, 0).await.unwrap();
        eventually("the second listener being given five envelopes", || seen.get() == 5).await;
        enqueue(&cap, &channel, b"while held", 4, 0).await.unwrap();
        let err = enqueue(&cap, &channel, b"one too many", 5, 0).await.expect_err("bob's queue is full");
        assert_eq!(code_of(&err).code, Some(ErrorCode::QuotaExceeded));
        answers.add_permits(1);
        until_queued(&b, 1).await;
        eventually("the held message being delivered", || seen.get() == 6).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        let left = b.session.fetch(0, 100).await.unwrap();
        assert_eq!(left.len(), 1, "the held message is not settled by an answer given before it");
        assert_eq!(left[0].payload, mls::application(&channel, 1, b"while held"));
        enqueue(&cap, &channel, b"room again", 5, 0).await.expect("room again");
        answers.add_permits(2);
        eventually("the last message being delivered", || seen.get() == 7).await;
        until_queued(&b, 0).await;
        node.stop();
    });
}

#[test]
fn messages_the_newest_members_cannot_read_and_messages_of_future_epochs_are_refused() {
    run(async {
        let dir = tempfile::tempdir().unwrap();
        let node = node_with(dir.path(), |_| {});
        let (_, alice) = raw_account(&node, "alice", 43, 1).await;
        let (_, bob) = raw_account(&node, "bob", 45, 1).await;
        let a = login(&node, &alice[0]).await;
        // Bob joins in epoch 1 (a real MLS commit of epoch 0 adds him).
        let channel = channel_of_two(&a, &alice[0], &bob[0], 9).await;
        let cap = a.session.capability();
        let stale = code_of(&enqueue_at(&cap, &channel, 0, b"before bob", 1, 0).await.expect_err("epoch 0"));
        assert_eq!(stale.code, Some(ErrorCode::StaleEpoch), "{stale}");
        let future = code_of(&enqueue_at(&cap, &channel, 2, b"ahead", 2, 0).await.expect_err("epoch 2"));
        assert_eq!(future.code, Some(ErrorCode::BadRequest), "{future}");
        assert!(future.message.contains("epoch 2") && future.message.contains("at epoch 1"), "{future}");
        // The refused id goes through in the right epoch, and Bob gets that message only.
        enqueue_at(&cap, &channel, 1, b"for bob", 1, 0).await.expect("epoch 1");
        let b = login(&node, &bob[0]).await;
        let got: Vec<Vec<u8>> = b.session.fetch(0, 100).await.unwrap().into_iter().map(|e| e.payload).collect();
        assert_eq!(got.len(), 2, "the Welcome and the message");
        assert_eq!(got[1], mls::application(&channel, 1, b"for bob"));
        node.stop();
    });
}

#[test]
fn the_gateway_limits_new_sessions_per_address() {
    run(async {
        let dir = tempfile::tempdir().unwrap();
        let node = sqlite_node(dir.path());
        let mut config = gateway_config(&[&node], dir.path());
        config.sessions_per_min_per_ip = 2;
        let gw = start_gateway(config, 1).await;
        let addr = gw.addr();
        let from: std::net::IpAddr = "127.0.0.7".parse().unwrap();
        let first = raw_ws(addr, from, None).await.expect("first session");
        let second = raw_ws(addr, from, None).await.expect("second session");
        drop((first, second));
        let third = raw_ws(addr, from, None).await;
        match third {
            Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => {
                assert_eq!(resp.status().as_u16(), 429);
                let retry: u64 = resp.headers()["retry-after"].to_str().unwrap().parse().unwrap();
                assert!((1..=30).contains(&retry), "one new session every 30 s: Retry-After {retry}");
            }
            Err(e) => panic!("expected 429, got {e}"),
            Ok(_) => panic!("a third session within the minute was admitted"),
        }
        // Another address is not held back.
        raw_ws(addr, "127.0.0.8".parse().unwrap(), None).await.expect("another address");
        gw.stop();
        node.stop();
    });
}
