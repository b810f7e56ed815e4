//! CPU time of this process's threads, read from `/proc` (Linux; elsewhere nothing is read and
//! the report leaves the column out). The node started in-process runs on the thread
//! `qpq-node`, the echo server on its own, and the load generator on the thread that runs the
//! phase, so the time each spends per message can be told apart. PostgreSQL's own processes
//! are not counted.

/// Clock ticks per second in `/proc/*/stat` (`USER_HZ`, fixed at 100 for user space on Linux).
const TICKS_PER_SEC: f64 = 100.0;

/// CPU seconds (user and system) of the threads named `name`, if any are found.
pub fn thread_secs(name: &str) -> Option<f64> {
    let mut total = None;
    for entry in std::fs::read_dir("/proc/self/task").ok()?.flatten() {
        let comm = std::fs::read_to_string(entry.path().join("comm")).unwrap_or_default();
        if comm.trim_end() == name {
            let stat = std::fs::read_to_string(entry.path().join("stat")).ok()?;
            *total.get_or_insert(0.0) += ticks(&stat)? / TICKS_PER_SEC;
        }
    }
    total
}

/// CPU seconds of the calling thread.
pub fn current_thread_secs() -> Option<f64> {
    ticks(&std::fs::read_to_string("/proc/thread-self/stat").ok()?).map(|t| t / TICKS_PER_SEC)
}

/// utime + stime from a `stat` line (fields 14 and 15; the name in parentheses may hold spaces).
fn ticks(stat: &str) -> Option<f64> {
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// CPU seconds of the named threads and of the caller, sampled together.
#[derive(Clone, Copy, Debug)]
pub struct Sample {
    /// When.
    pub at: std::time::Instant,
    /// The server side's thread (the node or the echo server).
    pub server: Option<f64>,
    /// The load generator's thread.
    pub load: Option<f64>,
}

impl Sample {
    /// Samples `server_thread` and the calling thread.
    pub fn take(server_thread: &str) -> Sample {
        Sample { at: std::time::Instant::now(), server: thread_secs(server_thread), load: current_thread_secs() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_user_and_system_ticks_after_the_name() {
        let stat = "42 (qpq node) S 1 2 3 4 5 6 7 8 9 10 250 50 0 0 20 0 1 0";
        assert_eq!(ticks(stat), Some(300.0));
        assert!(current_thread_secs().is_some() || !cfg!(target_os = "linux"));
    }
}
