//! A hostile group member for tests: a registered device that speaks MLS through openmls
//! directly, without the engine's checks, so it can put leaves the directory does not vouch
//! for into groups (a forged "alice" with its own key, a signature key swapped on update) and
//! send messages claiming other people's work. Honest engines must refuse it.
//!
//! It knows no transport: it reads envelopes and produces [`Outbound`] calls, which the engine
//! tests hand to the simulated delivery service (`support/mod.rs`) and the end-to-end tests
//! (`native/tests/trust.rs`, which includes this file) send to a real node.

#![allow(dead_code)]

use std::collections::HashMap;

use ed25519_dalek::{Signer as _, SigningKey};
use openmls::prelude::tls_codec::{Deserialize as _, Serialize as _};
use openmls::prelude::{
    Capabilities, CredentialWithKey, GroupId, KeyPackage, KeyPackageIn, LeafNodeParameters, MlsGroup,
    MlsGroupCreateConfig, MlsGroupJoinConfig, MlsMessageBodyIn, MlsMessageIn, NewSignerBundle,
    ProcessedMessageContent, ProtocolVersion, SenderRatchetConfiguration, SignatureScheme, StagedWelcome,
    MIXED_PLAINTEXT_WIRE_FORMAT_POLICY,
};
use openmls_rust_crypto::OpenMlsRustCrypto;
use openmls_traits::signatures::{Signer, SignerError};
use qpq_core::{
    credential_for, AppMessage, Body, ClaimedPackage, ConversationKind, GroupMeta, MessageId, Outbound, OutboundOp,
    CIPHERSUITE, MAX_PAST_EPOCHS, PADDING_BYTES,
};
use qpq_types::{login_bytes, ChannelId, ClientMsgId, DeviceAddress, DeviceId, DeviceRecord, Envelope, EnvelopeKind, UserId};

/// An Ed25519 key as an openmls signer.
pub struct KeySigner(pub SigningKey);

impl Signer for KeySigner {
    fn sign(&self, payload: &[u8]) -> Result<Vec<u8>, SignerError> {
        Ok(self.0.sign(payload).to_bytes().to_vec())
    }

    fn signature_scheme(&self) -> SignatureScheme {
        SignatureScheme::ED25519
    }
}

impl KeySigner {
    pub fn public(&self) -> Vec<u8> {
        self.0.verifying_key().to_bytes().to_vec()
    }
}

/// A hostile member: registered in the directory under its own name, dishonest inside groups.
pub struct Hostile {
    pub addr: DeviceAddress,
    pub identity_key: [u8; 32],
    pub record: DeviceRecord,
    signer: KeySigner,
    provider: OpenMlsRustCrypto,
    pub groups: HashMap<ChannelId, MlsGroup>,
    cursor: u64,
    counter: u64,
    /// Signers of forged leaves (kept so their key packages stay usable).
    forged: Vec<KeySigner>,
    /// The conversation of the commit last built, and the signer it switches to.
    pending: Option<(ChannelId, Option<KeySigner>)>,
}

fn capabilities() -> Capabilities {
    let exts = [GroupMeta::extension_type(), openmls::prelude::ExtensionType::Unknown(qpq_types::roles::ADMINS_EXTENSION)];
    Capabilities::new(None, Some(&[CIPHERSUITE]), Some(&exts), None, None)
}

fn ratchet() -> SenderRatchetConfiguration {
    SenderRatchetConfiguration::new(64, 1000)
}

impl Hostile {
    /// A device of `user` whose identity and device keys come from `seed`.
    pub fn new(user: UserId, seed: u8) -> Hostile {
        let identity = SigningKey::from_bytes(&[seed; 32]);
        let device_key = SigningKey::from_bytes(&[seed.wrapping_add(1); 32]);
        let device = DeviceId([seed; 16]);
        let dk = device_key.verifying_key().to_bytes();
        let sig = identity.sign(&DeviceRecord::signed_bytes(&user, &device, &dk, 1));
        let record = DeviceRecord { user, device_id: device, device_key: dk, created_at: 1, signature: sig.to_bytes() };
        Hostile::with_keys(identity.verifying_key().to_bytes(), record, device_key)
    }

    /// Another device of an existing user (a linked device): its key from `seed`, its record
    /// signed by that user's identity through `sign_record` (for example a client's engine).
    pub fn linked(
        identity_key: [u8; 32],
        seed: u8,
        sign_record: impl FnOnce(DeviceId, [u8; 32]) -> DeviceRecord,
    ) -> Hostile {
        let device_key = SigningKey::from_bytes(&[seed; 32]);
        let record = sign_record(DeviceId([seed; 16]), device_key.verifying_key().to_bytes());
        Hostile::with_keys(identity_key, record, device_key)
    }

    fn with_keys(identity_key: [u8; 32], record: DeviceRecord, device_key: SigningKey) -> Hostile {
        Hostile {
            addr: record.address(),
            identity_key,
            record,
            signer: KeySigner(device_key),
            provider: OpenMlsRustCrypto::default(),
            groups: HashMap::new(),
            cursor: 0,
            counter: 0,
            forged: Vec::new(),
            pending: None,
        }
    }

    /// `n` key packages of this device, serialised.
    pub fn key_packages(&self, n: usize) -> Vec<Vec<u8>> {
        (0..n).map(|_| self.own_package().tls_serialize_detached().unwrap()).collect()
    }

    /// Signs a login challenge without a channel binding (as a browser does).
    pub fn sign_login(&self, nonce: &[u8]) -> [u8; 64] {
        self.signer.0.sign(&login_bytes(&self.addr.user, &self.addr.device, nonce, &[])).to_bytes()
    }

    fn package(&self, addr: &DeviceAddress, signer: &KeySigner) -> KeyPackage {
        let cwk = CredentialWithKey { credential: credential_for(addr), signature_key: signer.public().into() };
        KeyPackage::builder()
            .leaf_node_capabilities(capabilities())
            .build(CIPHERSUITE, &self.provider, signer, cwk)
            .unwrap()
            .key_package()
            .clone()
    }

    fn own_package(&self) -> KeyPackage {
        self.package(&self.addr, &self.signer)
    }

    /// A key package naming `victim`'s device but holding a key of ours.
    pub fn forged_package(&mut self, victim: &DeviceAddress) -> KeyPackage {
        self.counter += 1;
        let mut seed = [0xEEu8; 32];
        seed[..8].copy_from_slice(&self.counter.to_be_bytes());
        let signer = KeySigner(SigningKey::from_bytes(&seed));
        let kp = self.package(victim, &signer);
        self.forged.push(signer);
        kp
    }

    fn next_id(&mut self) -> ClientMsgId {
        self.counter += 1;
        let mut id = [0x77u8; 16];
        id[..8].copy_from_slice(&self.counter.to_be_bytes());
        ClientMsgId(id)
    }

    fn join_config() -> MlsGroupJoinConfig {
        MlsGroupJoinConfig::builder()
            .use_ratchet_tree_extension(true)
            .padding_size(PADDING_BYTES)
            .max_past_epochs(MAX_PAST_EPOCHS)
            .sender_ratchet_configuration(ratchet())
            .wire_format_policy(MIXED_PLAINTEXT_WIRE_FORMAT_POLICY)
            .build()
    }

    /// Reads one envelope: joins on Welcomes, follows commits, ignores what it cannot read.
    pub fn receive(&mut self, env: &Envelope) {
        if env.seq <= self.cursor {
            return;
        }
        self.cursor = env.seq;
        let Ok(msg) = MlsMessageIn::tls_deserialize_exact(env.payload.as_slice()) else { return };
        if env.kind == EnvelopeKind::Welcome {
            let MlsMessageBodyIn::Welcome(w) = msg.extract() else { return };
            let joined = StagedWelcome::build_from_welcome(&self.provider, &Self::join_config(), w)
                .and_then(|b| b.build())
                .ok()
                .and_then(|s| s.into_group(&self.provider).ok());
            if let Some(g) = joined {
                self.groups.insert(env.channel.clone(), g);
            }
            return;
        }
        let Some(g) = self.groups.get_mut(&env.channel) else { return };
        let Ok(pm) = msg.try_into_protocol_message() else { return };
        let Ok(p) = g.process_message(&self.provider, pm) else { return };
        if let ProcessedMessageContent::StagedCommitMessage(staged) = p.into_content() {
            let _ = g.merge_staged_commit(&self.provider, *staged);
        }
    }

    /// The server's answer to the commit last built: merge it, or forget it.
    pub fn settle(&mut self, accepted: bool) {
        let Some((conv, new_signer)) = self.pending.take() else { return };
        let g = self.groups.get_mut(&conv).expect("member");
        if accepted {
            g.merge_pending_commit(&self.provider).unwrap();
            if let Some(s) = new_signer {
                self.signer = s;
            }
        } else {
            let _ = g.clear_pending_commit(openmls_traits::OpenMlsProvider::storage(&self.provider));
        }
    }

    fn commit_call(&mut self, conv: &ChannelId, epoch: u64, commit: Vec<u8>, welcome: Vec<u8>, add: Vec<DeviceAddress>) -> Outbound {
        let id = self.next_id();
        Outbound { id, op: OutboundOp::Commit { channel: conv.clone(), epoch, commit, welcome, add, remove: vec![] } }
    }

    /// A commit (for server epoch `epoch`) adding a leaf that claims to be `victim`'s device
    /// but holds our key. Report the answer with [`Hostile::settle`].
    pub fn forged_add(&mut self, conv: &ChannelId, epoch: u64, victim: &DeviceAddress) -> Outbound {
        let kp = self.forged_package(victim);
        let g = self.groups.get_mut(conv).expect("member");
        let (commit, welcome, _) = g.add_members(&self.provider, &self.signer, &[kp]).unwrap();
        let commit = commit.tls_serialize_detached().unwrap();
        let welcome = welcome.tls_serialize_detached().unwrap();
        self.pending = Some((conv.clone(), None));
        self.commit_call(conv, epoch, commit, welcome, vec![victim.clone()])
    }

    /// A self-update commit that swaps our leaf's signature key for one the directory does not
    /// know (the credential still names our device).
    pub fn key_swap(&mut self, conv: &ChannelId, epoch: u64) -> Outbound {
        self.counter += 1;
        let mut seed = [0xDDu8; 32];
        seed[..8].copy_from_slice(&self.counter.to_be_bytes());
        let new = KeySigner(SigningKey::from_bytes(&seed));
        let cwk = CredentialWithKey { credential: credential_for(&self.addr), signature_key: new.public().into() };
        let g = self.groups.get_mut(conv).expect("member");
        let bundle = g
            .self_update_with_new_signer(
                &self.provider,
                &self.signer,
                NewSignerBundle { signer: &new, credential_with_key: cwk },
                LeafNodeParameters::default(),
            )
            .unwrap();
        let commit = bundle.commit().tls_serialize_detached().unwrap();
        self.pending = Some((conv.clone(), Some(new)));
        self.commit_call(conv, epoch, commit, vec![], vec![])
    }

    /// A commit removing `victim`'s leaf (valid MLS; whether roles allow it is for others).
    pub fn removal(&mut self, conv: &ChannelId, epoch: u64, victim: &DeviceAddress) -> Outbound {
        let g = self.groups.get_mut(conv).expect("member");
        let index = g
            .members()
            .find(|m| qpq_core::device_of_credential(&m.credential).is_ok_and(|d| d == *victim))
            .expect("the victim is a member")
            .index;
        let (commit, _, _) = g.remove_members(&self.provider, &self.signer, &[index]).unwrap();
        let commit = commit.tls_serialize_detached().unwrap();
        self.pending = Some((conv.clone(), None));
        let id = self.next_id();
        Outbound {
            id,
            op: OutboundOp::Commit { channel: conv.clone(), epoch, commit, welcome: vec![], add: vec![], remove: vec![victim.clone()] },
        }
    }

    /// A commit making `admins` the group's admins (a GroupContextExtensions proposal).
    pub fn admins(&mut self, conv: &ChannelId, epoch: u64, admins: &[UserId]) -> Outbound {
        let g = self.groups.get_mut(conv).expect("member");
        let mut exts = g.extensions().clone();
        let list = openmls::prelude::UnknownExtension(qpq_types::roles::encode_admins(admins));
        exts.add_or_replace(openmls::prelude::Extension::Unknown(qpq_types::roles::ADMINS_EXTENSION, list)).unwrap();
        let bundle = g
            .commit_builder()
            .propose_group_context_extensions(exts)
            .unwrap()
            .load_psks(openmls_traits::OpenMlsProvider::storage(&self.provider))
            .unwrap()
            .build(
                openmls_traits::OpenMlsProvider::rand(&self.provider),
                openmls_traits::OpenMlsProvider::crypto(&self.provider),
                &self.signer,
                |_| true,
            )
            .unwrap()
            .stage_commit(&self.provider)
            .unwrap();
        let commit = bundle.commit().tls_serialize_detached().unwrap();
        self.pending = Some((conv.clone(), None));
        self.commit_call(conv, epoch, commit, vec![], vec![])
    }

    /// An honest self-update commit (new leaf keys, same signature key).
    pub fn self_update(&mut self, conv: &ChannelId, epoch: u64) -> Outbound {
        let g = self.groups.get_mut(conv).expect("member");
        let bundle = g.self_update(&self.provider, &self.signer, LeafNodeParameters::default()).unwrap();
        let commit = bundle.commit().tls_serialize_detached().unwrap();
        self.pending = Some((conv.clone(), None));
        self.commit_call(conv, epoch, commit, vec![], vec![])
    }

    /// The GroupInfo of our current epoch of `conv` handed to the server (as an honest
    /// committer does after its commit).
    pub fn publish_group_info(&mut self, conv: &ChannelId) -> Outbound {
        let g = self.groups.get(conv).expect("member");
        let group_info = g
            .export_group_info(openmls_traits::OpenMlsProvider::crypto(&self.provider), &self.signer, false)
            .unwrap()
            .tls_serialize_detached()
            .unwrap();
        Outbound { id: self.next_id(), op: OutboundOp::PutGroupInfo { channel: conv.clone(), group_info } }
    }

    /// A group of our own with id `cid` (only us in it) and the call creating its channel.
    pub fn own_channel(&mut self, cid: [u8; 16]) -> (ChannelId, Outbound) {
        let conv = ChannelId::from_slice(&cid).unwrap();
        let config = MlsGroupCreateConfig::builder()
            .ciphersuite(CIPHERSUITE)
            .use_ratchet_tree_extension(true)
            .wire_format_policy(MIXED_PLAINTEXT_WIRE_FORMAT_POLICY)
            .capabilities(capabilities())
            .build();
        let create = self.new_group(&conv, &config);
        (conv, create)
    }

    /// Makes our new group `conv` with `config`; returns the call creating its channel.
    fn new_group(&mut self, conv: &ChannelId, config: &MlsGroupCreateConfig) -> Outbound {
        let cwk = CredentialWithKey { credential: credential_for(&self.addr), signature_key: self.signer.public().into() };
        let g = MlsGroup::new_with_group_id(&self.provider, &self.signer, config, GroupId::from_slice(conv.as_bytes()), cwk)
            .unwrap();
        let group_info = g
            .export_group_info(openmls_traits::OpenMlsProvider::crypto(&self.provider), &self.signer, true)
            .unwrap()
            .tls_serialize_detached()
            .unwrap();
        self.groups.insert(conv.clone(), g);
        Outbound { id: self.next_id(), op: OutboundOp::CreateChannel { channel: conv.clone(), group_info } }
    }

    /// From now on sends its commits in `conv` encrypted (`PrivateMessage`), as clients did
    /// before commits went out in clear for the node to check.
    pub fn private_handshakes(&mut self, conv: &ChannelId) {
        let config = MlsGroupJoinConfig::builder()
            .use_ratchet_tree_extension(true)
            .padding_size(PADDING_BYTES)
            .max_past_epochs(MAX_PAST_EPOCHS)
            .sender_ratchet_configuration(ratchet())
            .wire_format_policy(openmls::prelude::PURE_CIPHERTEXT_WIRE_FORMAT_POLICY)
            .build();
        let g = self.groups.get_mut(conv).expect("member");
        g.set_configuration(openmls_traits::OpenMlsProvider::storage(&self.provider), &config).unwrap();
    }

    /// An application message with `body` into `conv`.
    pub fn message(&mut self, conv: &ChannelId, body: Body, now: u64) -> Outbound {
        self.counter += 1;
        let mut mid = [0x55u8; 16];
        mid[..8].copy_from_slice(&self.counter.to_be_bytes());
        let bytes = AppMessage { id: MessageId(mid), sent_at: now, body }.encode();
        let g = self.groups.get_mut(conv).expect("member");
        let ct = g.create_message(&self.provider, &self.signer, &bytes).unwrap().tls_serialize_detached().unwrap();
        let id = self.next_id();
        Outbound { id, op: OutboundOp::Enqueue { channel: conv.clone(), payload: ct, ttl_secs: 0 } }
    }

    /// Starts a group whose tree holds a forged leaf for `victim` and invites `target` (a
    /// claimed key package of an honest device). Returns the channel and the two calls to make
    /// in order: creating the channel, then the commit (report it with [`Hostile::settle`]).
    pub fn forged_group(&mut self, victim: &DeviceAddress, target: &ClaimedPackage, now: u64) -> (ChannelId, Outbound, Outbound) {
        self.counter += 1;
        let mut cid = [0x99u8; 16];
        cid[..8].copy_from_slice(&self.counter.to_be_bytes());
        let conv = ChannelId::from_slice(&cid).unwrap();
        let meta = GroupMeta {
            kind: ConversationKind::Group,
            name: "support".into(),
            created_by: victim.user.clone(),
            created_at: now,
            disappear_secs: 0,
        };
        let config = MlsGroupCreateConfig::builder()
            .ciphersuite(CIPHERSUITE)
            .use_ratchet_tree_extension(true)
            .padding_size(PADDING_BYTES)
            .max_past_epochs(MAX_PAST_EPOCHS)
            .sender_ratchet_configuration(ratchet())
            .wire_format_policy(MIXED_PLAINTEXT_WIRE_FORMAT_POLICY)
            .capabilities(capabilities())
            // In clear, as a conversation made before metadata keys keeps it (no key to hand over).
            .with_group_context_extensions(
                openmls::prelude::Extensions::single(meta.to_extension(
                    None,
                    &cid,
                    [0; 12],
                    openmls_traits::OpenMlsProvider::crypto(&self.provider),
                ))
                .unwrap(),
            )
            .build();
        let create = self.new_group(&conv, &config);
        let forged = self.forged_package(victim);
        let honest = KeyPackageIn::tls_deserialize_exact(target.key_package.as_slice())
            .unwrap()
            .validate(openmls_traits::OpenMlsProvider::crypto(&self.provider), ProtocolVersion::Mls10)
            .unwrap();
        let g = self.groups.get_mut(&conv).unwrap();
        let (commit, welcome, _) = g.add_members(&self.provider, &self.signer, &[forged, honest]).unwrap();
        let commit = commit.tls_serialize_detached().unwrap();
        let welcome = welcome.tls_serialize_detached().unwrap();
        let add = vec![victim.clone(), DeviceAddress { user: target.user.clone(), device: target.device }];
        self.pending = Some((conv.clone(), None));
        let commit = self.commit_call(&conv, 0, commit, welcome, add);
        (conv, create, commit)
    }
}
