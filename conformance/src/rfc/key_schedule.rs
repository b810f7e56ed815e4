//! The key schedule (RFC 9420 §8), PSK secret (§8.4), exporter (§8.5),
//! transcript hashes (§8.2) and the Welcome key derivation (§12.4.3.1).

use crate::{
    error::CheckError,
    rfc::{codec::Writer, crypto::Suite},
};

/// Every secret one epoch of the key schedule derives.
pub(crate) struct EpochSecrets {
    pub(crate) joiner_secret: Vec<u8>,
    pub(crate) welcome_secret: Vec<u8>,
    pub(crate) init_secret: Vec<u8>,
    pub(crate) sender_data_secret: Vec<u8>,
    pub(crate) encryption_secret: Vec<u8>,
    pub(crate) exporter_secret: Vec<u8>,
    pub(crate) epoch_authenticator: Vec<u8>,
    pub(crate) external_secret: Vec<u8>,
    pub(crate) confirmation_key: Vec<u8>,
    pub(crate) membership_key: Vec<u8>,
    pub(crate) resumption_psk: Vec<u8>,
}

/// joiner_secret = ExpandWithLabel(Extract(init_secret, commit_secret), "joiner", GroupContext, Nh)
pub(crate) fn joiner_secret(
    suite: &Suite,
    init_secret: &[u8],
    commit_secret: &[u8],
    group_context: &[u8],
) -> Result<Vec<u8>, CheckError> {
    let prk = suite.extract(init_secret, commit_secret)?;
    suite.expand_with_label(&prk, b"joiner", group_context, suite.nh())
}

/// Runs one epoch from the joiner secret.
pub(crate) fn from_joiner(
    suite: &Suite,
    joiner_secret: &[u8],
    psk_secret: &[u8],
    group_context: &[u8],
) -> Result<EpochSecrets, CheckError> {
    let member = suite.extract(joiner_secret, psk_secret)?;
    let welcome_secret = suite.derive_secret(&member, b"welcome")?;
    let epoch_secret = suite.expand_with_label(&member, b"epoch", group_context, suite.nh())?;
    let d = |label: &[u8]| suite.derive_secret(&epoch_secret, label);
    Ok(EpochSecrets {
        joiner_secret: joiner_secret.to_vec(),
        welcome_secret,
        init_secret: d(b"init")?,
        sender_data_secret: d(b"sender data")?,
        encryption_secret: d(b"encryption")?,
        exporter_secret: d(b"exporter")?,
        epoch_authenticator: d(b"authentication")?,
        external_secret: d(b"external")?,
        confirmation_key: d(b"confirm")?,
        membership_key: d(b"membership")?,
        resumption_psk: d(b"resumption")?,
    })
}

/// MLS-Exporter(Label, Context, Length) (RFC 9420 §8.5).
pub(crate) fn exporter(
    suite: &Suite,
    exporter_secret: &[u8],
    label: &[u8],
    context: &[u8],
    length: usize,
) -> Result<Vec<u8>, CheckError> {
    let derived = suite.derive_secret(exporter_secret, label)?;
    suite.expand_with_label(&derived, b"exported", &suite.hash(context)?, length)
}

/// One external PSK as the psk_secret computation consumes it.
pub(crate) struct ExternalPsk<'a> {
    pub(crate) psk_id: &'a [u8],
    pub(crate) psk: &'a [u8],
    pub(crate) psk_nonce: &'a [u8],
}

/// psk_secret over a list of external PSKs (RFC 9420 §8.4).
pub(crate) fn psk_secret(suite: &Suite, psks: &[ExternalPsk<'_>]) -> Result<Vec<u8>, CheckError> {
    let zero = vec![0u8; suite.nh()];
    let count = u16::try_from(psks.len()).map_err(|_| CheckError::Encode("too many PSKs"))?;
    let mut secret = zero.clone();
    for (index, p) in psks.iter().enumerate() {
        // PSKLabel { PreSharedKeyID id; uint16 index; uint16 count; }
        let label = Writer::new()
            .u8(1) // external
            .vec(p.psk_id)?
            .vec(p.psk_nonce)?
            .u16(index as u16)
            .u16(count)
            .finish();
        let extracted = suite.extract(&zero, p.psk)?;
        let input = suite.expand_with_label(&extracted, b"derived psk", &label, suite.nh())?;
        secret = suite.extract(&input, &secret)?;
    }
    Ok(secret)
}

/// Transcript hashes after one commit (RFC 9420 §8.2).
pub(crate) struct Transcript {
    pub(crate) confirmed: Vec<u8>,
    pub(crate) interim: Vec<u8>,
}

/// Updates the transcript with `ConfirmedTranscriptHashInput` (wire format,
/// content and signature) and the encoded confirmation tag `MAC<V>`.
pub(crate) fn update_transcript(
    suite: &Suite,
    interim_before: &[u8],
    confirmed_input: &[u8],
    confirmation_tag: &[u8],
) -> Result<Transcript, CheckError> {
    let confirmed = suite.hash(&[interim_before, confirmed_input].concat())?;
    let interim_input = Writer::new().vec(confirmation_tag)?.finish();
    let interim = suite.hash(&[confirmed.as_slice(), &interim_input].concat())?;
    Ok(Transcript { confirmed, interim })
}

/// welcome_key and welcome_nonce (RFC 9420 §12.4.3.1).
pub(crate) fn welcome_key_nonce(
    suite: &Suite,
    welcome_secret: &[u8],
) -> Result<(Vec<u8>, Vec<u8>), CheckError> {
    Ok((
        suite.expand_with_label(welcome_secret, b"key", &[], suite.nk())?,
        suite.expand_with_label(welcome_secret, b"nonce", &[], suite.nn())?,
    ))
}
