//! A node in a child process of its own, for the benchmarks that read its memory and CPU time
//! apart from their clients' (`qpq-large-group`, `qpq-idle-sessions`). The child is the
//! benchmark's own binary again with `--serve-node`: it starts a node with `qpq_server::spawn`
//! (limits as [`crate::target`] sets them), prints `ADDR PIN` once it listens, and stops (and
//! drops a PostgreSQL database it made) when its standard input closes. [`ChildProcess`] is
//! what such a child is to its parent (its memory and CPU time, stopping it), for the node
//! here and for the gateway of [`crate::child_gateway`].

use std::future::Future;
use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::process::{Child, Command, ExitCode, Stdio};

use anyhow::Context;

use crate::target::{NodeUnderTest, Storage, Target};

/// The flag that makes a benchmark binary run [`serve`] instead.
pub const SERVE_FLAG: &str = "--serve-node";

/// The unit of the CPU times in /proc/PID/stat (USER_HZ, 100 on Linux whatever the kernel's HZ).
const USER_HZ: f64 = 100.0;

/// The `main` of a benchmark binary: on one thread, the node when `serve_node` is set (the
/// child, see [`serve`]), else `measure`; an error is printed under `name`.
pub fn main<F: Future<Output = anyhow::Result<()>>>(
    name: &str,
    serve_node: Option<(Storage, &str)>,
    measure: impl FnOnce() -> F,
) -> ExitCode {
    let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("{name}: {e}");
            return ExitCode::FAILURE;
        }
    };
    let local = tokio::task::LocalSet::new();
    let run = match serve_node {
        Some((storage, admin)) => local.block_on(&rt, serve(storage, admin)),
        None => local.block_on(&rt, measure()),
    };
    match run {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{name}: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// The child's side: the node, until standard input closes.
pub async fn serve(storage: Storage, postgres_admin: &str) -> anyhow::Result<()> {
    let target = Target::Spawn { storage, postgres_admin: postgres_admin.to_string(), sends_per_min: 0 };
    let node = NodeUnderTest::start(&target, "error").await?;
    println!("{} {}", node.addr, node.fingerprint);
    eprintln!("node: {}", node.description);
    // The node runs on threads of its own; this one waits for the end of standard input.
    let _ = tokio::task::spawn_blocking(|| std::io::stdin().read_to_end(&mut Vec::new())).await;
    node.finish().await;
    Ok(())
}

/// A benchmark's child process (this binary again, with a flag): its memory and CPU time
/// are read from `/proc`; closing its standard input stops it.
pub struct ChildProcess {
    child: Child,
    pid: u32,
}

impl ChildProcess {
    /// Starts this binary again with `args` and waits for the first line it prints (said
    /// once it serves); `what` names it in errors.
    pub fn start(args: &[String], what: &str) -> anyhow::Result<(ChildProcess, String)> {
        let exe = std::env::current_exe().context("this program's path")?;
        let mut cmd = Command::new(exe);
        cmd.args(args);
        cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::inherit());
        let mut child = cmd.spawn().with_context(|| format!("starting the {what}'s process"))?;
        let pid = child.id();
        let stdout = child.stdout.take().with_context(|| format!("the {what}'s output"))?;
        let line = BufReader::new(stdout).lines().next().with_context(|| format!("the {what} said nothing"))??;
        Ok((ChildProcess { child, pid }, line))
    }

    /// Resident memory, KiB.
    pub fn rss_kib(&self) -> anyhow::Result<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid))?;
        let line = status.lines().find(|l| l.starts_with("VmRSS:")).context("VmRSS")?;
        Ok(line.split_whitespace().nth(1).context("VmRSS value")?.parse()?)
    }

    /// CPU time (user + system) so far, ms (in 10 ms ticks).
    pub fn cpu_ms(&self) -> anyhow::Result<f64> {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid))?;
        // The fields after the command name, which is in parentheses.
        let fields: Vec<&str> = stat.rsplit_once(')').context("stat")?.1.split_whitespace().collect();
        let ticks: f64 = fields[11].parse::<f64>()? + fields[12].parse::<f64>()?;
        Ok(ticks * 1000.0 / USER_HZ)
    }

    /// Closes its input, which stops it, and waits for it.
    pub fn stop(mut self) {
        drop(self.child.stdin.take());
        let _ = self.child.wait();
    }
}

/// Raises this process's soft limit of open files to its hard limit (a benchmark holding
/// thousands of TCP connections needs one file each); returns the limit now in force.
pub fn raise_open_files_limit() -> anyhow::Result<u64> {
    use rustix::process::{getrlimit, setrlimit, Resource};
    let mut limit = getrlimit(Resource::Nofile);
    if limit.current != limit.maximum {
        limit.current = limit.maximum;
        setrlimit(Resource::Nofile, limit).context("raising the open-file limit")?;
    }
    Ok(getrlimit(Resource::Nofile).current.unwrap_or(u64::MAX))
}

/// The node's process: where it listens and its pin.
pub struct NodeProcess {
    process: ChildProcess,
    /// Its QUIC address.
    pub addr: SocketAddr,
    /// Its certificate pin (hex).
    pub fingerprint: String,
}

impl NodeProcess {
    /// Starts this binary again with [`SERVE_FLAG`] and waits until the node listens.
    pub fn start(storage: Storage, postgres_admin: &str) -> anyhow::Result<NodeProcess> {
        let storage = match storage {
            Storage::Sqlite => "sqlite",
            Storage::Postgres => "postgres",
            Storage::PostgresNats => "postgres-nats",
        };
        let args = [SERVE_FLAG, "--storage", storage, "--postgres-admin", postgres_admin].map(String::from);
        let (process, line) = ChildProcess::start(&args, "node")?;
        let (addr, fingerprint) = line.split_once(' ').context("the node's first line is `ADDR PIN`")?;
        Ok(NodeProcess { process, addr: addr.parse()?, fingerprint: fingerprint.to_string() })
    }

    /// The node as a remote target, for what takes one ([`crate::device`]).
    pub async fn target(&self) -> anyhow::Result<NodeUnderTest> {
        NodeUnderTest::start(&Target::Remote { addr: self.addr, fingerprint: self.fingerprint.clone() }, "error").await
    }

    /// Closes its input, which stops it, and waits for it.
    pub fn stop(self) {
        self.process.stop();
    }
}

/// Its memory and CPU time are its process's.
impl std::ops::Deref for NodeProcess {
    type Target = ChildProcess;

    fn deref(&self) -> &ChildProcess {
        &self.process
    }
}
