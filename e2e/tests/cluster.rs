//! A cluster that survives losing a part: three node processes on a PostgreSQL server of the
//! test's own, behind two gateways; clients write to a group and a 1:1 chat while one node is
//! killed with SIGKILL and, later, PostgreSQL is restarted. Then a checker compares what every
//! sender saw acknowledged with what every recipient shows: nothing lost, nothing shown twice,
//! each sender's order kept, and the members of each conversation at the same epoch with the
//! same epoch authenticator (one commit per epoch, no fork).
//!
//! Every node and gateway logs at debug level meanwhile (failures included), and afterwards
//! no log line holds a message's text, a group's name or a user's name.
//!
//! It runs twice: with the nodes waking each other through PostgreSQL's LISTEN/NOTIFY, and
//! through NATS (`--nats-url`). Sized for `make test` (four people, 144 messages each time);
//! the same checker holds at any size.
//!
//! The node processes are this test binary itself, started with `--qpq-node` and a node's
//! flags (so nothing else has to be built): the target has `harness = false` and its own
//! `main`.

mod support;

use std::collections::HashMap;
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use qpq_core::{Content, Status};
use qpq_native::NativeClient;
use qpq_proto::ChannelId;
use sha2::{Digest, Sha256};
use support::*;

/// A PostgreSQL server in a temporary directory, on a port of its own, which the test stops
/// and starts as it likes (the machine's shared server is left alone).
struct OwnPostgres {
    bin: PathBuf,
    data: PathBuf,
    port: u16,
    _dir: tempfile::TempDir,
}

/// Runs a PostgreSQL tool as the `postgres` user when the test runs as root (they refuse root).
fn pg_command(bin: &Path, tool: &str) -> Command {
    let root = Command::new("id").arg("-u").output().map(|o| o.stdout == b"0\n").unwrap_or(false);
    if root {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(bin.join(tool));
        c
    } else {
        Command::new(bin.join(tool))
    }
}

fn run_ok(mut c: Command, what: &str) {
    let out = c.stdout(Stdio::piped()).stderr(Stdio::piped()).output().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(out.status.success(), "{what} failed: {}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
}

impl OwnPostgres {
    fn start() -> OwnPostgres {
        let bindir = Command::new("pg_config").arg("--bindir").output().expect("pg_config (PostgreSQL's server package)");
        let bin = PathBuf::from(String::from_utf8(bindir.stdout).unwrap().trim());
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        std::fs::create_dir(&data).unwrap();
        let _ = Command::new("chown").args(["-R", "postgres:"]).arg(dir.path()).status();
        let mut init = pg_command(&bin, "initdb");
        init.args(["-A", "trust", "-U", "postgres", "--no-sync", "-D"]).arg(&data);
        run_ok(init, "initdb");
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let pg = OwnPostgres { bin, data, port, _dir: dir };
        pg.ctl("start");
        pg
    }

    fn ctl(&self, action: &str) {
        let mut c = pg_command(&self.bin, "pg_ctl");
        c.args(["-w", "-m", "fast", "-D"]).arg(&self.data).arg("-l").arg(self.data.join("log")).arg("-o").arg(format!(
            "-p {} -c listen_addresses=127.0.0.1 -c unix_socket_directories='{}'",
            self.port,
            self.data.display()
        ));
        c.arg(action);
        run_ok(c, &format!("pg_ctl {action}"));
    }

    fn url(&self, db: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{db}", self.port)
    }
}

impl Drop for OwnPostgres {
    fn drop(&mut self) {
        let mut c = pg_command(&self.bin, "pg_ctl");
        c.args(["-m", "immediate", "-D"]).arg(&self.data).arg("stop");
        let _ = c.stdout(Stdio::null()).stderr(Stdio::null()).status();
    }
}

/// The flag that makes this binary a node.
const NODE_FLAG: &str = "--qpq-node";

/// Runs a node with `args` (qpq-server's flags) until killed.
fn node_main(args: &[String]) {
    use clap::Parser;
    let config = qpq_server::Config::parse_from(std::iter::once("qpq-server".to_string()).chain(args.iter().cloned()));
    let filter = tracing_subscriber::EnvFilter::try_new(&config.log).expect("a log filter");
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    tokio::task::LocalSet::new().block_on(&rt, async move {
        let node = qpq_server::Node::bind(config).await.expect("the node starts");
        node.run(std::future::pending()).await;
    });
}

/// A node in a process of its own (so that it can be killed with SIGKILL).
struct NodeProcess {
    addr: SocketAddr,
    fingerprint: String,
    child: Child,
}

impl NodeProcess {
    async fn start(dir: &Path, database: &str, nats: Option<&str>) -> NodeProcess {
        let port = UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let metrics = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        std::fs::create_dir_all(dir).unwrap();
        let log = std::fs::File::create(dir.join("node.log")).unwrap();
        let child = Command::new(std::env::current_exe().unwrap())
            .arg(NODE_FLAG)
            .arg("--listen")
            .arg(addr.to_string())
            .arg("--data-dir")
            .arg(dir)
            .arg("--database")
            .arg(database)
            .arg("--metrics-listen")
            .arg(metrics.to_string())
            .args(["--log", "debug"])
            .args(nats.map(|url| format!("--nats-url={url}")))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("qpq-server starts");
        // Ready when its database answers (the listener binds after the QUIC endpoint).
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            // Once the listener accepts, the harness's GET asks it.
            if tokio::net::TcpStream::connect(metrics).await.is_ok() && http_get(metrics, "/readyz").await.0 == 200 {
                break;
            }
            assert!(tokio::time::Instant::now() < deadline, "node at {addr} ready: {}", node_log(dir));
            sleep(100).await;
        }
        let cert = std::fs::read(dir.join("cert.der")).expect("the node wrote its certificate");
        NodeProcess { addr, fingerprint: hex::encode(Sha256::digest(&cert)), child }
    }

    fn kill(&mut self) {
        let _ = self.child.kill(); // SIGKILL
        let _ = self.child.wait();
    }
}

impl Drop for NodeProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

fn node_log(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("node.log")).unwrap_or_default()
}

/// What `c` shows in `conv`: (sender, text) of every text message, in history order, and the
/// texts it wrote itself that the server acknowledged.
fn shown(c: &NativeClient, conv: &ChannelId) -> (Vec<(String, String)>, Vec<String>) {
    c.with_engine(|e| {
        let mut all = Vec::new();
        let mut acked = Vec::new();
        for m in e.history(conv) {
            if let Content::Text { text, .. } = &m.content {
                all.push((m.sender.as_str().to_string(), text.clone()));
                if m.outgoing && matches!(m.status, Status::Sent | Status::Delivered) {
                    acked.push(text.clone());
                }
            }
        }
        (all, acked)
    })
}

/// Envelopes waiting per device, as the database holds them (for a failure's message).
async fn queues(url: &str) -> String {
    use sqlx::Connection;
    let Ok(mut conn) = sqlx::PgConnection::connect(url).await else { return "unreachable".into() };
    let rows: Vec<(i64, i64, i64)> =
        sqlx::query_as("SELECT device, COUNT(*), MAX(seq) FROM envelopes GROUP BY device ORDER BY device")
            .fetch_all(&mut conn)
            .await
            .unwrap_or_default();
    format!("{rows:?} (device key, envelopes, last seq)")
}

/// The nodes' LISTEN connections for wake-ups.
async fn wakeup_listeners(url: &str) -> i64 {
    use sqlx::Connection;
    let mut conn = sqlx::PgConnection::connect(url).await.expect("PostgreSQL answers");
    sqlx::query_scalar("SELECT COUNT(*) FROM pg_stat_activity WHERE application_name = 'qpq-wakeup-listener'")
        .fetch_one(&mut conn)
        .await
        .expect("pg_stat_activity")
}

/// What `c` shows in `conv` besides texts (notices such as "a message could not be read").
fn notices(c: &NativeClient, conv: &ChannelId) -> Vec<String> {
    c.with_engine(|e| {
        e.history(conv)
            .iter()
            .filter(|m| !matches!(m.content, Content::Text { .. }))
            .map(|m| format!("{:?}", m.content))
            .collect()
    })
}

/// `c`'s own messages in `conv` that the server did not acknowledge, with their state.
fn unacknowledged(c: &NativeClient, conv: &ChannelId) -> Vec<String> {
    c.with_engine(|e| {
        e.history(conv)
            .iter()
            .filter(|m| m.outgoing && !matches!(m.status, Status::Sent | Status::Delivered))
            .map(|m| format!("{:?}: {:?}", m.content, m.status))
            .collect()
    })
}

/// The messages of `sent` that `c` does not show.
fn missing(c: &NativeClient, conv: &ChannelId, sent: &HashMap<String, Vec<String>>) -> Vec<String> {
    let (all, _) = shown(c, conv);
    sent.values().flatten().filter(|t| !all.iter().any(|(_, x)| x == *t)).cloned().collect()
}

/// Every message acknowledged to its sender is shown exactly once by every member, each
/// sender's messages in the order sent; nothing unknown or doubled appears anywhere.
fn check(members: &[&NativeClient], conv: &ChannelId, sent: &HashMap<String, Vec<String>>) {
    for c in members {
        let me = c.user().as_str().to_string();
        let (all, acked) = shown(c, conv);
        // Everything this member wrote was acknowledged (the outboxes drained before the check).
        let mine = sent.get(&me).cloned().unwrap_or_default();
        assert_eq!(acked, mine, "{me}: every message sent was acknowledged, in order");
        let mut seen = std::collections::HashSet::new();
        for m in &all {
            assert!(seen.insert(m.clone()), "{me} shows {m:?} twice");
        }
        for (sender, texts) in sent {
            let from: Vec<&String> = all.iter().filter(|(s, _)| s == sender).map(|(_, t)| t).collect();
            let expected: Vec<&String> = texts.iter().collect();
            assert_eq!(from, expected, "{me} shows every message of {sender}, once, in the order sent");
        }
        assert_eq!(all.len(), sent.values().map(Vec::len).sum::<usize>(), "{me} shows nothing else");
    }
    // The epoch authenticator is a secret of one epoch of one group: equal means the same
    // epoch reached through the same commits.
    let authenticators: Vec<Option<Vec<u8>>> =
        members.iter().map(|c| c.with_engine(|e| e.epoch_authenticator(conv))).collect();
    assert!(authenticators[0].is_some(), "an epoch authenticator");
    assert!(authenticators.iter().all(|a| *a == authenticators[0]), "every member at the same epoch of the same group");
}

/// The test, once per wake-up bus of the cluster: PostgreSQL's NOTIFY (the default) and NATS
/// (the one on 127.0.0.1:4222, which scripts/lib.sh `ensure_nats` starts).
const TESTS: [(&str, Option<&str>); 2] = [
    ("a_node_killed_and_postgres_restarted_under_load_lose_and_double_nothing", None),
    ("with_nats_waking_the_nodes_a_node_killed_and_postgres_restarted_lose_and_double_nothing", Some("nats://127.0.0.1:4222")),
];

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some(NODE_FLAG) {
        return node_main(&args[1..]);
    }
    // What libtest would do with the arguments `cargo test` passes on: list, filter, run.
    if args.iter().any(|a| a == "--list") {
        for (test, _) in TESTS {
            println!("{test}: test");
        }
        return;
    }
    let filters: Vec<&String> = args.iter().filter(|a| !a.starts_with('-')).collect();
    let chosen: Vec<_> =
        TESTS.iter().filter(|(test, _)| filters.is_empty() || filters.iter().any(|f| test.contains(f.as_str()))).collect();
    println!("running {} tests", chosen.len());
    if chosen.is_empty() {
        return;
    }
    // The gateways run in this process: their log (debug) goes to a file that is scanned.
    let logs = tempfile::tempdir().unwrap();
    let gateway_log = logs.path().join("gateways.log");
    let file = std::fs::File::create(&gateway_log).unwrap();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new("qpq_gateway=debug"))
        .with_writer(std::sync::Mutex::new(file))
        .with_ansi(false)
        .init();
    for (test, nats) in chosen {
        cluster_survives(&gateway_log, *nats);
        println!("test {test} ... ok");
    }
}

/// Lines of `log` holding any of `secrets`.
fn leaks(log: &str, secrets: &[String]) -> Vec<String> {
    log.lines().filter(|l| secrets.iter().any(|s| l.contains(s.as_str()))).map(str::to_string).collect()
}

fn cluster_survives(gateway_log: &Path, nats: Option<&str>) {
    run(async {
        let t0 = std::time::Instant::now();
        let dir = tempfile::tempdir().unwrap();
        let pg = OwnPostgres::start();
        eprintln!("[{:?}] PostgreSQL started", t0.elapsed());
        let mut create = pg_command(&pg.bin, "createdb");
        create.args(["-h", "127.0.0.1", "-p", &pg.port.to_string(), "-U", "postgres", "qpq"]);
        run_ok(create, "createdb");
        let database = pg.url("qpq");
        let mut nodes = Vec::new();
        for i in 0..3 {
            nodes.push(NodeProcess::start(&dir.path().join(format!("node{i}")), &database, nats).await);
        }
        // Each node LISTENs for wake-ups unless NATS carries them.
        assert_eq!(wakeup_listeners(&database).await, if nats.is_some() { 0 } else { 3 }, "LISTEN connections");
        let pins: Vec<(SocketAddr, &str)> = nodes.iter().map(|n| (n.addr, n.fingerprint.as_str())).collect();
        let mut gateways = Vec::new();
        for g in 0..2 {
            let gdir = dir.path().join(format!("gw{g}"));
            std::fs::create_dir_all(gdir.join("www")).unwrap();
            std::fs::create_dir_all(gdir.join("pkg")).unwrap();
            let config = qpq_gateway::Config::for_tests(&pins, gdir.join("www"), gdir.join("pkg"));
            gateways.push(start_gateway(config, 3).await);
        }

        eprintln!("[{:?}] three nodes and two gateways up", t0.elapsed());
        let names = ["alice", "bob", "carol", "dave"];
        let mut people = Vec::new();
        for (i, name) in names.iter().enumerate() {
            people.push(ws_client(gateways[i % 2].addr(), dir.path(), name).await);
        }
        let others: Vec<_> = people[1..].iter().map(|c| c.user()).collect();
        let group = people[0].create_group("canary group name", &others).await.unwrap();
        for c in &people[1..] {
            wait_members(c, &group, 4).await;
        }
        // Alice's profile goes out with her next message in each conversation; the canary scan
        // below looks for its name and status in the logs too.
        people[0].set_profile("canary profile name", "canary profile status", None).await.unwrap();
        let direct = chat(&people[0], &people[1]).await;
        let mut sent_group: HashMap<String, Vec<String>> = HashMap::new();
        let mut sent_direct: HashMap<String, Vec<String>> = HashMap::new();
        // `chat` exchanged one message each way.
        sent_direct.insert(people[0].user().as_str().to_string(), vec!["hi bob".into()]);
        sent_direct.insert(people[1].user().as_str().to_string(), vec!["hello alice".into()]);

        let started = std::time::Instant::now();
        // The load: rounds in which everybody writes to the group and alice and bob to each
        // other; a node is killed after a third of it and PostgreSQL restarted after two thirds.
        const ROUNDS: usize = 30;
        for round in 0..ROUNDS {
            if round == ROUNDS / 3 {
                // The node carrying the most sessions of the first gateway.
                let status = gateways[0].state().nodes().status();
                let busiest = (0..3).max_by_key(|&i| status[i].sessions).unwrap();
                nodes[busiest].kill();
                eprintln!("[{:?}] node {busiest} killed", started.elapsed());
            }
            if round == 2 * ROUNDS / 3 {
                pg.ctl("restart");
                eprintln!("[{:?}] PostgreSQL restarted", started.elapsed());
            }
            for c in &people {
                let text = format!("canary text {} g{round}", c.user().name());
                c.send_text(&group, &text).await.unwrap();
                sent_group.entry(c.user().as_str().to_string()).or_default().push(text);
            }
            for c in &people[..2] {
                let text = format!("canary text {} d{round}", c.user().name());
                c.send_text(&direct, &text).await.unwrap();
                sent_direct.entry(c.user().as_str().to_string()).or_default().push(text);
            }
            sleep(40).await;
        }

        // Everything goes out and arrives (the clients reconnect through the gateways to the
        // nodes still alive and retry what was not acknowledged, with the same message ids).
        let total_group: usize = sent_group.values().map(Vec::len).sum();
        let total_direct: usize = sent_direct.values().map(Vec::len).sum();
        for c in &people {
            let ok = c.wait_for(90_000, |e| e.outbox_len() == 0).await;
            assert!(ok, "{}'s outbox drains (has {})", c.user(), c.with_engine(|e| e.outbox_len()));
        }
        eprintln!("[{:?}] outboxes drained", started.elapsed());
        let mut arrived = true;
        // A minute for the first that lacks something, then no more waiting: the report says the rest.
        for c in &people {
            let wait = if arrived { 60_000 } else { 1_000 };
            arrived &= c.wait_for(wait, |_| shown(c, &group).0.len() >= total_group).await;
        }
        for c in &people[..2] {
            let wait = if arrived { 60_000 } else { 1_000 };
            arrived &= c.wait_for(wait, |_| shown(c, &direct).0.len() >= total_direct).await;
        }
        if !arrived {
            let mut report = String::new();
            for (i, c) in people.iter().enumerate() {
                let chat = if i < 2 { missing(c, &direct, &sent_direct) } else { Vec::new() };
                report += &format!(
                    "\n{} misses in the group {:?}, in the chat {chat:?}; notices {:?}; own messages not acknowledged {:?}",
                    c.user(),
                    missing(c, &group, &sent_group),
                    notices(c, &group),
                    unacknowledged(c, &group),
                );
            }
            for i in 0..3 {
                let log = node_log(&dir.path().join(format!("node{i}")));
                let bad: Vec<&str> = log.lines().filter(|l| l.contains("WARN") || l.contains("ERROR")).collect();
                report += &format!("\nnode {i} warnings: {bad:#?}");
            }
            panic!("not everything arrived; queues in the database: {}{report}", queues(&database).await);
        }
        eprintln!("[{:?}] everything arrived", started.elapsed());
        check(&people.iter().collect::<Vec<_>>(), &group, &sent_group);
        check(&people[..2].iter().collect::<Vec<_>>(), &direct, &sent_direct);
        for c in &people[1..] {
            let alice = people[0].user();
            let named = c.wait_for(10_000, |e| e.display_name(&alice).as_deref() == Some("canary profile name")).await;
            assert!(named, "{} has Alice's profile", c.user());
        }
        drop(people);
        for g in gateways {
            g.stop();
        }
        drop(nodes);

        // The canary scan of every log: no text, no group name, no user name in clear.
        let mut secrets: Vec<String> = vec!["canary".into(), "hi bob".into(), "hello alice".into()];
        secrets.extend(names.iter().map(|n| n.to_string()));
        let mut scanned = 0;
        for i in 0..3 {
            let log = node_log(&dir.path().join(format!("node{i}")));
            scanned += log.lines().count();
            assert_eq!(leaks(&log, &secrets), Vec::<String>::new(), "node {i}'s log names a user or holds a message");
        }
        let log = std::fs::read_to_string(gateway_log).unwrap();
        scanned += log.lines().count();
        assert_eq!(leaks(&log, &secrets), Vec::<String>::new(), "the gateways' log names a user or holds a message");
        assert!(scanned > 100, "the logs were written at debug level ({scanned} lines)");
        eprintln!("[{:?}] {scanned} log lines scanned: no text, group name or user name", t0.elapsed());
    });
}
