//! A short run of the load generator against a node started in the test (SQLite), checking
//! what the figures rest on: the node accepted messages, every accepted message reached every
//! other member device exactly once, the acknowledgements left no queue behind, and the raw
//! echo moved frames of the ciphertext's size.

use std::time::{Duration, Instant};

use qpq_load::{Params, Report, Storage, Target};

/// Runs the load generator with `params`; prints its report and returns it with the wall time.
fn run(params: &Params) -> (Report, f64) {
    let t = Instant::now();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let report = tokio::task::LocalSet::new().block_on(&rt, qpq_load::run(params)).expect("the run completes");
    let secs = t.elapsed().as_secs_f64();
    println!("{report}");
    println!("wall time {secs:.1} s");
    (report, secs)
}

#[test]
fn a_short_run_delivers_every_accepted_message_once_and_drains_the_queues() {
    let params = Params {
        target: Target::Spawn { storage: Storage::Sqlite, postgres_admin: String::new(), sends_per_min: 0 },
        groups: 2,
        group_size: 3,
        senders: 3,
        in_flight: 2,
        text_bytes: 32,
        pool: 8,
        warmup: Duration::from_millis(300),
        duration: Duration::from_millis(1500),
        node_log: "error".into(),
    };
    let (report, _) = run(&params);

    let q = &report.qpq;
    assert!(q.accepted_in_window > 0, "the node accepted messages in the window");
    assert!(q.accepted_total >= q.accepted_in_window);
    assert!(q.failures.is_empty() && q.refused.is_empty(), "no refusals with the limits set: {:?} {:?}", q.failures, q.refused);
    q.exactly_once.as_ref().expect("every accepted message reached every other member device exactly once");
    q.queues_empty.as_ref().expect("the acknowledgements emptied the queues");
    // Groups of three: every message goes to the two other members.
    assert_eq!(q.delivered_total, 2 * q.accepted_total);
    assert!(report.ciphertext_bytes > params.text_bytes, "the payload is a real MLS message, larger than its text");

    let r = &report.raw;
    assert!(r.failures.is_empty(), "{:?}", r.failures);
    assert!(r.echoed_in_window > 0 && r.bytes_total >= r.echoed_in_window * report.ciphertext_bytes as u64);
    assert!(report.ratio() > 0.0);
}

#[test]
fn the_send_limit_is_waited_out_as_the_node_says_and_nothing_is_lost() {
    // 60 a minute per account: a burst of 60, then one a second; each sender is its own account.
    let params = Params {
        target: Target::Spawn { storage: Storage::Sqlite, postgres_admin: String::new(), sends_per_min: 60 },
        groups: 1,
        group_size: 2,
        senders: 2,
        in_flight: 1,
        text_bytes: 16,
        pool: 4,
        warmup: Duration::from_millis(200),
        duration: Duration::from_millis(1500),
        node_log: "error".into(),
    };
    let (report, secs) = run(&params);

    let q = &report.qpq;
    let (limited, waited_ms) = q.rate_limited;
    // The node never lets an account past its bucket: the burst plus a token a second.
    assert!(q.accepted_total as f64 <= 2.0 * (60.0 + secs.ceil()), "{} accepted in {secs:.1} s", q.accepted_total);
    if q.accepted_total > 2 * 60 {
        assert!(limited > 0 && waited_ms > 0, "past the burst, the node answered rate_limited and the senders waited");
    }
    assert!(q.failures.is_empty() && q.refused.is_empty(), "rate_limited is a wait, not a refusal: {:?} {:?}", q.failures, q.refused);
    q.exactly_once.as_ref().expect("messages sent again after the wait arrive once");
    q.queues_empty.as_ref().expect("the acknowledgements emptied the queues");
}
