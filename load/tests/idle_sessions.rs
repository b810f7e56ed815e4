//! `qpq-idle-sessions` at a small size, so that the benchmark keeps working: devices register,
//! hold sessions (connection, login, subscription) against a node in a process of its own, and
//! the report gives the node's memory and idle CPU at none, a tenth and all of them.

use std::process::Command;

#[test]
fn a_small_idle_sessions_run_reports_memory_and_idle_cpu() {
    let out = Command::new(env!("CARGO_BIN_EXE_qpq-idle-sessions"))
        .args(["--sessions", "20", "--idle-secs", "0.5"])
        .output()
        .expect("qpq-idle-sessions runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "qpq-idle-sessions failed:\n{stdout}\n{stderr}");
    println!("{stdout}");
    for row in ["| 0 |", "| 2 |", "| 20 |"] {
        assert!(stdout.contains(row), "no row {row:?} in:\n{stdout}");
    }
    assert!(stdout.contains("sessions (connection, login, subscription) opened"), "{stdout}");
    assert!(stdout.contains("KiB of node memory"), "{stdout}");
}
