//! key-schedule.json: the epoch key schedule, exporter and external key
//! (RFC 9420 §8). openmls derives these only inside a group and cannot be
//! fed an arbitrary commit secret or init secret, so the RFC derivation over
//! the `openmls_rust_crypto` primitives is checked.

use serde::Deserialize;
use serde_json::Value;

use crate::{
    error::{expect_eq, CheckError},
    rfc::{
        key_schedule::{exporter, from_joiner, joiner_secret},
        structs::GroupContext,
    },
    vectors::json::{suite_of, typed, Hex},
};

#[derive(Deserialize)]
struct Exporter {
    /// A string label, used as its UTF-8 bytes (it happens to look like hex).
    label: String,
    context: Hex,
    length: usize,
    secret: Hex,
}

#[derive(Deserialize)]
struct Epoch {
    tree_hash: Hex,
    commit_secret: Hex,
    psk_secret: Hex,
    confirmed_transcript_hash: Hex,
    group_context: Hex,
    joiner_secret: Hex,
    welcome_secret: Hex,
    init_secret: Hex,
    sender_data_secret: Hex,
    encryption_secret: Hex,
    exporter_secret: Hex,
    epoch_authenticator: Hex,
    external_secret: Hex,
    confirmation_key: Hex,
    membership_key: Hex,
    resumption_psk: Hex,
    external_pub: Hex,
    exporter: Exporter,
}

#[derive(Deserialize)]
struct Vector {
    group_id: Hex,
    initial_init_secret: Hex,
    epochs: Vec<Epoch>,
}

pub(crate) fn check(v: &Value) -> Result<(), CheckError> {
    let s = suite_of(v)?;
    let t: Vector = typed(v)?;
    let mut init_secret = t.initial_init_secret.0.clone();
    for (n, e) in t.epochs.iter().enumerate() {
        let at = |what: &str| format!("epoch {n}: {what}");
        let ctx = GroupContext {
            cipher_suite: s.id(),
            group_id: t.group_id.0.clone(),
            epoch: n as u64,
            tree_hash: e.tree_hash.0.clone(),
            confirmed_transcript_hash: e.confirmed_transcript_hash.0.clone(),
            extensions: Vec::new(),
        }
        .encode()?;
        expect_eq(&at("group_context"), &ctx, &e.group_context)?;
        let joiner = joiner_secret(&s, &init_secret, &e.commit_secret, &ctx)?;
        let k = from_joiner(&s, &joiner, &e.psk_secret, &ctx)?;
        for (name, got, want) in [
            ("joiner_secret", &k.joiner_secret, &e.joiner_secret),
            ("welcome_secret", &k.welcome_secret, &e.welcome_secret),
            ("init_secret", &k.init_secret, &e.init_secret),
            (
                "sender_data_secret",
                &k.sender_data_secret,
                &e.sender_data_secret,
            ),
            (
                "encryption_secret",
                &k.encryption_secret,
                &e.encryption_secret,
            ),
            ("exporter_secret", &k.exporter_secret, &e.exporter_secret),
            (
                "epoch_authenticator",
                &k.epoch_authenticator,
                &e.epoch_authenticator,
            ),
            ("external_secret", &k.external_secret, &e.external_secret),
            ("confirmation_key", &k.confirmation_key, &e.confirmation_key),
            ("membership_key", &k.membership_key, &e.membership_key),
            ("resumption_psk", &k.resumption_psk, &e.resumption_psk),
        ] {
            expect_eq(&at(name), got, want)?;
        }
        let (_, external_pub) = s.derive_key_pair(&k.external_secret)?;
        expect_eq(&at("external_pub"), &external_pub, &e.external_pub)?;
        let x = &e.exporter;
        let got = exporter(
            &s,
            &k.exporter_secret,
            x.label.as_bytes(),
            &x.context,
            x.length,
        )?;
        expect_eq(&at("exporter.secret"), &got, &x.secret)?;
        init_secret = k.init_secret;
    }
    Ok(())
}
