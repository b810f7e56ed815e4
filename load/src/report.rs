//! What a run found, and the table it prints.

use std::fmt;

use crate::cpu::{Cpu, Sample};
use crate::echo::Echo;
use crate::traffic::Traffic;
use crate::Params;

/// Everything a run measured.
#[derive(Debug)]
pub struct Report {
    /// What was run.
    pub params: Params,
    /// Which node, how started.
    pub node: String,
    /// The limits set on a node started here.
    pub limits: Vec<String>,
    /// Seconds to register the devices and build the groups.
    pub setup_secs: f64,
    /// Seconds to encrypt the ciphertext pools.
    pub pool_secs: f64,
    /// Bytes of one ciphertext (the enqueued payload, and the raw echo's frame).
    pub ciphertext_bytes: usize,
    /// The qpq phase.
    pub qpq: Traffic,
    /// The raw echo phase.
    pub raw: Echo,
    /// CPU of the node (when in this process) and of the load generator in the qpq window.
    pub qpq_cpu: CpuShare,
    /// CPU of the echo server and of the load generator in the raw window.
    pub raw_cpu: CpuShare,
}

impl Report {
    /// Enqueues the node accepted per second in the window.
    pub fn accepted_per_sec(&self) -> f64 {
        self.qpq.accepted_in_window as f64 / self.qpq.secs
    }

    /// Copies devices received per second in the window.
    pub fn delivered_per_sec(&self) -> f64 {
        self.qpq.delivered_in_window as f64 / self.qpq.secs
    }

    /// Frames the raw echo returned per second in the window.
    pub fn raw_per_sec(&self) -> f64 {
        self.raw.echoed_in_window as f64 / self.raw.secs
    }

    /// Accepted enqueues per second over raw echoes per second.
    pub fn ratio(&self) -> f64 {
        self.accepted_per_sec() / self.raw_per_sec()
    }
}

/// Busy share of one core, of the server side and of the load generator's thread, over a
/// window (`None` where it could not be read).
#[derive(Clone, Copy, Debug, Default)]
pub struct CpuShare {
    /// The server side: every thread of the process but the load generator's.
    pub server: Option<f64>,
    /// The load generator's thread.
    pub load: Option<f64>,
    /// CPU time of the server side in the window.
    pub server_cpu: Option<Cpu>,
}

impl CpuShare {
    /// From the samples taken at the window's two edges (anything but two gives nothing);
    /// `server` says whether the rest of the process is the server side (not so for a node in
    /// another process).
    pub fn between(samples: &[Sample], server: bool) -> CpuShare {
        let [a, b] = samples else { return CpuShare::default() };
        let wall = b.at.duration_since(a.at).as_secs_f64();
        let used = |x: Option<Cpu>, y: Option<Cpu>| Some(y?.minus(&x?));
        let server_cpu = if server { used(a.others(), b.others()) } else { None };
        CpuShare {
            server: server_cpu.map(|c| c.total() / wall),
            load: used(a.this_thread, b.this_thread).map(|c| c.total() / wall),
            server_cpu,
        }
    }
}

fn pct(x: Option<f64>) -> String {
    x.map(|v| format!("{:.0} %", v * 100.0)).unwrap_or_else(|| "n/a".into())
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let p = &self.params;
        writeln!(
            f,
            "qpq-load: {} groups x {} devices ({} devices), {} senders, {} in flight per sender, text {} B -> ciphertext {} B, warm-up {:.1} s, window {:.1} s",
            p.groups,
            p.group_size,
            p.devices(),
            p.senders,
            p.in_flight,
            p.text_bytes,
            self.ciphertext_bytes,
            p.warmup.as_secs_f64(),
            p.duration.as_secs_f64()
        )?;
        writeln!(f, "node: {}", self.node)?;
        if !self.limits.is_empty() {
            writeln!(f, "limits set for this run: {}", self.limits.join("; "))?;
        }
        writeln!(
            f,
            "setup: devices registered and groups built in {:.1} s; {} ciphertexts per sender encrypted, and read back by another member to check them, in {:.2} s",
            self.setup_secs, p.pool, self.pool_secs
        )?;
        writeln!(f)?;
        writeln!(f, "{:<28} {:>10} {:>10} {:>9} {:>9} {:>9} {:>9} {:>11} {:>11}", "path", "messages", "msg/s", "p50 ms", "p90 ms", "p99 ms", "max ms", "server CPU", "load CPU")?;
        let q = &self.qpq;
        let l = q.latency;
        writeln!(
            f,
            "{:<28} {:>10} {:>10.0} {:>9.2} {:>9.2} {:>9.2} {:>9.2} {:>11} {:>11}",
            "qpq enqueues accepted",
            q.accepted_in_window,
            self.accepted_per_sec(),
            l.p50,
            l.p90,
            l.p99,
            l.max,
            pct(self.qpq_cpu.server),
            pct(self.qpq_cpu.load)
        )?;
        writeln!(
            f,
            "{:<28} {:>10} {:>10.0}",
            format!("qpq copies delivered (x{})", p.group_size - 1),
            q.delivered_in_window,
            self.delivered_per_sec()
        )?;
        let r = &self.raw;
        let l = r.latency;
        writeln!(
            f,
            "{:<28} {:>10} {:>10.0} {:>9.2} {:>9.2} {:>9.2} {:>9.2} {:>11} {:>11}",
            "raw quinn echo",
            r.echoed_in_window,
            self.raw_per_sec(),
            l.p50,
            l.p90,
            l.p99,
            l.max,
            pct(self.raw_cpu.server),
            pct(self.raw_cpu.load)
        )?;
        writeln!(f)?;
        writeln!(f, "ratio qpq accepted / raw echo: {:.3}", self.ratio())?;
        if let (Some(c), true) = (self.qpq_cpu.server_cpu, q.accepted_in_window > 0) {
            let per = |s: f64| s * 1e6 / q.accepted_in_window as f64;
            writeln!(
                f,
                "node CPU per accepted message: {:.0} us ({:.0} us user, {:.0} us system)",
                per(c.total()),
                per(c.user),
                per(c.system)
            )?;
        }
        if let (Some(c), true) = (self.raw_cpu.server_cpu, r.echoed_in_window > 0) {
            let per = |s: f64| s * 1e6 / r.echoed_in_window as f64;
            writeln!(
                f,
                "echo server CPU per echoed frame: {:.0} us ({:.0} us user, {:.0} us system)",
                per(c.total()),
                per(c.user),
                per(c.system)
            )?;
        }
        let (limited, waited) = q.rate_limited;
        if limited > 0 {
            writeln!(f, "rate_limited: {limited} answers, {waited} ms of waits as the node told (then sent again)")?;
        }
        for (code, n) in &q.refused {
            writeln!(f, "refused ({code}): {n} messages dropped")?;
        }
        for (code, n) in &q.retried {
            writeln!(f, "answered later ({code}): {n} times, sent again under the same id")?;
        }
        for e in q.failures.iter().chain(&r.failures) {
            writeln!(f, "failure: {e}")?;
        }
        writeln!(
            f,
            "run totals: {} enqueues accepted, {} copies delivered, drained {:.2} s after the window; raw echo moved {} bytes",
            q.accepted_total, q.delivered_total, q.drain_secs, r.bytes_total
        )?;
        if q.batches_total > 0 && q.accepted_total > 0 {
            writeln!(
                f,
                "deliveries: {:.2} envelopes per deliver call, {:.2} deliver calls (each acknowledged in its answer) per accepted message",
                q.delivered_total as f64 / q.batches_total as f64,
                q.batches_total as f64 / q.accepted_total as f64
            )?;
        }
        match &q.exactly_once {
            Ok(()) => writeln!(f, "check: every accepted message reached every other member device exactly once")?,
            Err(e) => writeln!(f, "CHECK FAILED: {e}")?,
        }
        match &q.queues_empty {
            Ok(()) => writeln!(f, "check: acknowledgements emptied every device's queue on the node")?,
            Err(e) => writeln!(f, "CHECK FAILED: {e}")?,
        }
        Ok(())
    }
}
