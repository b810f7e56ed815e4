//! Argon2id with the passphrase lock's parameters (19 MiB, 2 passes, 1 lane), natively: the
//! median of 5 derivations in milliseconds, printed as `argon2id_ms N` for
//! `playwright/bench/mls.mjs`, which runs the same in the browser.
//!
//! Run: `cargo bench -p qpq-client --bench argon2`

use std::time::Instant;

fn main() {
    let start = Instant::now();
    let now = || start.elapsed().as_secs_f64() * 1000.0;
    println!("argon2id_ms {:.1}", qpq_client::passphrase::time_derive(5, &now));
}
