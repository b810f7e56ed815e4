//! The server binary's command line: `--help` explains every flag.

use std::process::Command;

#[test]
fn help_explains_every_flag() {
    let out = Command::new(env!("CARGO_BIN_EXE_qpq-server")).arg("--help").output().unwrap();
    assert!(out.status.success());
    let help = String::from_utf8(out.stdout).unwrap();
    let flags = [
        "--domain", "--listen", "--data-dir", "--database", "--cert", "--key", "--max-message-bytes",
        "--max-blob-bytes", "--max-chunk-bytes", "--blob-days", "--name-cooldown-days",
        "--idle-timeout-secs", "--log", "--log-json",
    ];
    for f in flags {
        let line = help.lines().position(|l| l.trim_start().starts_with(f)).unwrap_or_else(|| panic!("{f} missing:\n{help}"));
        // The explanation follows on the flag's line or the next one.
        let text: String = help.lines().skip(line).take(2).collect::<Vec<_>>().join(" ");
        assert!(text.split_whitespace().count() > 3, "{f} is not explained: {text}");
    }
    assert!(help.contains("QPQ_DATABASE"), "environment variables are named");
}

#[test]
fn bad_flags_are_refused_with_a_message() {
    let out = Command::new(env!("CARGO_BIN_EXE_qpq-server")).args(["--listen", "not-an-address"]).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("--listen"), "{err}");
}
