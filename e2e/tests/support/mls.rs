//! MLS for the node-level tests that drive the schema without an engine: real groups of raw
//! devices (the node keeps each group's public state and validates commits against it), and
//! stand-ins with the clear framing a node reads (RFC 9420 §6: version, wire format, group id,
//! epoch, sender, content type) around opaque bytes where the rest would be, for what the node
//! only frames (application messages, Welcomes).

use openmls::prelude::tls_codec::Serialize as _;
use openmls::prelude::{CredentialWithKey, GroupId, KeyPackage, MlsGroup, MlsGroupCreateConfig, MIXED_PLAINTEXT_WIRE_FORMAT_POLICY};
use openmls_rust_crypto::OpenMlsRustCrypto;
use openmls_traits::OpenMlsProvider as _;
use qpq_core::{credential_for, CIPHERSUITE};
use qpq_proto::ChannelId;

use super::hostile::KeySigner;
use super::raw::RawDevice;

/// A real MLS group made by a raw device with openmls: what `createChannel` and `commit` need.
pub struct RawGroup {
    provider: OpenMlsRustCrypto,
    signer: KeySigner,
    group: MlsGroup,
}

impl RawGroup {
    /// `creator`'s new group `channel` and its GroupInfo (with the ratchet tree) for
    /// `createChannel`.
    pub fn create(creator: &RawDevice, channel: &ChannelId) -> (RawGroup, Vec<u8>) {
        let provider = OpenMlsRustCrypto::default();
        let signer = KeySigner(creator.key.clone());
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
                    .build(CIPHERSUITE, &OpenMlsRustCrypto::default(), &KeySigner(d.key.clone()), cwk)
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

fn vector(out: &mut Vec<u8>, b: &[u8]) {
    match b.len() {
        n if n < 64 => out.push(n as u8),
        n if n < 16_384 => out.extend_from_slice(&((n as u16) | 0x4000).to_be_bytes()),
        n => out.extend_from_slice(&((n as u32) | 0x8000_0000).to_be_bytes()),
    }
    out.extend_from_slice(b);
}

/// A `PrivateMessage` of `channel` at `epoch` with `content_type` (1 application, 3 commit)
/// whose ciphertext is `body`.
pub fn private(channel: &ChannelId, epoch: u64, content_type: u8, body: &[u8]) -> Vec<u8> {
    let mut m = vec![0, 1, 0, 2];
    vector(&mut m, channel.as_bytes());
    m.extend_from_slice(&epoch.to_be_bytes());
    m.push(content_type);
    vector(&mut m, b"");
    vector(&mut m, &[0x5e; 16]);
    vector(&mut m, body);
    m
}

/// A commit of `channel` made in `epoch` by the member at leaf 0: a `PublicMessage` head
/// (RFC 9420 §6.2) followed by `body` where the commit, signature and tags would be.
pub fn commit(channel: &ChannelId, epoch: u64, body: &[u8]) -> Vec<u8> {
    let mut m = vec![0, 1, 0, 1];
    vector(&mut m, channel.as_bytes());
    m.extend_from_slice(&epoch.to_be_bytes());
    m.push(1); // sender type: member
    m.extend_from_slice(&0u32.to_be_bytes());
    vector(&mut m, b"");
    m.push(3); // content type: commit
    m.extend_from_slice(body);
    m
}

/// An application message of `channel`.
pub fn application(channel: &ChannelId, body: &[u8]) -> Vec<u8> {
    private(channel, 0, 1, body)
}

/// A Welcome whose encrypted group info is `body`.
pub fn welcome(body: &[u8]) -> Vec<u8> {
    let mut m = vec![0, 1, 0, 3, 0, 1];
    vector(&mut m, &[0x3c; 40]);
    vector(&mut m, body);
    m
}
