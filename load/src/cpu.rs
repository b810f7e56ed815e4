//! CPU time of this process and of the calling thread, read from `/proc` (Linux; elsewhere
//! nothing is read and the report says n/a). The load generator runs on the calling thread;
//! everything else in the process is the server side: the node started in-process (its thread
//! `qpq-node` and the SQLite worker threads of its storage) during the qpq window, the echo
//! server's thread during the raw one. PostgreSQL's own processes are not counted, nor is a
//! node in another process.

/// Clock ticks per second in `/proc/*/stat` (`USER_HZ`, fixed at 100 for user space on Linux).
const TICKS_PER_SEC: f64 = 100.0;

/// CPU seconds (user and system) of the whole process, all threads.
pub fn process_secs() -> Option<f64> {
    ticks(&std::fs::read_to_string("/proc/self/stat").ok()?).map(|t| t / TICKS_PER_SEC)
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

/// CPU seconds of the process and of the calling thread, sampled together.
#[derive(Clone, Copy, Debug)]
pub struct Sample {
    /// When.
    pub at: std::time::Instant,
    /// The whole process.
    pub process: Option<f64>,
    /// The calling thread (the load generator).
    pub this_thread: Option<f64>,
}

impl Sample {
    /// Samples now.
    pub fn take() -> Sample {
        Sample { at: std::time::Instant::now(), process: process_secs(), this_thread: current_thread_secs() }
    }

    /// CPU seconds of every thread but the caller.
    pub fn others(&self) -> Option<f64> {
        Some(self.process? - self.this_thread?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_user_and_system_ticks_after_the_name() {
        let stat = "42 (qpq node) S 1 2 3 4 5 6 7 8 9 10 250 50 0 0 20 0 1 0";
        assert_eq!(ticks(stat), Some(300.0));
        if cfg!(target_os = "linux") {
            let s = Sample::take();
            assert!(s.others().is_some_and(|o| o >= 0.0), "the process has used at least what this thread has");
        }
    }
}
