//! Real MLS groups made by raw devices with openmls (no engine), for the node-level tests that
//! create channels and commit: the node keeps each group's public state and validates commits
//! against it. Included only by the tests that need it (`#[path]`), so the others do not
//! compile openmls's group code.

#![allow(dead_code)]

use openmls::prelude::tls_codec::Serialize as _;
use openmls::prelude::{
    CredentialWithKey, GroupId, KeyPackage, MlsGroup, MlsGroupCreateConfig, SignatureScheme, MIXED_PLAINTEXT_WIRE_FORMAT_POLICY,
};
use openmls_basic_credential::SignatureKeyPair;
use openmls_rust_crypto::OpenMlsRustCrypto;
use openmls_traits::OpenMlsProvider as _;
use qpq_core::{credential_for, CIPHERSUITE};
use qpq_proto::ChannelId;

use crate::support::raw::RawDevice;

/// A real MLS group made by a raw device with openmls: what `createChannel` and `commit` need.
pub struct RawGroup {
    provider: OpenMlsRustCrypto,
    signer: SignatureKeyPair,
    group: MlsGroup,
}

impl RawGroup {
    /// `creator`'s new group `channel` and its GroupInfo (with the ratchet tree) for
    /// `createChannel`.
    pub fn create(creator: &RawDevice, channel: &ChannelId) -> (RawGroup, Vec<u8>) {
        let provider = OpenMlsRustCrypto::default();
        let signer = signer_of(creator);
        let config = MlsGroupCreateConfig::builder()
            .ciphersuite(CIPHERSUITE)
            .use_ratchet_tree_extension(true)
            .wire_format_policy(MIXED_PLAINTEXT_WIRE_FORMAT_POLICY)
            .build();
        let cwk = CredentialWithKey { credential: credential_for(&creator.addr()), signature_key: signer.public().into() };
        let group = MlsGroup::new_with_group_id(&provider, &signer, &config, GroupId::from_slice(channel.as_bytes()), cwk)
            .expect("a new group");
        let info = group.export_group_info(provider.crypto(), &signer, true).expect("a GroupInfo");
        let info = info.tls_serialize_detached().unwrap();
        (RawGroup { provider, signer, group }, info)
    }

    /// A commit adding `members` (a key package of each, made here with its key) and its
    /// Welcome. The commit is taken as accepted.
    pub fn add(&mut self, members: &[&RawDevice]) -> (Vec<u8>, Vec<u8>) {
        let packages: Vec<KeyPackage> = members
            .iter()
            .map(|d| {
                let cwk = CredentialWithKey { credential: credential_for(&d.addr()), signature_key: d.record.device_key.to_vec().into() };
                KeyPackage::builder()
                    .build(CIPHERSUITE, &OpenMlsRustCrypto::default(), &signer_of(d), cwk)
                    .expect("a key package")
                    .key_package()
                    .clone()
            })
            .collect();
        let (commit, welcome, _) = self.group.add_members(&self.provider, &self.signer, &packages).expect("a commit");
        self.group.merge_pending_commit(&self.provider).unwrap();
        (commit.tls_serialize_detached().unwrap(), welcome.tls_serialize_detached().unwrap())
    }
}

/// The device's key as an openmls signer.
fn signer_of(d: &RawDevice) -> SignatureKeyPair {
    SignatureKeyPair::from_raw(SignatureScheme::ED25519, d.key.to_bytes().to_vec(), d.record.device_key.to_vec())
}
