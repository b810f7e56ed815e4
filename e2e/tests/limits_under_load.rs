//! The limits under load, measured and checked in one run against a real node (SQLite, QUIC,
//! default limits): floods of registrations, logins, key-package claims and enqueues from
//! one address and one account are slowed with `rate_limited` while another person's
//! messages keep flowing — that person's delivery time during the flood against without it;
//! and the node's memory (this process's resident size: node and test clients share it)
//! under 1,000 pipelined fetches and 1,000 subscribe attempts on one session, against idle.
//! The figures are printed (BENCHMARKS.md records a run) and checked against loose bounds.

mod support;
#[path = "support/raw_group.rs"]
mod raw_group;

use std::cell::Cell;
use std::rc::Rc;
use std::time::Instant;

use futures::future::join_all;
use qpq_proto::{ErrorCode, RemoteError};
use support::raw::{login, raw_account, try_login, RawUser};
use support::*;

/// Resident set size of this process, in KiB.
fn rss_kib() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").expect("Linux /proc");
    let pages: u64 = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
    pages * 4
}

/// Median time for `n` messages from `from` to show at `to`, one after another.
async fn delivery_ms(from: &qpq_native::NativeClient, to: &qpq_native::NativeClient, conv: &qpq_proto::ChannelId, tag: &str, n: usize) -> f64 {
    let mut times = Vec::with_capacity(n);
    for i in 0..n {
        let text = format!("{tag} {i}");
        let start = Instant::now();
        from.send_text(conv, &text).await.unwrap();
        let shown = to
            .wait_for(20_000, |e| {
                e.history(conv).iter().any(|m| matches!(&m.content, qpq_core::Content::Text { text: t, .. } if *t == text))
            })
            .await;
        assert!(shown, "{tag}: message {i} reached the other person");
        times.push(start.elapsed().as_secs_f64() * 1000.0);
    }
    times.sort_by(|a, b| a.partial_cmp(b).unwrap());
    times[n / 2]
}

fn is_rate_limited(e: &capnp::Error) -> bool {
    RemoteError::from_description(&e.extra).code == Some(ErrorCode::RateLimited)
}

#[test]
fn floods_are_rate_limited_while_others_chat_and_pipelined_calls_stay_bounded() {
    run(async {
        let dir = tempfile::tempdir().unwrap();
        let node = sqlite_node(dir.path());
        let alice = client(&node, dir.path(), "alice").await;
        let bob = client(&node, dir.path(), "bob").await;
        let conv = chat(&alice, &bob).await;
        let (_, mallory) = raw_account(&node, "mallory", 41, 2).await;
        let m1 = login(&node, &mallory[0]).await;
        let m2 = login(&node, &mallory[1]).await;
        let channel = qpq_proto::ChannelId::from_slice(&[0x66; 32]).unwrap();
        {
            let cap = m1.session.capability();
            let (mut group, info) = raw_group::RawGroup::create(&mallory[0], &channel);
            let mut req = cap.create_channel_request();
            req.get().set_channel_id(channel.as_bytes());
            req.get().set_group_info(&info);
            req.send().promise.await.unwrap();
            let (commit, welcome) = group.add(&[&mallory[1]]);
            let mut req = cap.commit_request();
            let mut r = req.get().init_request();
            r.set_channel_id(channel.as_bytes());
            r.set_commit(&commit);
            r.set_welcome(&welcome);
            r.set_client_msg_id(&[0x66; 16]);
            qpq_proto::wire::write_device_address(r.init_add_devices(1).get(0), &mallory[1].addr());
            req.send().promise.await.unwrap();
        }

        let quiet = delivery_ms(&alice, &bob, &conv, "quiet", 30).await;

        // The flood, from one address and (but for registrations) one account.
        let stop = Rc::new(Cell::new(false));
        let (sent, limited) = (Rc::new(Cell::new(0u32)), Rc::new(Cell::new(0u32)));
        let mut tasks = Vec::new();
        {
            // Registrations of new names.
            let (stop, sent, limited) = (stop.clone(), sent.clone(), limited.clone());
            let conn = rpc(&raw_connection(&node).await).await;
            tasks.push(tokio::task::spawn_local(async move {
                let mut i = 0u32;
                while !stop.get() && i < 300 {
                    let u = RawUser::new(&format!("flood{i}"), 100u8.wrapping_add(i as u8));
                    let d = u.device(1);
                    sent.set(sent.get() + 1);
                    match conn.register_identity(&u.identity.verifying_key().to_bytes(), &d.record).await {
                        Err(e) if e.remote_code() == Some(ErrorCode::RateLimited) => limited.set(limited.get() + 1),
                        _ => {}
                    }
                    i += 1;
                }
            }));
        }
        {
            // Logins of one account.
            let (stop, sent, limited) = (stop.clone(), sent.clone(), limited.clone());
            let conn = rpc(&raw_connection(&node).await).await;
            let device = RawUser::new("mallory", 41).device(1);
            tasks.push(tokio::task::spawn_local(async move {
                for _ in 0..300 {
                    if stop.get() {
                        break;
                    }
                    sent.set(sent.get() + 1);
                    if let Err(e) = try_login(&conn, &device).await {
                        if e.remote_code() == Some(ErrorCode::RateLimited) {
                            limited.set(limited.get() + 1);
                        }
                    }
                }
            }));
        }
        {
            // Claims of Alice's key packages, and enqueues, from one account, pipelined 32 at a time.
            let (stop, sent, limited) = (stop.clone(), sent.clone(), limited.clone());
            let cap = m1.session.capability();
            let channel = channel.clone();
            tasks.push(tokio::task::spawn_local(async move {
                let mut n = 0u32;
                while !stop.get() && n < 4000 {
                    let batch = (0..32).map(|k| {
                        let id = n + k;
                        let cap = cap.clone();
                        let channel = channel.clone();
                        async move {
                            if id.is_multiple_of(4) {
                                let mut req = cap.claim_key_packages_request();
                                req.get().set_user("alice@localhost");
                                req.send().promise.await.map(|_| ())
                            } else {
                                let mut req = cap.enqueue_request();
                                req.get().set_channel_id(channel.as_bytes());
                                req.get().set_payload(&mls::application(&channel, 1, &[0x55; 256]));
                                let mut mid = [0u8; 16];
                                mid[..4].copy_from_slice(&id.to_be_bytes());
                                req.get().set_client_msg_id(&mid);
                                req.send().promise.await.map(|_| ())
                            }
                        }
                    });
                    for r in join_all(batch).await {
                        sent.set(sent.get() + 1);
                        if r.as_ref().err().is_some_and(is_rate_limited) {
                            limited.set(limited.get() + 1);
                        }
                    }
                    n += 32;
                }
            }));
        }
        sleep(200).await;
        let flooded = delivery_ms(&alice, &bob, &conv, "flood", 30).await;
        stop.set(true);
        for t in tasks {
            t.await.unwrap();
        }
        println!(
            "flood: {} requests, {} answered rate_limited; another person's delivery median {:.1} ms quiet, {:.1} ms during the flood",
            sent.get(),
            limited.get(),
            quiet,
            flooded
        );
        assert!(limited.get() > 0, "the flood was slowed");
        assert!(flooded < 2_000.0, "the other person's messages kept flowing ({flooded:.1} ms)");

        // Memory: idle, then 1,000 pipelined fetches and 1,000 pipelined subscribe attempts
        // on one session (mallory's second device, whose queue holds what was flooded).
        let listener = || -> qpq_proto::node_capnp::listener::Client { capnp_rpc::new_client(Sink) };
        let cap = m2.session.capability();
        sleep(500).await;
        let idle = rss_kib();
        let fetches = (0..1000).map(|_| {
            let mut req = cap.fetch_request();
            req.get().set_limit(500);
            req.send().promise
        });
        let results = join_all(fetches).await;
        let served = results.iter().filter(|r| r.is_ok()).count();
        let after_fetches = rss_kib();
        drop(results);
        let subscribes = (0..1000).map(|_| {
            let mut req = cap.subscribe_request();
            req.get().set_listener(listener());
            req.send().promise
        });
        let results = join_all(subscribes).await;
        let subscribed = results.iter().filter(|r| r.is_ok()).count();
        let after_subscribes = rss_kib();
        drop(results);
        println!(
            "memory (KiB, whole process): idle {idle}, after 1,000 pipelined fetches {after_fetches} ({served} served, the rest quota_exceeded), after 1,000 subscribe attempts {after_subscribes} ({subscribed} accepted)"
        );
        assert_eq!(subscribed, 1, "one subscription per session");
        assert!((1..=1000).contains(&served), "some fetches are served ({served})");
        assert!(after_fetches.saturating_sub(idle) < 512 * 1024, "1,000 pipelined fetches cost less than 512 MiB");
        m2.session.whoami().await.expect("the session goes on");
        alice.send_text(&conv, "after it all").await.unwrap();
        let shown = bob.wait_for(20_000, |_| texts(&bob, &conv).iter().any(|t| t == "after it all")).await;
        assert!(shown, "messages still flow after the flood");
        node.stop();
    });
}

/// A listener that takes every delivery.
struct Sink;

impl qpq_proto::node_capnp::listener::Server for Sink {
    fn deliver(
        self: capnp::capability::Rc<Self>,
        _: qpq_proto::node_capnp::listener::DeliverParams,
        _: qpq_proto::node_capnp::listener::DeliverResults,
    ) -> impl std::future::Future<Output = Result<(), capnp::Error>> + 'static {
        async { Ok(()) }
    }
}
