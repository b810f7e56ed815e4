//! `qpq-large-group` at a small size, so that the benchmark keeps working: the group is made in
//! batches through a node in a process of its own, one more member is added, one message goes
//! to every member device, and the report names each step.

use std::process::Command;

#[test]
fn a_small_large_group_run_reports_every_step() {
    let out = Command::new(env!("CARGO_BIN_EXE_qpq-large-group"))
        .args(["--members", "12", "--batch", "5"])
        .output()
        .expect("qpq-large-group runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "qpq-large-group failed:\n{stdout}\n{stderr}"
    );
    println!("{stdout}");
    // The creator and 4 at creation, then 5 and 2 (a group of 12), then one more.
    for row in [
        "| create with 5 members | 5 |",
        "| add 5 at 5 | 10 |",
        "| add 2 at 10 | 12 |",
        "| add 1 at 12 | 13 |",
        "| one message to 12 devices | 13 |",
    ] {
        assert!(stdout.contains(row), "no row {row:?} in:\n{stdout}");
    }
    assert!(stdout.contains("A group of 13 on one node"), "{stdout}");
    assert!(stdout.contains("KiB more per member"), "{stdout}");
}
