//! The `qpq` REPL end to end: two REPL processes (the built binary, driven over stdin and
//! stdout as a bot would) against a real node: chat, reply, react and take it back, edit,
//! delete, a refused edit, a file sent by one and downloaded whole by the other, and leaving.

// This test stays beside the binary it drives: Cargo hands `CARGO_BIN_EXE_qpq` only to the
// tests of the binary's own package. Its one node comes from qpq-server (a dev-dependency of
// qpq-native for this test alone); the other end-to-end tests live in the e2e crate.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use rand::RngCore;

const WAIT: Duration = Duration::from_secs(30);

/// One running `qpq` and what it printed.
struct Repl {
    name: &'static str,
    child: Child,
    stdin: ChildStdin,
    lines: Receiver<String>,
    output: Vec<String>,
}

impl Repl {
    /// Starts `qpq` registering `name`, with its state in `dir`, and waits until it is online.
    fn start(node: &qpq_server::RunningNode, dir: &Path, name: &'static str) -> Repl {
        let mut child = Command::new(env!("CARGO_BIN_EXE_qpq"))
            .args(["--server", &node.addr().to_string(), "--fingerprint", node.fingerprint()])
            .arg("--state")
            .arg(dir.join(format!("{name}.state")))
            .args(["--register", name])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("qpq starts");
        let stdin = child.stdin.take().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut r = Repl { name, child, stdin, lines, output: Vec::new() };
        r.expect(&format!("you are {name}@"));
        r.expect("* online");
        r
    }

    fn send(&mut self, line: &str) {
        writeln!(self.stdin, "{line}").expect("qpq reads its input");
        self.stdin.flush().unwrap();
    }

    /// The next line for which `pred` holds (earlier lines are passed over).
    fn expect_by(&mut self, what: &str, pred: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.output.push(line.clone());
                    if pred(&line) {
                        return line;
                    }
                }
                Err(RecvTimeoutError::Timeout) | Err(RecvTimeoutError::Disconnected) => panic!(
                    "{} did not print {what:?} within {WAIT:?}; it printed:\n{}",
                    self.name,
                    self.output.join("\n")
                ),
            }
        }
    }

    /// The next line containing `text`.
    fn expect(&mut self, text: &str) -> String {
        self.expect_by(text, |l| l.contains(text))
    }

    /// Sends `command` again every half second until a line containing `text` comes back.
    fn ask_until(&mut self, command: &str, text: &str) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            self.send(command);
            let until = Instant::now() + Duration::from_millis(500);
            while let Ok(line) = self.lines.recv_timeout(until.saturating_duration_since(Instant::now())) {
                self.output.push(line.clone());
                if line.contains(text) {
                    return line;
                }
            }
            assert!(Instant::now() < deadline, "{}: `{command}` never showed {text:?}:\n{}", self.name, self.output.join("\n"));
        }
    }

    /// Quits and checks the exit status.
    fn quit(mut self) {
        self.send("quit");
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                assert!(status.success(), "{} exits cleanly: {status}", self.name);
                return;
            }
            assert!(Instant::now() < deadline, "{} does not quit", self.name);
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Repl {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The message number (`#7`) in a printed line.
fn number_in(line: &str) -> u64 {
    let after = line.split_once('#').unwrap_or_else(|| panic!("no #number in {line:?}")).1;
    after.chars().take_while(char::is_ascii_digit).collect::<String>().parse().unwrap()
}

#[test]
fn the_repl_does_what_a_bot_needs() {
    let dir = tempfile::tempdir().unwrap();
    let node = sqlite_node(dir.path());
    let mut alice = Repl::start(&node, dir.path(), "alice");
    let mut bob = Repl::start(&node, dir.path(), "bob");

    alice.send("chat bob");
    alice.expect("chat ready: #1");
    bob.ask_until("list", "1. alice@");

    // A message, and a reply quoting it. Message numbers are each device's own.
    alice.send("1> hello bob");
    let hello_a = number_in(&alice.expect("sent #"));
    let hello_b = number_in(&bob.expect("alice: hello bob"));
    bob.send(&format!("reply 1 {hello_b} hi alice"));
    let reply_b = number_in(&bob.expect("sent #"));
    let reply_a = number_in(&alice.expect(&format!("bob: hi alice (reply to #{hello_a})")));

    // A reaction shows up on the other side, and goes away again.
    bob.send(&format!("react 1 {hello_b} 👍"));
    alice.expect(&format!("~ #{hello_a} alice: hello bob [👍 bob]"));
    bob.send(&format!("unreact 1 #{hello_b} 👍"));
    alice.expect_by("the reaction taken back", |l| l.ends_with(&format!("~ #{hello_a} alice: hello bob")));

    // Edit and delete, for everyone; someone else's message cannot be edited.
    alice.send(&format!("edit 1 {hello_a} hello bob, edited"));
    bob.expect(&format!("~ #{hello_b} alice: hello bob, edited (edited)"));
    alice.send(&format!("edit 1 {reply_a} not mine"));
    alice.expect("! you can only change your own messages");
    alice.send(&format!("delete 1 {hello_a}"));
    bob.expect(&format!("~ #{hello_b} alice: (message deleted)"));
    bob.send("history 1");
    bob.expect(&format!("#{reply_b} bob: hi alice (reply to #{hello_b})"));

    // A file of three chunks goes from Alice's disk to Bob's, byte for byte.
    let mut data = vec![0u8; 600_000];
    rand::thread_rng().fill_bytes(&mut data);
    let sent = dir.path().join("report.bin");
    std::fs::write(&sent, &data).unwrap();
    alice.send(&format!("sendfile 1 {}", sent.display()));
    alice.expect("sent file report.bin (600000 bytes)");
    let file = number_in(&bob.expect("alice: [file report.bin · 600000 bytes]"));
    let saved = dir.path().join("downloads");
    std::fs::create_dir(&saved).unwrap();
    let saved = saved.join("report copy.bin");
    bob.send(&format!("download 1 {file} {}", saved.display()));
    bob.expect("(600000 bytes, checked)");
    assert!(std::fs::read(&saved).unwrap() == data, "the downloaded file has the sent bytes");
    assert!(!saved.with_extension("bin.part").exists(), "no partial file is left");
    bob.send(&format!("download 1 {file} {}", saved.display()));
    bob.expect("exists; choose another path");
    bob.send("download 1 9999 elsewhere.bin");
    bob.expect("! no message #9999");

    // Leaving.
    bob.send("leave 1");
    bob.expect("left conversation 1");
    alice.expect_by("bob left", |l| l.contains("— bob@") && l.ends_with(" left"));
    bob.ask_until("list", "[left]");
    alice.quit();
    bob.quit();
}

/// A node on SQLite in `dir`, on any free port.
fn sqlite_node(dir: &Path) -> qpq_server::RunningNode {
    qpq_server::spawn(qpq_server::Config::for_tests(dir)).expect("node starts")
}
