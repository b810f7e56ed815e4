//! The gateway binary's command line: `--help` explains every flag, and a bad value is refused
//! with a message naming the flag. (This test also makes `cargo test --workspace` build the
//! `qpq-gateway` binary with the test build's dependency features, as it does for `qpq-server`
//! and `qpq`, so the browser tests run the binaries the Rust tests built.)

use std::process::Command;

fn gateway() -> Command {
    Command::new(env!("CARGO_BIN_EXE_qpq-gateway"))
}

#[test]
fn help_explains_every_flag() {
    let out = gateway().arg("--help").output().unwrap();
    assert!(out.status.success());
    let help = String::from_utf8(out.stdout).unwrap();
    let flags = [
        "--listen", "--https-listen", "--no-https", "--no-http3", "--tls-cert", "--tls-key", "--www", "--pkg", "--node",
        "--node-fingerprint", "--allow-origin", "--frame-ancestors", "--max-message-bytes", "--max-sessions",
        "--max-sessions-per-ip", "--metrics-listen", "--idle-timeout-secs", "--log", "--log-json",
    ];
    for f in flags {
        let line = help
            .lines()
            .position(|l| l.trim_start().starts_with(&format!("{f} ")) || l.trim() == f)
            .unwrap_or_else(|| panic!("{f} missing:\n{help}"));
        // The explanation follows on the next line.
        let text: String = help.lines().skip(line).take(2).collect::<Vec<_>>().join(" ");
        assert!(text.split_whitespace().count() > 3, "{f} is not explained: {text}");
    }
    assert!(help.contains("QPQ_GATEWAY_LISTEN"), "environment variables are named");
}

#[test]
fn bad_flags_are_refused_with_a_message() {
    for (flag, value) in [("--listen", "not-an-address"), ("--max-sessions", "many"), ("--node", "")] {
        let out = gateway().args([flag, value]).output().unwrap();
        assert!(!out.status.success(), "{flag} {value:?} was accepted");
        let err = String::from_utf8(out.stderr).unwrap();
        assert!(err.contains(flag), "{flag}: {err}");
    }
}
