//! transcript-hashes.json: confirmation tag and the confirmed/interim
//! transcript hashes (RFC 9420 §8.2). openmls's `AuthenticatedContent` is
//! crate-private, so the structure is decoded and hashed from the RFC.

use serde::Deserialize;
use serde_json::Value;

use crate::{
    error::{expect_eq, CheckError},
    rfc::{
        codec::Reader,
        framing::{AuthData, ContentType, FramedContent},
        key_schedule::update_transcript,
    },
    vectors::json::{suite_of, typed, Hex},
};

#[derive(Deserialize)]
struct Vector {
    confirmation_key: Hex,
    authenticated_content: Hex,
    interim_transcript_hash_before: Hex,
    confirmed_transcript_hash_after: Hex,
    interim_transcript_hash_after: Hex,
}

pub(crate) fn check(v: &Value) -> Result<(), CheckError> {
    let s = suite_of(v)?;
    let t: Vector = typed(v)?;
    // AuthenticatedContent { WireFormat wire_format; FramedContent content; FramedContentAuthData auth; }
    let mut r = Reader::new(&t.authenticated_content);
    r.u16()?; // wire_format
    let content = FramedContent::read(&mut r)?;
    if content.content_type != ContentType::Commit {
        return Err(CheckError::Protocol(
            "authenticated_content is not a commit",
        ));
    }
    // ConfirmedTranscriptHashInput is everything up to and including the signature.
    let auth_start = r.pos();
    let signature_len = {
        let mut probe = r.clone();
        probe.vec()?;
        probe.pos() - auth_start
    };
    let auth = AuthData::read(&mut r, ContentType::Commit)?;
    r.finish("AuthenticatedContent")?;
    let confirmed_input = &t.authenticated_content[..auth_start + signature_len];
    let tag = auth
        .confirmation_tag
        .ok_or(CheckError::Protocol("commit without confirmation tag"))?;

    let expected_tag = s.mac(&t.confirmation_key, &t.confirmed_transcript_hash_after)?;
    if expected_tag != tag {
        return Err(CheckError::Verify("confirmation tag"));
    }
    let tr = update_transcript(&s, &t.interim_transcript_hash_before, confirmed_input, &tag)?;
    expect_eq(
        "confirmed_transcript_hash_after",
        &tr.confirmed,
        &t.confirmed_transcript_hash_after,
    )?;
    expect_eq(
        "interim_transcript_hash_after",
        &tr.interim,
        &t.interim_transcript_hash_after,
    )?;
    Ok(())
}
