//! psk_secret.json: combining external PSKs into psk_secret (RFC 9420
//! §8.4). openmls computes this only while staging a commit or welcome, so
//! the RFC derivation over the `openmls_rust_crypto` primitives is checked.

use serde::Deserialize;
use serde_json::Value;

use crate::{
    error::{expect_eq, CheckError},
    rfc::key_schedule::{psk_secret, ExternalPsk},
    vectors::json::{suite_of, typed, Hex},
};

#[derive(Deserialize)]
struct Psk {
    psk_id: Hex,
    psk: Hex,
    psk_nonce: Hex,
}

#[derive(Deserialize)]
struct Vector {
    psks: Vec<Psk>,
    psk_secret: Hex,
}

pub(crate) fn check(v: &Value) -> Result<(), CheckError> {
    let s = suite_of(v)?;
    let t: Vector = typed(v)?;
    let psks: Vec<ExternalPsk<'_>> = t
        .psks
        .iter()
        .map(|p| ExternalPsk {
            psk_id: &p.psk_id,
            psk: &p.psk,
            psk_nonce: &p.psk_nonce,
        })
        .collect();
    expect_eq("psk_secret", &psk_secret(&s, &psks)?, &t.psk_secret)
}
