//! crypto-basics.json: RefHash, ExpandWithLabel, DeriveSecret,
//! DeriveTreeSecret, SignWithLabel and EncryptWithLabel (RFC 9420 §5, §8).
//! openmls does not export its labelled operations, so they are computed
//! from the RFC over the `openmls_rust_crypto` primitives.

use serde::Deserialize;
use serde_json::Value;

use crate::{
    error::{expect_eq, CheckError},
    vectors::json::{suite_of, typed, Hex},
};

#[derive(Deserialize)]
struct RefHash {
    label: String,
    value: Hex,
    out: Hex,
}

#[derive(Deserialize)]
struct ExpandWithLabel {
    secret: Hex,
    label: String,
    context: Hex,
    length: usize,
    out: Hex,
}

#[derive(Deserialize)]
struct DeriveSecret {
    secret: Hex,
    label: String,
    out: Hex,
}

#[derive(Deserialize)]
struct DeriveTreeSecret {
    secret: Hex,
    label: String,
    generation: u32,
    length: usize,
    out: Hex,
}

#[derive(Deserialize)]
struct SignWithLabel {
    #[serde(rename = "priv")]
    private: Hex,
    #[serde(rename = "pub")]
    public: Hex,
    content: Hex,
    label: String,
    signature: Hex,
}

#[derive(Deserialize)]
struct EncryptWithLabel {
    #[serde(rename = "priv")]
    private: Hex,
    #[serde(rename = "pub")]
    public: Hex,
    label: String,
    context: Hex,
    plaintext: Hex,
    kem_output: Hex,
    ciphertext: Hex,
}

#[derive(Deserialize)]
struct Vector {
    ref_hash: RefHash,
    expand_with_label: ExpandWithLabel,
    derive_secret: DeriveSecret,
    derive_tree_secret: DeriveTreeSecret,
    sign_with_label: SignWithLabel,
    encrypt_with_label: EncryptWithLabel,
}

pub(crate) fn check(v: &Value) -> Result<(), CheckError> {
    let s = suite_of(v)?;
    let t: Vector = typed(v)?;

    let r = &t.ref_hash;
    expect_eq(
        "ref_hash",
        &s.ref_hash(r.label.as_bytes(), &r.value)?,
        &r.out,
    )?;

    let e = &t.expand_with_label;
    let got = s.expand_with_label(&e.secret, e.label.as_bytes(), &e.context, e.length)?;
    expect_eq("expand_with_label", &got, &e.out)?;

    let d = &t.derive_secret;
    expect_eq(
        "derive_secret",
        &s.derive_secret(&d.secret, d.label.as_bytes())?,
        &d.out,
    )?;

    let d = &t.derive_tree_secret;
    let got = s.derive_tree_secret(&d.secret, d.label.as_bytes(), d.generation, d.length)?;
    expect_eq("derive_tree_secret", &got, &d.out)?;

    let g = &t.sign_with_label;
    s.verify_with_label(&g.public, g.label.as_bytes(), &g.content, &g.signature)?;
    let mine = s.sign_with_label(&g.private, g.label.as_bytes(), &g.content)?;
    s.verify_with_label(&g.public, g.label.as_bytes(), &g.content, &mine)?;

    let e = &t.encrypt_with_label;
    let label = e.label.as_bytes();
    let pt = s.decrypt_with_label(&e.private, label, &e.context, &e.kem_output, &e.ciphertext)?;
    expect_eq("encrypt_with_label plaintext", &pt, &e.plaintext)?;
    let (kem, ct) = s.encrypt_with_label(&e.public, label, &e.context, &e.plaintext)?;
    let pt = s.decrypt_with_label(&e.private, label, &e.context, &kem, &ct)?;
    expect_eq("encrypt_with_label round trip", &pt, &e.plaintext)?;
    Ok(())
}
