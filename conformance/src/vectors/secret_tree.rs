//! secret-tree.json: sender-data keys and the per-leaf hash ratchets
//! (RFC 9420 §6.3.2, §9). openmls's secret tree is crate-private and cannot
//! be seeded with a given encryption secret, so the RFC derivation is used.

use serde::Deserialize;
use serde_json::Value;

use crate::{
    error::{expect_eq, CheckError},
    rfc::secret_tree::{sender_data_key_nonce, RatchetKind, SecretTree},
    vectors::json::{suite_of, typed, Hex},
};

#[derive(Deserialize)]
struct SenderData {
    sender_data_secret: Hex,
    ciphertext: Hex,
    key: Hex,
    nonce: Hex,
}

#[derive(Deserialize)]
struct Generation {
    generation: u32,
    handshake_key: Hex,
    handshake_nonce: Hex,
    application_key: Hex,
    application_nonce: Hex,
}

#[derive(Deserialize)]
struct Vector {
    sender_data: SenderData,
    encryption_secret: Hex,
    leaves: Vec<Vec<Generation>>,
}

pub(crate) fn check(v: &Value) -> Result<(), CheckError> {
    let s = suite_of(v)?;
    let t: Vector = typed(v)?;
    let sd = &t.sender_data;
    let kn = sender_data_key_nonce(&s, &sd.sender_data_secret, &sd.ciphertext)?;
    expect_eq("sender_data key", &kn.key, &sd.key)?;
    expect_eq("sender_data nonce", &kn.nonce, &sd.nonce)?;

    let members =
        u32::try_from(t.leaves.len()).map_err(|_| CheckError::Json("too many leaves".into()))?;
    let tree = SecretTree::new(&s, &t.encryption_secret, members);
    for (leaf, generations) in t.leaves.iter().enumerate() {
        for g in generations {
            let hs = tree.key_nonce(leaf as u32, RatchetKind::Handshake, g.generation)?;
            let app = tree.key_nonce(leaf as u32, RatchetKind::Application, g.generation)?;
            let at = |what: &str| format!("leaf {leaf} generation {}: {what}", g.generation);
            expect_eq(&at("handshake_key"), &hs.key, &g.handshake_key)?;
            expect_eq(&at("handshake_nonce"), &hs.nonce, &g.handshake_nonce)?;
            expect_eq(&at("application_key"), &app.key, &g.application_key)?;
            expect_eq(&at("application_nonce"), &app.nonce, &g.application_nonce)?;
        }
    }
    Ok(())
}
