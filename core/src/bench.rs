//! A self-contained MLS workload, the same natively and in the browser, so that the two can
//! be compared: one group of `members`, one sender, one receiver, `messages` text messages
//! encrypted (compose → MLS → changeset) and decrypted (MLS → history → changeset) by the
//! engine. The delivery service is a direct hand-over of each engine's output.

use qpq_types::{Envelope, EnvelopeKind};

use crate::{ClaimedPackage, ConversationKind, Engine, OutboundOp, OutboundResult};

/// Engine steps per second.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MlsRates {
    /// Messages composed and encrypted per second.
    pub encrypt_per_sec: f64,
    /// Messages decrypted into history per second.
    pub decrypt_per_sec: f64,
}

/// Runs the workload; `now_ms` is the platform's clock (the engine never reads one).
pub fn mls_rates(members: usize, messages: usize, text_len: usize, now_ms: &dyn Fn() -> f64) -> MlsRates {
    let members = members.max(2);
    let mut engines: Vec<Engine> = (0..members)
        .map(|i| {
            let user = qpq_types::UserId::parse(&format!("u{i}@bench")).expect("valid name");
            let mut seed = [0u8; 32];
            seed[..8].copy_from_slice(&(i as u64 + 1).to_be_bytes());
            Engine::create(user, seed, 1)
        })
        .collect();
    // Everyone's directory entry, which the receiver checks the group's leaves against.
    let directory: Vec<_> = engines
        .iter()
        .map(|e| (e.user().clone(), e.identity_public_key(), e.device_record().clone()))
        .collect();
    let mut creator = engines.remove(0);
    let conv = creator.create_conversation(ConversationKind::Group, "bench", 1).expect("create");
    let mut packages = Vec::new();
    for e in engines.iter_mut() {
        creator
            .learn_devices(e.user(), &e.identity_public_key(), std::slice::from_ref(e.device_record()), 1)
            .expect("records verify");
        let kp = e.generate_key_packages(1).expect("key package").remove(0);
        packages.push(ClaimedPackage { user: e.user().clone(), device: e.device_id(), key_package: kp });
    }
    creator.add_members(&conv, packages).expect("add");
    let mut welcome = Vec::new();
    while let Some(out) = creator.next_outbound(1) {
        if let OutboundOp::Commit { welcome: w, .. } = &out.op {
            welcome = w.clone();
        }
        creator.outbound_result(out.id, OutboundResult::Accepted { server_time: 1 }, 1);
    }
    creator.take_changes();
    let receiver = &mut engines[0];
    for (user, ik, record) in &directory {
        receiver.learn_devices(user, ik, std::slice::from_ref(record), 1).expect("records verify");
    }
    let mut seq = 1;
    let env = |seq: u64, kind, payload: Vec<u8>| Envelope {
        seq,
        channel: conv.clone(),
        kind,
        payload,
        server_time: 1,
        expires_at: 0,
    };
    receiver.receive(&env(seq, EnvelopeKind::Welcome, welcome), 1).expect("welcome");
    receiver.take_changes();

    let text = "x".repeat(text_len);
    let mut payloads = Vec::with_capacity(messages);
    let t = now_ms();
    for _ in 0..messages {
        creator.send_text(&conv, &text, None, 1).expect("send");
        let out = creator.next_outbound(1).expect("outbound");
        creator.take_changes();
        creator.outbound_result(out.id, OutboundResult::Accepted { server_time: 1 }, 1);
        creator.take_changes();
        if let OutboundOp::Enqueue { payload, .. } = out.op {
            payloads.push(payload);
        }
    }
    let enc_ms = (now_ms() - t).max(0.001);
    let t = now_ms();
    for p in payloads {
        seq += 1;
        receiver.receive(&env(seq, EnvelopeKind::Application, p), 1).expect("decrypt");
        receiver.take_changes();
    }
    let dec_ms = (now_ms() - t).max(0.001);
    assert_eq!(receiver.history(&conv).len(), messages + 1, "every message decrypted");
    MlsRates {
        encrypt_per_sec: messages as f64 * 1000.0 / enc_ms,
        decrypt_per_sec: messages as f64 * 1000.0 / dec_ms,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_workload_runs() {
        let start = std::time::Instant::now();
        let r = super::mls_rates(3, 5, 10, &|| start.elapsed().as_secs_f64() * 1000.0);
        assert!(r.encrypt_per_sec > 0.0 && r.decrypt_per_sec > 0.0);
    }
}
