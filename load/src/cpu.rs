//! CPU time of this process and of the calling thread, read from `/proc` (Linux; elsewhere
//! nothing is read and the report says n/a). The load generator runs on the calling thread;
//! everything else in the process is the server side: the node started in-process (its thread
//! `qpq-node` and the SQLite worker threads of its storage) during the qpq window, the echo
//! server's thread during the raw one. PostgreSQL's own processes are not counted, nor is a
//! node in another process.

/// Clock ticks per second in `/proc/*/stat` (`USER_HZ`, fixed at 100 for user space on Linux).
const TICKS_PER_SEC: f64 = 100.0;

/// CPU seconds in user space and in the kernel.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Cpu {
    /// User space.
    pub user: f64,
    /// The kernel on the threads' behalf (system calls: sockets, files).
    pub system: f64,
}

impl Cpu {
    /// Both together.
    pub fn total(&self) -> f64 {
        self.user + self.system
    }

    /// `self - other`.
    pub fn minus(&self, other: &Cpu) -> Cpu {
        Cpu { user: self.user - other.user, system: self.system - other.system }
    }
}

/// CPU time of the whole process, all threads.
pub fn process() -> Option<Cpu> {
    read("/proc/self/stat")
}

/// CPU time of the calling thread.
pub fn current_thread() -> Option<Cpu> {
    read("/proc/thread-self/stat")
}

fn read(path: &str) -> Option<Cpu> {
    parse(&std::fs::read_to_string(path).ok()?)
}

/// utime and stime from a `stat` line (fields 14 and 15; the name in parentheses may hold
/// spaces).
fn parse(stat: &str) -> Option<Cpu> {
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some(Cpu { user: utime / TICKS_PER_SEC, system: stime / TICKS_PER_SEC })
}

/// CPU time of the process and of the calling thread, sampled together.
#[derive(Clone, Copy, Debug)]
pub struct Sample {
    /// When.
    pub at: std::time::Instant,
    /// The whole process.
    pub process: Option<Cpu>,
    /// The calling thread (the load generator).
    pub this_thread: Option<Cpu>,
}

impl Sample {
    /// Samples now.
    pub fn take() -> Sample {
        Sample { at: std::time::Instant::now(), process: process(), this_thread: current_thread() }
    }

    /// CPU time of every thread but the caller.
    pub fn others(&self) -> Option<Cpu> {
        Some(self.process?.minus(&self.this_thread?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_user_and_system_ticks_after_the_name() {
        let stat = "42 (qpq node) S 1 2 3 4 5 6 7 8 9 10 250 50 0 0 20 0 1 0";
        assert_eq!(parse(stat), Some(Cpu { user: 2.5, system: 0.5 }));
        if cfg!(target_os = "linux") {
            let s = Sample::take();
            assert!(s.others().is_some_and(|o| o.total() >= 0.0), "the process has used at least what this thread has");
        }
    }
}
