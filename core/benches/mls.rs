//! MLS encrypt and decrypt throughput of the engine, natively, for a 2-member and a
//! 100-member group (`qpq_core::bench::mls_rates`, the same workload the browser runs).
//!
//! Run: `cargo bench -p qpq-core --bench mls`

use std::time::Instant;

fn main() {
    println!("MLS engine throughput, native (release), suite 0x0003, 100-byte texts");
    println!("{:>8} {:>10} {:>14} {:>14}", "members", "messages", "encrypt/s", "decrypt/s");
    let start = Instant::now();
    let clock = move || start.elapsed().as_secs_f64() * 1000.0;
    for (members, messages) in [(2usize, 3000usize), (100, 1000)] {
        let r = qpq_core::bench::mls_rates(members, messages, 100, &clock);
        println!("{members:>8} {messages:>10} {:>14.0} {:>14.0}", r.encrypt_per_sec, r.decrypt_per_sec);
    }
}
