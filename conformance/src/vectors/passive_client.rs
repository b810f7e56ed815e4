//! passive-client-welcome.json, passive-client-handling-commit.json and
//! passive-client-random.json: a client joins through openmls's public API
//! (key package imported into the storage provider, `StagedWelcome`) and
//! follows the group with `MlsGroup::process_message`, checking the epoch
//! authenticator after the join and after every commit.

use openmls::{
    prelude::{
        KeyPackage, KeyPackageBundle, KeyPackageIn, KeyPackageVerifyError, MlsGroup,
        MlsGroupJoinConfig, MlsMessageBodyIn, MlsMessageIn, ProcessedMessageContent,
        ProtocolVersion, RatchetTreeIn, StagedWelcome, MIXED_PLAINTEXT_WIRE_FORMAT_POLICY,
    },
    schedule::PreSharedKeyId,
};
use openmls_rust_crypto::OpenMlsRustCrypto;
use openmls_traits::{storage::StorageProvider, types::HpkePrivateKey, OpenMlsProvider};
use serde::Deserialize;
use serde_json::Value;
use tls_codec::Deserialize as _;

use crate::{
    error::{expect_eq, CheckError},
    rfc::{codec::Reader, crypto::Suite, structs::KeyPackage as RfcKeyPackage},
    vectors::json::{typed, Hex},
};

#[derive(Deserialize)]
pub(crate) struct ExternalPsk {
    pub(crate) psk_id: Hex,
    pub(crate) psk: Hex,
}

#[derive(Deserialize)]
pub(crate) struct Epoch {
    pub(crate) proposals: Vec<Hex>,
    pub(crate) commit: Hex,
    pub(crate) epoch_authenticator: Hex,
}

/// A passive-client vector.
#[derive(Deserialize)]
pub(crate) struct Vector {
    pub(crate) cipher_suite: u16,
    pub(crate) external_psks: Vec<ExternalPsk>,
    pub(crate) key_package: Hex,
    pub(crate) signature_priv: Hex,
    pub(crate) encryption_priv: Hex,
    pub(crate) init_priv: Hex,
    pub(crate) welcome: Hex,
    pub(crate) ratchet_tree: Option<Hex>,
    pub(crate) initial_epoch_authenticator: Hex,
    pub(crate) epochs: Vec<Epoch>,
}

fn ossl<E: std::fmt::Debug>(what: &'static str) -> impl Fn(E) -> CheckError {
    move |e| CheckError::OpenMls(format!("{what}: {e:?}"))
}

/// Decodes an `MLSMessage`.
pub(crate) fn decode_message(bytes: &[u8]) -> Result<MlsMessageIn, CheckError> {
    MlsMessageIn::tls_deserialize_exact(bytes).map_err(ossl("decoding MLSMessage"))
}

/// The group id of an encoded protocol message.
pub(crate) fn group_id_of(bytes: &[u8]) -> Result<Vec<u8>, CheckError> {
    let message = decode_message(bytes)?
        .try_into_protocol_message()
        .map_err(ossl("not a protocol message"))?;
    Ok(message.group_id().as_slice().to_vec())
}

/// Checks that the private keys in the vector belong to the key package.
fn check_key_package_keys(t: &Vector) -> Result<(), CheckError> {
    let suite = Suite::new(t.cipher_suite)?;
    let mut r = Reader::new(&t.key_package);
    if r.u16()? != 1 || r.u16()? != 5 {
        return Err(CheckError::Protocol(
            "key_package is not an MLSMessage(KeyPackage)",
        ));
    }
    let kp = RfcKeyPackage::read(&mut r)?;
    r.finish("KeyPackage")?;
    suite.check_key_pair(&t.init_priv, &kp.init_key)?;
    suite.check_key_pair(&t.encryption_priv, &kp.leaf_node.encryption_key)?;
    let probe = suite.sign_with_label(&t.signature_priv, b"probe", b"passive client")?;
    suite.verify_with_label(
        &kp.leaf_node.signature_key,
        b"probe",
        b"passive client",
        &probe,
    )
}

/// Validates a key package. The vectors' key packages carry lifetimes that
/// have since expired (2024/2025); `validate` checks the lifetime last, after
/// both signatures, the version, the key distinctness and the extensions, so
/// a lifetime error means everything else was verified and the unchecked
/// conversion is used for that case only.
fn validate_key_package(
    provider: &OpenMlsRustCrypto,
    key_package_in: KeyPackageIn,
) -> Result<KeyPackage, CheckError> {
    match key_package_in
        .clone()
        .validate(provider.crypto(), ProtocolVersion::Mls10)
    {
        Ok(kp) => Ok(kp),
        Err(KeyPackageVerifyError::LifetimeError(_)) => Ok(key_package_in.into_unchecked()),
        Err(e) => Err(CheckError::OpenMls(format!(
            "validating key package: {e:?}"
        ))),
    }
}

/// A client that only receives.
pub(crate) struct PassiveClient {
    provider: OpenMlsRustCrypto,
    group: MlsGroup,
}

impl PassiveClient {
    /// Imports the key package and PSKs into a fresh storage provider and
    /// joins from the Welcome.
    pub(crate) fn join(t: &Vector) -> Result<Self, CheckError> {
        let provider = OpenMlsRustCrypto::default();
        for psk in &t.external_psks {
            // The PSK nonce is not part of the storage key, so it stays empty.
            PreSharedKeyId::external(psk.psk_id.0.clone(), Vec::new())
                .store(&provider, &psk.psk)
                .map_err(ossl("storing external PSK"))?;
        }

        let key_package_in = match decode_message(&t.key_package)?.extract() {
            MlsMessageBodyIn::KeyPackage(kp) => kp,
            _ => return Err(CheckError::Protocol("key_package is not a KeyPackage")),
        };
        let key_package = validate_key_package(&provider, key_package_in)?;
        // openmls has no public constructor for a bundle of a foreign key
        // package; it is (de)serialisable, which is how storage holds it.
        let bundle: KeyPackageBundle = serde_json::from_value(serde_json::json!({
            "key_package": key_package,
            "private_init_key": HpkePrivateKey::from(t.init_priv.0.clone()),
            "private_encryption_key": { "key": HpkePrivateKey::from(t.encryption_priv.0.clone()) },
        }))
        .map_err(|e| CheckError::OpenMls(format!("building key package bundle: {e}")))?;
        let hash_ref = key_package
            .hash_ref(provider.crypto())
            .map_err(ossl("key package reference"))?;
        provider
            .storage()
            .write_key_package(&hash_ref, &bundle)
            .map_err(ossl("storing key package"))?;

        let welcome = match decode_message(&t.welcome)?.extract() {
            MlsMessageBodyIn::Welcome(w) => w,
            _ => return Err(CheckError::Protocol("welcome is not a Welcome")),
        };
        let ratchet_tree = t
            .ratchet_tree
            .as_ref()
            .map(|tree| RatchetTreeIn::tls_deserialize_exact(tree.0.as_slice()))
            .transpose()
            .map_err(ossl("decoding ratchet_tree"))?;
        let config = MlsGroupJoinConfig::builder()
            .use_ratchet_tree_extension(true)
            .wire_format_policy(MIXED_PLAINTEXT_WIRE_FORMAT_POLICY)
            .number_of_resumption_psks(16)
            .build();
        let mut join = StagedWelcome::build_from_welcome(&provider, &config, welcome)
            .map_err(ossl("processing welcome"))?
            .skip_lifetime_validation();
        if let Some(tree) = ratchet_tree {
            join = join.with_ratchet_tree(tree);
        }
        let group = join
            .build()
            .map_err(ossl("staging welcome"))?
            .into_group(&provider)
            .map_err(ossl("joining group"))?;
        Ok(Self { provider, group })
    }

    /// Processes one proposal or commit; a proposal is queued, a commit merged.
    pub(crate) fn process(&mut self, bytes: &[u8]) -> Result<(), CheckError> {
        let message = decode_message(bytes)?
            .try_into_protocol_message()
            .map_err(ossl("not a protocol message"))?;
        let processed = self
            .group
            .process_message(&self.provider, message)
            .map_err(ossl("processing message"))?;
        match processed.into_content() {
            ProcessedMessageContent::ProposalMessage(p) => self
                .group
                .store_pending_proposal(self.provider.storage(), *p)
                .map_err(ossl("queueing proposal")),
            ProcessedMessageContent::StagedCommitMessage(c) => self
                .group
                .merge_staged_commit(&self.provider, *c)
                .map_err(ossl("merging commit")),
            _ => Err(CheckError::Protocol("neither a proposal nor a commit")),
        }
    }

    pub(crate) fn group_id(&self) -> Vec<u8> {
        self.group.group_id().as_slice().to_vec()
    }

    pub(crate) fn epoch_authenticator(&self) -> Vec<u8> {
        self.group.epoch_authenticator().as_slice().to_vec()
    }
}

pub(crate) fn check(v: &Value) -> Result<(), CheckError> {
    let t: Vector = typed(v)?;
    check_key_package_keys(&t)?;
    let mut client = PassiveClient::join(&t)?;
    expect_eq(
        "initial_epoch_authenticator",
        &client.epoch_authenticator(),
        &t.initial_epoch_authenticator,
    )?;
    for (n, epoch) in t.epochs.iter().enumerate() {
        for p in &epoch.proposals {
            client.process(p)?;
        }
        client.process(&epoch.commit)?;
        expect_eq(
            &format!("epoch {n}: epoch_authenticator"),
            &client.epoch_authenticator(),
            &epoch.epoch_authenticator,
        )?;
    }
    Ok(())
}
