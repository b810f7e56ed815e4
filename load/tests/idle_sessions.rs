//! `qpq-idle-sessions` at a small size, so that the benchmark keeps working: devices register,
//! hold sessions (connection, login, subscription) against a node in a process of its own —
//! straight over QUIC, or through a gateway in another process over WebSocket and over
//! WebTransport — and the report gives the memory and idle CPU at none, a tenth and all of
//! them, and says every session still answered.

use std::process::Command;

/// Runs the binary with 20 sessions and `args`; its output, which must have the three rows
/// and say that every session answered.
fn run(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_qpq-idle-sessions"))
        .args(["--sessions", "20", "--idle-secs", "0.5"])
        .args(args)
        .output()
        .expect("qpq-idle-sessions runs");
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "qpq-idle-sessions {args:?} failed:\n{stdout}\n{stderr}");
    println!("{stdout}");
    for row in ["| 0 |", "| 2 |", "| 20 |"] {
        assert!(stdout.contains(row), "no row {row:?} in:\n{stdout}");
    }
    assert!(stdout.contains("20 of 20 sessions still answered a call"), "{stdout}");
    stdout
}

#[test]
fn a_small_idle_sessions_run_reports_memory_and_idle_cpu() {
    let stdout = run(&[]);
    assert!(stdout.contains("over QUIC straight to one node"), "{stdout}");
    assert!(stdout.contains("sessions (connection, login, subscription) opened"), "{stdout}");
    assert!(stdout.contains("| idle sessions | node resident KiB | node CPU while idle, ms per s |"), "{stdout}");
    assert!(stdout.contains("KiB of node memory"), "{stdout}");
}

/// The figures of a run through the gateway: both processes' columns, and memory per session
/// and sessions per GiB for each and together.
fn check_gateway_figures(stdout: &str) {
    assert!(
        stdout.contains(
            "| idle sessions | gateway resident KiB | gateway CPU while idle, ms per s | node resident KiB | node CPU while idle, ms per s |"
        ),
        "{stdout}"
    );
    assert!(stdout.contains("KiB of gateway memory and"), "{stdout}");
    assert!(stdout.contains("sessions per GiB of gateway and node together"), "{stdout}");
    assert!(stdout.contains("µs a second at the gateway"), "{stdout}");
    // The limits the run set, said in the output.
    assert!(stdout.contains("from one address 100000"), "{stdout}");
}

#[test]
fn a_small_run_through_the_gateway_over_websocket_reports_both_processes() {
    let stdout = run(&["--via", "websocket"]);
    assert!(stdout.contains("over WebSocket through a gateway"), "{stdout}");
    assert!(stdout.contains("plain HTTP only"), "{stdout}");
    check_gateway_figures(&stdout);
}

#[test]
fn a_small_run_through_the_gateway_over_webtransport_reports_both_processes() {
    let stdout = run(&["--via", "webtransport"]);
    assert!(stdout.contains("over WebTransport through a gateway"), "{stdout}");
    assert!(stdout.contains("HTTP/3 and WebTransport on"), "{stdout}");
    check_gateway_figures(&stdout);
}
