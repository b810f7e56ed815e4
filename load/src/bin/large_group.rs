//! `qpq-large-group`: what a group of a thousand costs a node. A node runs in a child process
//! of its own (this binary again, with `--serve-node`), so that its memory and CPU time are
//! read apart from the clients'. Then:
//!
//! 1. `--members` devices register through real `qpq-client` clients (identity, key packages
//!    on the node) and go offline; one more, the creator, stays online;
//! 2. the creator makes the group with the first `--batch - 1` of them and adds the rest in
//!    batches of `--batch`: each step is a real MLS commit with its Welcome, which the node
//!    checks against the group's public state (the adds' keys against the directory) before
//!    it queues the Welcome for every newcomer;
//! 3. one more device is added to the full group;
//! 4. the creator sends one message, which the node queues for every member device.
//!
//! Each step is timed from the client's call until its outbox is empty (the node accepted
//! everything), beside the node's CPU time for the step. The members stay offline, so the
//! node keeps every Welcome and copy queued, as it would for people away. Its resident memory
//! is read before the group and after.

use std::process::ExitCode;
use std::time::Instant;

use anyhow::{bail, Context};
use clap::Parser;
use futures::future::try_join_all;
use qpq_load::child_node::{self, NodeProcess};
use qpq_load::setup::{register, SetupClient};
use qpq_load::target::Storage;
use qpq_proto::{ChannelId, UserId};

/// How long one step may take.
const STEP_TIMEOUT_MS: u64 = 600_000;
/// Devices registered at once.
const REGISTER_AT_ONCE: usize = 50;

#[derive(Parser, Debug)]
#[command(
    about = "What a 1,000-member group costs a quicproquo node: creating it in batches, one more member, one message fanned out, memory."
)]
struct Args {
    /// Members of the group, the creator included, before one more is added.
    #[arg(long, default_value_t = 1000)]
    members: usize,
    /// Members added per commit.
    #[arg(long, default_value_t = 100)]
    batch: usize,
    /// Storage of the node.
    #[arg(long, value_enum, default_value = "sqlite")]
    storage: Storage,
    /// PostgreSQL server to create the run's database on (--storage postgres).
    #[arg(
        long,
        env = "QPQ_LOAD_POSTGRES",
        default_value = "postgres://postgres@127.0.0.1:5432/postgres"
    )]
    postgres_admin: String,
    /// Run only the node, print its address and pin, and stop when standard input closes.
    #[arg(long, hide = true)]
    serve_node: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let serve = args.serve_node.then_some((args.storage, args.postgres_admin.as_str()));
    child_node::main("qpq-large-group", serve, || measure(&args))
}

/// One timed step.
struct Step {
    what: String,
    members_after: usize,
    wall_ms: f64,
    node_cpu_ms: f64,
}

async fn timed<F, Fut>(
    node: &NodeProcess,
    creator: &SetupClient,
    what: String,
    members_after: usize,
    act: F,
) -> anyhow::Result<Step>
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    let cpu0 = node.cpu_ms()?;
    let t = Instant::now();
    act().await?;
    if !creator
        .wait_for(STEP_TIMEOUT_MS, |e| e.outbox_len() == 0)
        .await
    {
        bail!("{what}: the creator's outbox did not empty");
    }
    let wall_ms = t.elapsed().as_secs_f64() * 1000.0;
    let node_cpu_ms = node.cpu_ms()? - cpu0;
    eprintln!("{what}: {wall_ms:.0} ms, node CPU {node_cpu_ms:.0} ms");
    Ok(Step {
        what,
        members_after,
        wall_ms,
        node_cpu_ms,
    })
}

async fn measure(args: &Args) -> anyhow::Result<()> {
    if args.batch < 2 || args.members < args.batch {
        bail!("--batch must be at least 2 and at most --members");
    }
    let node = NodeProcess::start(args.storage, &args.postgres_admin)?;
    let rss_start = node.rss_kib()?;
    let tag = format!("{:08x}", rand::random::<u32>());

    // Members register and go offline: all but the creator, and one more for the last add.
    let t = Instant::now();
    let names: Vec<String> = (0..args.members).map(|i| format!("lg{tag}m{i}")).collect();
    let mut users: Vec<UserId> = Vec::with_capacity(names.len());
    for chunk in names.chunks(REGISTER_AT_ONCE) {
        let clients = try_join_all(
            chunk
                .iter()
                .map(|n| register(node.addr, &node.fingerprint, n)),
        )
        .await?;
        for c in &clients {
            users.push(c.user());
            c.shutdown().await;
        }
    }
    let register_s = t.elapsed().as_secs_f64();
    eprintln!(
        "registered {} offline devices in {register_s:.1} s",
        users.len()
    );
    let creator = register(node.addr, &node.fingerprint, &format!("lg{tag}creator")).await?;
    let rss_registered = node.rss_kib()?;

    let extra = users.pop().context("the extra member")?;
    let mut steps = Vec::new();
    let first = &users[..args.batch - 1];
    let mut conv: Option<ChannelId> = None;
    steps.push(
        timed(
            &node,
            &creator,
            format!("create with {} members", args.batch),
            args.batch,
            || async {
                conv = Some(creator.create_group("large", first).await?);
                Ok(())
            },
        )
        .await?,
    );
    let conv = conv.context("the group")?;
    let mut have = args.batch;
    for batch in users[args.batch - 1..].chunks(args.batch) {
        let after = have + batch.len();
        let step = timed(
            &node,
            &creator,
            format!("add {} at {have}", batch.len()),
            after,
            || async {
                creator.add_members(&conv, batch).await?;
                Ok(())
            },
        )
        .await?;
        steps.push(step);
        have = after;
    }
    let one = timed(
        &node,
        &creator,
        format!("add 1 at {have}"),
        have + 1,
        || async {
            creator
                .add_members(&conv, std::slice::from_ref(&extra))
                .await?;
            Ok(())
        },
    )
    .await?;
    steps.push(one);
    have += 1;
    let members_seen =
        creator.with_engine(|e| e.conversation(&conv).map(|c| c.members.len()).unwrap_or(0));
    if members_seen != have {
        bail!("the creator sees {members_seen} members, not {have}");
    }
    let send = timed(
        &node,
        &creator,
        format!("one message to {} devices", have - 1),
        have,
        || async {
            creator.send_text(&conv, "hello, everyone").await?;
            Ok(())
        },
    )
    .await?;
    steps.push(send);
    let rss_end = node.rss_kib()?;
    node.stop();
    creator.shutdown().await;

    let profile = if cfg!(debug_assertions) {
        "debug"
    } else {
        "release"
    };
    println!(
        "A group of {have} on one node ({profile} build, {:?} storage); its {} offline members registered in {register_s:.1} s.",
        args.storage,
        have - 1
    );
    println!("| step | members after | wall ms | node CPU ms |");
    println!("|---|---|---|---|");
    for s in &steps {
        println!(
            "| {} | {} | {:.0} | {:.0} |",
            s.what, s.members_after, s.wall_ms, s.node_cpu_ms
        );
    }
    let grown = rss_end.saturating_sub(rss_registered);
    println!(
        "Node resident memory: {rss_start} KiB at start, {rss_registered} KiB with the {have} accounts registered, {rss_end} KiB with \
         the group (its public state, and every Welcome and message copy queued for members away): {:.1} KiB more per member.",
        grown as f64 / have as f64
    );
    Ok(())
}
