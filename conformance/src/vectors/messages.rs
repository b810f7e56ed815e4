//! messages.json: every structure decodes with the corresponding openmls
//! public type and re-encodes to the same bytes (tls_codec round trips).
//! `GroupSecrets` and `Commit` (with `UpdatePath`) are crate-private in
//! openmls; they are declared here with `tls_codec` over openmls's public
//! component types.

use openmls::{
    messages::proposals_in::ProposalOrRefIn,
    prelude::{
        AddProposalIn, ContentType, ExternalInitProposal, GroupContextExtensionProposalIn,
        MlsMessageBodyIn, MlsMessageIn, PreSharedKeyProposal, RatchetTreeIn, ReInitProposal,
        RemoveProposal, UpdateProposalIn,
    },
    schedule::PreSharedKeyId,
    treesync::EncryptionKey,
};
use openmls_traits::types::HpkeCiphertext;
use serde::Deserialize;
use serde_json::Value;
use tls_codec::{
    Deserialize as TlsDeserialize, Serialize as TlsSerialize, TlsDeserialize, TlsSerialize,
    TlsSize, VLBytes,
};

use crate::{
    error::CheckError,
    vectors::json::{typed, Hex},
};

#[derive(Deserialize)]
struct Vector {
    mls_welcome: Hex,
    mls_group_info: Hex,
    mls_key_package: Hex,
    ratchet_tree: Hex,
    group_secrets: Hex,
    add_proposal: Hex,
    update_proposal: Hex,
    remove_proposal: Hex,
    pre_shared_key_proposal: Hex,
    re_init_proposal: Hex,
    external_init_proposal: Hex,
    group_context_extensions_proposal: Hex,
    commit: Hex,
    public_message_application: Hex,
    public_message_proposal: Hex,
    public_message_commit: Hex,
    private_message: Hex,
}

/// `GroupSecrets` (RFC 9420 §12.4.3.1).
#[derive(Debug, TlsDeserialize, TlsSerialize, TlsSize)]
struct GroupSecrets {
    joiner_secret: VLBytes,
    path_secret: Option<VLBytes>,
    psks: Vec<PreSharedKeyId>,
}

/// `Commit { ProposalOrRef proposals<V>; optional<UpdatePath> path; }` (RFC 9420 §12.4).
#[derive(Debug, TlsDeserialize, TlsSerialize, TlsSize)]
struct Commit {
    proposals: Vec<ProposalOrRefIn>,
    path: Option<UpdatePath>,
}

/// `UpdatePath { LeafNode leaf_node; UpdatePathNode nodes<V>; }`. openmls's
/// decodable leaf node type is private, but an `Update` proposal is exactly
/// one `LeafNode` on the wire, so `UpdateProposalIn` decodes it.
#[derive(Debug, TlsDeserialize, TlsSerialize, TlsSize)]
struct UpdatePath {
    leaf_node: UpdateProposalIn,
    nodes: Vec<UpdatePathNode>,
}

/// `UpdatePathNode { HPKEPublicKey encryption_key; HPKECiphertext encrypted_path_secret<V>; }`
#[derive(Debug, TlsDeserialize, TlsSerialize, TlsSize)]
struct UpdatePathNode {
    encryption_key: EncryptionKey,
    encrypted_path_secret: Vec<HpkeCiphertext>,
}

/// `ReInit { group_id<V>; ProtocolVersion version; CipherSuite cipher_suite; Extension extensions<V>; }`.
/// openmls's `ReInitProposal` also rejects, while decoding, extension types
/// that may not appear in a group context; the vectors' random ReInit
/// proposals carry such types (e.g. ratchet_tree), which is well-formed
/// syntax, so this syntax-level type is used for the round trip. openmls's
/// stricter behaviour is recorded by `reinit_openmls_rejects_if_not_allowed`.
#[derive(Debug, TlsDeserialize, TlsSerialize, TlsSize)]
struct ReInit {
    group_id: VLBytes,
    version: u16,
    cipher_suite: u16,
    extensions: Vec<Extension>,
}

/// `Extension { ExtensionType extension_type; opaque extension_data<V>; }`
#[derive(Debug, TlsDeserialize, TlsSerialize, TlsSize)]
struct Extension {
    extension_type: u16,
    extension_data: VLBytes,
}

/// Decodes `bytes` as `T` (all bytes consumed) and re-encodes it.
fn round_trip<T: TlsDeserialize + TlsSerialize>(name: &str, bytes: &[u8]) -> Result<T, CheckError> {
    let value = T::tls_deserialize_exact(bytes)
        .map_err(|e| CheckError::Mismatch(format!("{name} does not decode: {e}")))?;
    let encoded = value
        .tls_serialize_detached()
        .map_err(|e| CheckError::Mismatch(format!("{name} does not encode: {e}")))?;
    if encoded != bytes {
        return Err(CheckError::Mismatch(format!(
            "{name} re-encodes differently"
        )));
    }
    Ok(value)
}

/// An MLSMessage round trip that must carry the named body.
fn message(
    name: &str,
    bytes: &[u8],
    want: fn(&MlsMessageBodyIn) -> bool,
) -> Result<MlsMessageIn, CheckError> {
    let m: MlsMessageIn = round_trip(name, bytes)?;
    if want(&m.clone().extract()) {
        Ok(m)
    } else {
        Err(CheckError::Mismatch(format!(
            "{name} has the wrong wire format"
        )))
    }
}

/// A PublicMessage round trip whose content must be of `content_type`.
fn public_message(name: &str, bytes: &[u8], content_type: ContentType) -> Result<(), CheckError> {
    let m = message(name, bytes, |b| {
        matches!(b, MlsMessageBodyIn::PublicMessage(_))
    })?;
    let got = m
        .try_into_protocol_message()
        .map_err(|e| CheckError::Mismatch(format!("{name}: {e:?}")))?
        .content_type();
    if got == content_type {
        Ok(())
    } else {
        Err(CheckError::Mismatch(format!(
            "{name} has content type {got:?}"
        )))
    }
}

/// Extension types RFC 9420 §17.3 registers for messages other than the
/// GroupContext: application_id (LeafNode), ratchet_tree and external_pub
/// (GroupInfo).
const NOT_GROUP_CONTEXT_EXTENSIONS: [u16; 3] = [1, 2, 4];

/// openmls's `ReInitProposal` must round-trip the proposal, unless the
/// proposal names an extension type that is not allowed in a group context,
/// in which case it must refuse it.
fn reinit_openmls_rejects_if_not_allowed(reinit: &ReInit, bytes: &[u8]) -> Result<(), CheckError> {
    let disallowed = reinit
        .extensions
        .iter()
        .any(|e| NOT_GROUP_CONTEXT_EXTENSIONS.contains(&e.extension_type));
    match (disallowed, ReInitProposal::tls_deserialize_exact(bytes)) {
        (true, Err(_)) => Ok(()),
        (true, Ok(_)) => Err(CheckError::Mismatch(
            "openmls accepted a ReInit with an extension not allowed in a group context".into(),
        )),
        (false, _) => round_trip::<ReInitProposal>("re_init_proposal (openmls)", bytes).map(|_| ()),
    }
}

pub(crate) fn check(v: &Value) -> Result<(), CheckError> {
    let t: Vector = typed(v)?;
    message("mls_welcome", &t.mls_welcome, |b| {
        matches!(b, MlsMessageBodyIn::Welcome(_))
    })?;
    message("mls_group_info", &t.mls_group_info, |b| {
        matches!(b, MlsMessageBodyIn::GroupInfo(_))
    })?;
    message("mls_key_package", &t.mls_key_package, |b| {
        matches!(b, MlsMessageBodyIn::KeyPackage(_))
    })?;
    round_trip::<RatchetTreeIn>("ratchet_tree", &t.ratchet_tree)?;
    round_trip::<GroupSecrets>("group_secrets", &t.group_secrets)?;
    round_trip::<AddProposalIn>("add_proposal", &t.add_proposal)?;
    round_trip::<UpdateProposalIn>("update_proposal", &t.update_proposal)?;
    round_trip::<RemoveProposal>("remove_proposal", &t.remove_proposal)?;
    round_trip::<PreSharedKeyProposal>("pre_shared_key_proposal", &t.pre_shared_key_proposal)?;
    let reinit = round_trip::<ReInit>("re_init_proposal", &t.re_init_proposal)?;
    reinit_openmls_rejects_if_not_allowed(&reinit, &t.re_init_proposal)?;
    round_trip::<ExternalInitProposal>("external_init_proposal", &t.external_init_proposal)?;
    round_trip::<GroupContextExtensionProposalIn>(
        "group_context_extensions_proposal",
        &t.group_context_extensions_proposal,
    )?;
    round_trip::<Commit>("commit", &t.commit)?;
    public_message(
        "public_message_application",
        &t.public_message_application,
        ContentType::Application,
    )?;
    public_message(
        "public_message_proposal",
        &t.public_message_proposal,
        ContentType::Proposal,
    )?;
    public_message(
        "public_message_commit",
        &t.public_message_commit,
        ContentType::Commit,
    )?;
    message("private_message", &t.private_message, |b| {
        matches!(b, MlsMessageBodyIn::PrivateMessage(_))
    })?;
    Ok(())
}
