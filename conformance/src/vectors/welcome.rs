//! welcome.json: decrypting a Welcome and verifying its GroupInfo
//! (RFC 9420 §12.4.3). openmls joins only through `StagedWelcome`, which also
//! needs the full ratchet tree that these vectors do not carry, so the
//! decryption and verification steps are computed from the RFC.

use serde::Deserialize;
use serde_json::Value;

use crate::{
    error::CheckError,
    rfc::{
        codec::Reader,
        crypto::Suite,
        key_schedule::{from_joiner, welcome_key_nonce},
        structs::{GroupContext, KeyPackage},
    },
    vectors::json::{suite_of, typed, Hex},
};

#[derive(Deserialize)]
struct Vector {
    init_priv: Hex,
    signer_pub: Hex,
    key_package: Hex,
    welcome: Hex,
}

/// `MLSMessage` header check; returns a reader positioned at the body.
pub(crate) fn mls_message(bytes: &[u8], wire_format: u16) -> Result<Reader<'_>, CheckError> {
    let mut r = Reader::new(bytes);
    if r.u16()? != 1 {
        return Err(CheckError::Decode("MLSMessage", "version is not mls10"));
    }
    if r.u16()? != wire_format {
        return Err(CheckError::Protocol("unexpected wire format"));
    }
    Ok(r)
}

/// A decrypted GroupInfo.
struct GroupInfo {
    context: GroupContext,
    confirmation_tag: Vec<u8>,
    tbs: Vec<u8>,
    signature: Vec<u8>,
}

fn parse_group_info(bytes: &[u8]) -> Result<GroupInfo, CheckError> {
    let mut r = Reader::new(bytes);
    let context = GroupContext::read(&mut r)?;
    r.vec()?; // extensions
    let confirmation_tag = r.vec()?.to_vec();
    r.u32()?; // signer
    let tbs = bytes[..r.pos()].to_vec();
    let signature = r.vec()?.to_vec();
    r.finish("GroupInfo")?;
    Ok(GroupInfo {
        context,
        confirmation_tag,
        tbs,
        signature,
    })
}

fn join(s: &Suite, t: &Vector) -> Result<(), CheckError> {
    let mut kr = mls_message(&t.key_package, 5)?;
    let kp = KeyPackage::read(&mut kr)?;
    kr.finish("KeyPackage")?;
    if kp.cipher_suite != s.id() {
        return Err(CheckError::mismatch("key package cipher suite"));
    }
    let kp_ref = s.ref_hash(b"MLS 1.0 KeyPackage Reference", &kp.bytes)?;

    let mut wr = mls_message(&t.welcome, 3)?;
    if wr.u16()? != s.id() {
        return Err(CheckError::mismatch("welcome cipher suite"));
    }
    let secrets = wr.vec_of(|r| Ok((r.vec()?.to_vec(), r.vec()?.to_vec(), r.vec()?.to_vec())))?;
    let encrypted_group_info = wr.vec()?;
    wr.finish("Welcome")?;

    let (_, kem, ct) = secrets
        .iter()
        .find(|(new_member, _, _)| *new_member == kp_ref)
        .ok_or(CheckError::Protocol("no secrets for this key package"))?;
    let group_secrets =
        s.decrypt_with_label(&t.init_priv, b"Welcome", encrypted_group_info, kem, ct)?;
    // GroupSecrets { joiner_secret<V>; optional<PathSecret> path_secret; PreSharedKeyID psks<V>; }
    let mut gr = Reader::new(&group_secrets);
    let joiner_secret = gr.vec()?.to_vec();
    if gr.present()? {
        gr.vec()?;
    }
    let psks = gr.vec()?;
    gr.finish("GroupSecrets")?;
    if !psks.is_empty() {
        return Err(CheckError::Protocol("welcome vector with PSKs"));
    }
    let psk_secret = vec![0u8; s.nh()];

    // The welcome secret does not depend on the group context.
    let pre = from_joiner(s, &joiner_secret, &psk_secret, &[])?;
    let (key, nonce) = welcome_key_nonce(s, &pre.welcome_secret)?;
    let group_info_bytes = s.aead_open(&key, &nonce, &[], encrypted_group_info)?;
    let gi = parse_group_info(&group_info_bytes)?;
    s.verify_with_label(&t.signer_pub, b"GroupInfoTBS", &gi.tbs, &gi.signature)?;

    let k = from_joiner(s, &joiner_secret, &psk_secret, &gi.context.encode()?)?;
    let tag = s.mac(&k.confirmation_key, &gi.context.confirmed_transcript_hash)?;
    if tag != gi.confirmation_tag {
        return Err(CheckError::Verify("GroupInfo confirmation tag"));
    }
    Ok(())
}

pub(crate) fn check(v: &Value) -> Result<(), CheckError> {
    let s = suite_of(v)?;
    let t: Vector = typed(v)?;
    join(&s, &t)
}
