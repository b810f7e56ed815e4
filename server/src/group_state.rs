//! The public state of each channel's MLS group, which the node keeps to validate commits.
//!
//! A delivery service can follow an MLS group without any of its secrets (RFC 9420 §16.3):
//! openmls's `PublicGroup` holds the ratchet tree, the group context and the transcript
//! hashes. The creator hands the node the group's first GroupInfo with its ratchet tree at
//! `createChannel`; from then on the node processes every commit (an MLS `PublicMessage`)
//! against that state and keeps the result only when the commit is accepted, in the same
//! transaction that advances the channel's epoch. What is checked here: the group and epoch,
//! the sender's leaf and signature, every rule openmls applies to the proposals and the update
//! path, and which proposals a commit may carry. What the caller checks with what this returns:
//! that the sender is the calling device, that every new leaf carries the key the directory
//! holds for the device it names, and that the routing lists equal the proposals. The
//! membership tag is not checked: it is keyed by a secret of the epoch, which the node does not
//! have; the signature binds the commit to its sender's leaf.

use std::collections::BTreeMap;

use openmls::group::{ProposalStore, StagedCommit};
use openmls::prelude::{
    BasicCredential, Credential, GroupId, LeafNode, MlsMessageBodyIn, MlsMessageIn, OpenMlsSignaturePublicKey,
    ProcessedMessageContent, ProtocolMessage, Proposal, PublicGroup, Sender, Verifiable as _,
};
use tls_codec::Serialize as _;
use openmls_memory_storage::MemoryStorage;
use openmls_rust_crypto::RustCrypto;
use qpq_proto::{ChannelId, DeviceAddress, DeviceId, UserId};
use qpq_proto::roles;
use tls_codec::DeserializeBytes as _;

/// Why a GroupInfo or a commit is refused, in words for the `bad_mls_message` sentence.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GroupError {
    /// Not valid for the group as the node holds it.
    #[error("{0}")]
    Invalid(String),
    /// Made in an epoch the group has left (a retry, or a commit that lost the race).
    #[error("it was made in epoch {made}; the conversation is at epoch {current}")]
    Stale {
        /// The commit's epoch.
        made: u64,
        /// The group's epoch.
        current: u64,
    },
}

fn invalid(what: impl Into<String>) -> GroupError {
    GroupError::Invalid(what.into())
}

/// A leaf as the directory must confirm it: the device its credential names and its
/// signature key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Leaf {
    /// The device the credential names.
    pub device: DeviceAddress,
    /// The leaf's signature key (Ed25519, the device's registered key if it is honest).
    pub key: Vec<u8>,
}

/// A group as the node holds it between calls: the serialized public state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored(pub Vec<u8>);

/// The first state of a channel, read from its creator's GroupInfo.
#[derive(Debug)]
pub struct Created {
    /// The state to keep.
    pub state: Stored,
    /// The group's leaves (the creator's alone, for a new group).
    pub leaves: Vec<Leaf>,
}

/// A commit that verified against the group's state.
#[derive(Debug)]
pub struct Checked {
    /// The state after the commit, to keep if the commit is accepted.
    pub state: Stored,
    /// The committing member.
    pub sender: Leaf,
    /// The leaves the commit adds.
    pub added: Vec<Leaf>,
    /// The devices whose leaves it removes.
    pub removed: Vec<DeviceAddress>,
    /// The sender's new leaf, when the commit has an update path.
    pub path: Option<Leaf>,
}

/// The device a leaf's credential names: a basic credential `user@domain#<device id in hex>`.
pub fn device_of(credential: &Credential) -> Result<DeviceAddress, GroupError> {
    let bad = || invalid("a leaf's credential does not name a device");
    let basic = BasicCredential::try_from(credential.clone()).map_err(|_| bad())?;
    let text = std::str::from_utf8(basic.identity()).map_err(|_| bad())?;
    let (user, dev) = text.rsplit_once('#').ok_or_else(bad)?;
    let user = UserId::parse(user).map_err(|_| bad())?;
    let device = DeviceId::from_slice(&hex::decode(dev).map_err(|_| bad())?).map_err(|_| bad())?;
    Ok(DeviceAddress { user, device })
}

fn leaf(node: &LeafNode) -> Result<Leaf, GroupError> {
    Ok(Leaf { device: device_of(node.credential())?, key: node.signature_key().as_slice().to_vec() })
}

fn storage_of(state: &Stored) -> Result<MemoryStorage, GroupError> {
    let corrupt = || invalid("the node's copy of the group is unreadable");
    let mut b = state.0.as_slice();
    let mut take = |n: usize| -> Result<&[u8], GroupError> {
        if b.len() < n {
            return Err(corrupt());
        }
        let (head, rest) = b.split_at(n);
        b = rest;
        Ok(head)
    };
    let word = |s: &[u8]| u32::from_be_bytes(s.try_into().expect("4 bytes")) as usize;
    let count = word(take(4)?);
    let mut map = std::collections::HashMap::with_capacity(count.min(1024));
    for _ in 0..count {
        let k = word(take(4)?);
        let v = word(take(4)?);
        let key = take(k)?.to_vec();
        map.insert(key, take(v)?.to_vec());
    }
    let storage = MemoryStorage::default();
    *storage.values.write().expect("storage lock") = map;
    Ok(storage)
}

/// The storage's entries in key order, each as lengths then bytes.
fn stored(storage: &MemoryStorage) -> Stored {
    let values = storage.values.read().expect("storage lock");
    let sorted: BTreeMap<&Vec<u8>, &Vec<u8>> = values.iter().collect();
    let mut out = Vec::new();
    out.extend_from_slice(&(sorted.len() as u32).to_be_bytes());
    for (k, v) in sorted {
        out.extend_from_slice(&(k.len() as u32).to_be_bytes());
        out.extend_from_slice(&(v.len() as u32).to_be_bytes());
        out.extend_from_slice(k);
        out.extend_from_slice(v);
    }
    Stored(out)
}

/// Reads the creator's GroupInfo (with its ratchet tree) for `channel`: a group of that id at
/// epoch 0 whose signature verifies against the tree it carries.
pub fn create(channel: &ChannelId, group_info: &[u8]) -> Result<Created, GroupError> {
    let msg = MlsMessageIn::tls_deserialize_exact_bytes(group_info)
        .map_err(|_| invalid("the GroupInfo is not an MLS message"))?;
    let MlsMessageBodyIn::GroupInfo(info) = msg.extract() else {
        return Err(invalid("it is not a GroupInfo"));
    };
    if info.group_id().as_slice() != channel.as_bytes() {
        return Err(invalid("the GroupInfo belongs to another group"));
    }
    if info.epoch().as_u64() != 0 {
        return Err(invalid(format!("the group is at epoch {}, not a new group", info.epoch().as_u64())));
    }
    let tree = info
        .extensions()
        .ratchet_tree()
        .ok_or_else(|| invalid("the GroupInfo carries no ratchet tree"))?
        .ratchet_tree()
        .clone();
    let storage = MemoryStorage::default();
    let (group, _) = PublicGroup::from_external(&RustCrypto::default(), &storage, tree, info, ProposalStore::new())
        .map_err(|e| invalid(format!("the GroupInfo does not verify ({e})")))?;
    let leaves = group.members().map(|m| {
        let device = device_of(&m.credential)?;
        Ok(Leaf { device, key: m.signature_key })
    });
    let leaves = leaves.collect::<Result<Vec<_>, GroupError>>()?;
    Ok(Created { state: stored(&storage), leaves })
}

/// The group's epoch in `state`.
pub fn epoch(channel: &ChannelId, state: &Stored) -> Result<u64, GroupError> {
    let storage = storage_of(state)?;
    Ok(load(channel, &storage)?.group_context().epoch().as_u64())
}

fn load(channel: &ChannelId, storage: &MemoryStorage) -> Result<PublicGroup, GroupError> {
    PublicGroup::load(storage, &GroupId::from_slice(channel.as_bytes()))
        .ok()
        .flatten()
        .ok_or_else(|| invalid("the node's copy of the group is unreadable"))
}

/// Processes `commit` against the group in `state`. A commit the group has moved past is
/// [`GroupError::Stale`]; anything else that does not verify is [`GroupError::Invalid`].
/// Commits may add and remove members and change the group context's extensions; other
/// proposals (PSKs, re-initialisation, external joins) are not used by this service.
pub fn check_commit(channel: &ChannelId, state: &Stored, commit: &[u8]) -> Result<Checked, GroupError> {
    let storage = storage_of(state)?;
    let mut group = load(channel, &storage)?;
    let msg =
        MlsMessageIn::tls_deserialize_exact_bytes(commit).map_err(|_| invalid("it is not an MLS message"))?;
    let message = msg.try_into_protocol_message().map_err(|_| invalid("it is not a framed MLS message"))?;
    let ProtocolMessage::PublicMessage(_) = &message else {
        return Err(invalid("it is encrypted; commits are sent as MLS PublicMessages"));
    };
    let (made, current) = (message.epoch().as_u64(), group.group_context().epoch().as_u64());
    if made < current {
        return Err(GroupError::Stale { made, current });
    }
    if made > current {
        return Err(invalid(format!("it was made in epoch {made}, after the conversation's epoch {current}")));
    }
    let crypto = RustCrypto::default();
    let processed = group.process_message(&crypto, message).map_err(|e| invalid(format!("it does not verify ({e})")))?;
    let sender = match processed.sender() {
        Sender::Member(i) => Some(leaf(group.leaf(*i).ok_or_else(|| invalid("its sender has no leaf"))?)?),
        Sender::NewMemberCommit => None,
        _ => return Err(invalid("it does not come from a member of the group")),
    };
    let ProcessedMessageContent::StagedCommitMessage(staged) = processed.into_content() else {
        return Err(invalid("it is not a commit"));
    };
    let checked = match sender {
        Some(sender) => read_commit(&group, &staged, sender)?,
        None => read_rejoin(&group, &staged)?,
    };
    group.merge_commit(&storage, *staged).map_err(|e| invalid(format!("it cannot be applied ({e:?})")))?;
    Ok(Checked { state: stored(&storage), ..checked })
}

/// An external commit (RFC 9420 §12.4.3.2) is taken only as a member's rejoin: it replaces the
/// leaf of the device it names (a "resync") and changes nothing else. Its sender is that device.
fn read_rejoin(group: &PublicGroup, staged: &StagedCommit) -> Result<Checked, GroupError> {
    for p in staged.queued_proposals() {
        match p.proposal() {
            Proposal::ExternalInit(_) | Proposal::Remove(_) => {}
            other => {
                let kind = other.proposal_type();
                return Err(invalid(format!("it joins from outside with a {kind:?} proposal, which this service does not use")));
            }
        }
    }
    let path = staged.update_path_leaf_node().map(leaf).transpose()?.ok_or_else(|| invalid("it joins without a leaf"))?;
    if removed_devices(group, staged)? != [path.device.clone()] {
        return Err(invalid("it joins from outside without replacing its own device's leaf; only members rejoin"));
    }
    Ok(Checked { state: Stored(Vec::new()), sender: path.clone(), added: Vec::new(), removed: Vec::new(), path: Some(path) })
}

/// Checks a GroupInfo a member hands in for the group in `state`: of this group, at its
/// current epoch (else [`GroupError::Stale`]), with the group context the node holds, joinable
/// from outside (an `external_pub` extension) and signed by `caller`'s leaf. Returns the epoch.
pub fn check_group_info(channel: &ChannelId, state: &Stored, info: &[u8], caller: &DeviceAddress) -> Result<u64, GroupError> {
    let storage = storage_of(state)?;
    let group = load(channel, &storage)?;
    let msg = MlsMessageIn::tls_deserialize_exact_bytes(info).map_err(|_| invalid("it is not an MLS message"))?;
    let MlsMessageBodyIn::GroupInfo(info) = msg.extract() else {
        return Err(invalid("it is not a GroupInfo"));
    };
    let (made, current) = (info.epoch().as_u64(), group.group_context().epoch().as_u64());
    if info.group_id() != group.group_id() {
        return Err(invalid("it belongs to another group"));
    }
    if made < current {
        return Err(GroupError::Stale { made, current });
    }
    let context = |c: &openmls::prelude::GroupContext| c.tls_serialize_detached().unwrap_or_default();
    if made != current || context(info.group_context()) != context(group.group_context()) {
        return Err(invalid("its group context is not the group's"));
    }
    if info.extensions().external_pub().is_none() {
        return Err(invalid("it has no external public key to rejoin with"));
    }
    let key = group
        .members()
        .find(|m| device_of(&m.credential).is_ok_and(|d| d == *caller))
        .map(|m| m.signature_key)
        .ok_or_else(|| invalid("the caller has no leaf in the group"))?;
    let key = OpenMlsSignaturePublicKey::new(key.into(), group.ciphersuite().signature_algorithm())
        .map_err(|_| invalid("the caller's leaf key is unusable"))?;
    info.verify_no_out(&RustCrypto::default(), &key).map_err(|_| invalid("it is not signed by the caller's leaf"))?;
    Ok(current)
}

/// The ratchet tree of the group in `state` (a TLS-serialised `RatchetTree`), for a member
/// that rejoins.
pub fn ratchet_tree(channel: &ChannelId, state: &Stored) -> Result<Vec<u8>, GroupError> {
    let storage = storage_of(state)?;
    let group = load(channel, &storage)?;
    group.export_ratchet_tree().tls_serialize_detached().map_err(|_| invalid("the group's tree cannot be written"))
}

/// What a verified commit changes, before it is merged.
fn read_commit(group: &PublicGroup, staged: &StagedCommit, sender: Leaf) -> Result<Checked, GroupError> {
    for p in staged.queued_proposals() {
        match p.proposal() {
            Proposal::Add(_) | Proposal::Remove(_) | Proposal::GroupContextExtensions(_) => {}
            other => return Err(invalid(format!("it carries a {:?} proposal, which this service does not use", other.proposal_type()))),
        }
    }
    let added = staged
        .add_proposals()
        .map(|p| leaf(p.add_proposal().key_package().leaf_node()))
        .collect::<Result<Vec<_>, _>>()?;
    let removed = removed_devices(group, staged)?;
    let path = staged.update_path_leaf_node().map(leaf).transpose()?;
    if let Some(p) = &path {
        if p.device != sender.device {
            return Err(invalid("its update path gives the sender's leaf to another device"));
        }
    }
    check_roles(group, staged, &sender.device.user, &added)?;
    Ok(Checked { state: Stored(Vec::new()), sender, added, removed, path })
}

/// The devices whose leaves a commit removes, read from the tree before it.
fn removed_devices(group: &PublicGroup, staged: &StagedCommit) -> Result<Vec<DeviceAddress>, GroupError> {
    staged
        .remove_proposals()
        .map(|p| {
            let node = group.leaf(p.remove_proposal().removed()).ok_or_else(|| invalid("it removes an empty leaf"))?;
            device_of(node.credential())
        })
        .collect()
}

/// Checks a member's commit against the group's roles (`qpq_types::roles`), as every member's
/// engine does: only admins change who is in the conversation and its settings.
fn check_roles(group: &PublicGroup, staged: &StagedCommit, sender: &UserId, added: &[Leaf]) -> Result<(), GroupError> {
    let Some(listed) = group.group_context().extensions().unknown(roles::ADMINS_EXTENSION) else { return Ok(()) };
    let listed = roles::decode_admins(&listed.0).unwrap_or_default();
    let before: Vec<(u32, UserId)> =
        group.members().filter_map(|m| device_of(&m.credential).ok().map(|d| (m.index.u32(), d.user))).collect();
    let users_before: Vec<UserId> = before.iter().map(|(_, u)| u.clone()).collect();
    let admins = roles::effective_admins(&listed, &users_before);
    let removed: Vec<u32> = staged.remove_proposals().map(|p| p.remove_proposal().removed().u32()).collect();
    let mut users_after: Vec<UserId> = before.iter().filter(|(i, _)| !removed.contains(i)).map(|(_, u)| u.clone()).collect();
    users_after.extend(added.iter().map(|l| l.device.user.clone()));
    let settings = staged.queued_proposals().any(|p| matches!(p.proposal(), Proposal::GroupContextExtensions(_)));
    let roles_kept = staged.group_context().extensions().unknown(roles::ADMINS_EXTENSION).is_some();
    roles::check_commit(&admins, sender, &users_before, &users_after, settings, roles_kept).map_err(invalid)
}

#[cfg(test)]
mod tests {
    use super::*;
    use openmls::prelude::{
        CredentialWithKey, KeyPackage, MlsGroup, MlsGroupCreateConfig, OpenMlsProvider as _,
        MIXED_PLAINTEXT_WIRE_FORMAT_POLICY,
    };
    use openmls_basic_credential::SignatureKeyPair;
    use openmls_rust_crypto::OpenMlsRustCrypto;

    const SUITE: openmls::prelude::Ciphersuite =
        openmls::prelude::Ciphersuite::MLS_128_DHKEMX25519_CHACHA20POLY1305_SHA256_Ed25519;

    struct Member {
        provider: OpenMlsRustCrypto,
        keys: SignatureKeyPair,
        cwk: CredentialWithKey,
    }

    fn member(name: &str, device: u8) -> Member {
        let keys = SignatureKeyPair::new(SUITE.signature_algorithm()).unwrap();
        let id = format!("{name}@example.org#{}", hex::encode([device; 16]));
        let cwk = CredentialWithKey { credential: BasicCredential::new(id.into_bytes()).into(), signature_key: keys.public().into() };
        Member { provider: OpenMlsRustCrypto::default(), keys, cwk }
    }

    fn package(m: &Member) -> KeyPackage {
        KeyPackage::builder().build(SUITE, &m.provider, &m.keys, m.cwk.clone()).unwrap().key_package().clone()
    }

    fn channel() -> ChannelId {
        ChannelId::from_slice(&[7; 16]).unwrap()
    }

    /// Alice's new group `channel` and its GroupInfo.
    fn new_group(alice: &Member, id: &ChannelId) -> (MlsGroup, Vec<u8>) {
        let config = MlsGroupCreateConfig::builder()
            .ciphersuite(SUITE)
            .wire_format_policy(MIXED_PLAINTEXT_WIRE_FORMAT_POLICY)
            .build();
        let group = MlsGroup::new_with_group_id(&alice.provider, &alice.keys, &config, GroupId::from_slice(id.as_bytes()), alice.cwk.clone())
            .unwrap();
        let info = group.export_group_info(alice.provider.crypto(), &alice.keys, true).unwrap();
        (group, info.tls_serialize_detached().unwrap())
    }

    fn words(e: GroupError) -> String {
        e.to_string()
    }

    #[test]
    fn a_new_group_starts_from_its_creators_group_info_and_nothing_else() {
        let alice = member("alice", 1);
        let (_, info) = new_group(&alice, &channel());
        let created = create(&channel(), &info).unwrap();
        assert_eq!(created.leaves.len(), 1);
        assert_eq!(created.leaves[0].device.user.as_str(), "alice@example.org");
        assert_eq!(created.leaves[0].key, alice.keys.public());
        assert_eq!(epoch(&channel(), &created.state).unwrap(), 0);

        assert!(words(create(&ChannelId::from_slice(&[8; 16]).unwrap(), &info).unwrap_err()).contains("another group"));
        assert!(words(create(&channel(), b"not MLS").unwrap_err()).contains("not an MLS message"));
        let mut tampered = info.clone();
        let at = tampered.len() - 20; // inside the GroupInfo's signature
        tampered[at] ^= 1;
        assert!(words(create(&channel(), &tampered).unwrap_err()).contains("does not verify"));
    }

    #[test]
    fn commits_are_read_against_the_state_and_replays_are_stale() {
        let alice = member("alice", 1);
        let bob = member("bob", 2);
        let (mut group, info) = new_group(&alice, &channel());
        let state = create(&channel(), &info).unwrap().state;

        let (commit, _, _) = group.add_members(&alice.provider, &alice.keys, &[package(&bob)]).unwrap();
        let commit = commit.tls_serialize_detached().unwrap();
        let checked = check_commit(&channel(), &state, &commit).unwrap();
        assert_eq!(checked.sender.device.user.as_str(), "alice@example.org");
        assert_eq!(checked.added.iter().map(|l| l.device.user.as_str()).collect::<Vec<_>>(), ["bob@example.org"]);
        assert_eq!(checked.added[0].key, bob.keys.public());
        assert!(checked.removed.is_empty());
        assert_eq!(epoch(&channel(), &checked.state).unwrap(), 1);
        // The same commit against the new state is a replay of a past epoch.
        assert_eq!(check_commit(&channel(), &checked.state, &commit).unwrap_err(), GroupError::Stale { made: 0, current: 1 });
        group.merge_pending_commit(&alice.provider).unwrap();

        // Removing Bob: the removed device is read from the tree the node holds.
        let bob_leaf = group.members().find(|m| m.signature_key == bob.keys.public()).unwrap().index;
        let (commit, _, _) = group.remove_members(&alice.provider, &alice.keys, &[bob_leaf]).unwrap();
        let commit = commit.tls_serialize_detached().unwrap();
        let removed = check_commit(&channel(), &checked.state, &commit).unwrap();
        assert_eq!(removed.removed.iter().map(|d| d.user.as_str()).collect::<Vec<_>>(), ["bob@example.org"]);
        assert!(removed.path.is_some_and(|p| p.device == removed.sender.device));
        // Made for an epoch the node has not reached.
        assert!(words(check_commit(&channel(), &state, &commit).unwrap_err()).contains("after the conversation's epoch 0"));
        // A tampered signature.
        let mut tampered = commit.clone();
        let at = tampered.len() - 100;
        tampered[at] ^= 1;
        assert!(words(check_commit(&channel(), &checked.state, &tampered).unwrap_err()).contains("does not verify"));
        assert!(words(check_commit(&channel(), &checked.state, b"garbage").unwrap_err()).contains("not an MLS message"));
    }
}
