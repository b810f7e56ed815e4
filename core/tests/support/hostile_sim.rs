//! The hostile member (`hostile.rs`) on the simulated delivery service: registering it in the
//! directory, handing it its queue and making its calls. Test crates that use it include both
//! files next to `mod support;` (the fuzz crate, which reuses `support/mod.rs`, does not).

use qpq_core::{Outbound, OutboundOp, OutboundResult};
use qpq_types::UserId;

use crate::hostile::Hostile;
use crate::support::SimServer;

/// A hostile member registered as `name@sim.test`, its key packages published.
pub fn hostile_member(server: &mut SimServer, name: &str, seed: u8) -> Hostile {
    let h = Hostile::new(UserId::parse(&format!("{name}@sim.test")).unwrap(), seed);
    server.identities.insert(h.addr.user.clone(), (h.identity_key, vec![h.record.clone()]));
    server.key_packages.entry(h.addr.clone()).or_default().extend(h.key_packages(5));
    h
}

/// Hands a hostile member its queue.
pub fn hostile_sync(server: &SimServer, h: &mut Hostile) {
    for env in server.fetch(&h.addr, 0) {
        h.receive(&env);
    }
}

/// Makes a hostile member's call; returns whether the server accepted it.
pub fn hostile_call(server: &mut SimServer, h: &mut Hostile, out: Outbound) -> bool {
    let accepted = matches!(server.handle(&h.addr, &out), Some(OutboundResult::Accepted { .. }));
    if matches!(out.op, OutboundOp::Commit { .. }) {
        h.settle(accepted);
    }
    accepted
}
