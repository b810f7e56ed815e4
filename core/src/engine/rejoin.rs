//! Rejoining a group this device fell out of step with.
//!
//! The server validates every commit against the group's public state, but it cannot check
//! everything (the membership tag and the encrypted path secrets need the group's secrets), and
//! a device can refuse a commit for its own reasons. A device that could not process a commit
//! the server accepted would otherwise wait forever for the next epoch. Instead it marks the
//! conversation (`Conversation::rejoin`), the shell fetches the GroupInfo of the current epoch
//! that the last committer handed the server (`Session.groupInfo`, with the server's ratchet
//! tree), and [`Engine::rejoin`] builds an external commit (RFC 9420 §12.4.3.2) that replaces
//! this device's own leaf ("resync"). It goes out before anything else of the conversation;
//! once accepted, the conversation goes on from the new epoch. Messages sent in the epochs it
//! missed cannot be read here; the conversation says so.
//!
//! Every leaf of the tree it rejoins is checked against the directory, as for a Welcome; users
//! whose records it lacks are returned for the shell to fetch first.

use openmls::prelude::tls_codec::{Deserialize as _, Serialize as _};
use openmls::prelude::{LeafNodeParameters, MlsGroup, MlsMessageBodyIn, MlsMessageIn, RatchetTreeIn};
use qpq_types::{ChannelId, UserId};

use super::directory::LeafCheck;
use super::{capabilities, join_config, Engine, Event};
use crate::error::EngineError;
use crate::outbox::{OutboundResult, PendingOp};
use crate::state::StateKey;

impl Engine {
    /// Conversations this device must rejoin and has no rejoin queued for.
    pub fn rejoins_needed(&self) -> Vec<ChannelId> {
        self.conversations
            .values()
            .filter(|c| c.active && c.rejoin)
            .filter(|c| !self.outbox.values().any(|i| i.conv == c.id && matches!(i.op, PendingOp::Rejoin { .. })))
            .map(|c| c.id.clone())
            .collect()
    }

    /// Rejoins `conv` from the server's GroupInfo of its current epoch and its ratchet tree:
    /// builds the external commit and queues it. Returns the users whose directory records
    /// are needed first (then nothing is changed; learn them and call again naming them in
    /// `fetched`, after which a leaf that still does not match is refused).
    pub fn rejoin(
        &mut self,
        conv: &ChannelId,
        group_info: &[u8],
        ratchet_tree: &[u8],
        fetched: &[UserId],
    ) -> Result<Vec<UserId>, EngineError> {
        let c = self.conversations.get(conv).ok_or(EngineError::NoSuchConversation)?;
        if !c.active || !c.rejoin {
            return Err(EngineError::Invalid("this conversation does not need rejoining".into()));
        }
        let msg = MlsMessageIn::tls_deserialize_exact(group_info).map_err(|_| EngineError::Invalid("not an MLS message".into()))?;
        let MlsMessageBodyIn::GroupInfo(info) = msg.extract() else {
            return Err(EngineError::Invalid("not a GroupInfo".into()));
        };
        if info.group_id().as_slice() != conv.as_bytes() {
            return Err(EngineError::Invalid("the GroupInfo is for another conversation".into()));
        }
        // The external commit is made in the GroupInfo's epoch.
        let epoch = info.epoch().as_u64();
        let tree = RatchetTreeIn::tls_deserialize_exact(ratchet_tree)
            .map_err(|_| EngineError::Invalid("the ratchet tree cannot be read".into()))?;
        let snapshot = self.mls_snapshot();
        if let Some(mut old) = self.groups.remove(conv) {
            // Only in-memory storage is touched; it cannot fail there.
            let _ = old.delete(openmls_traits::OpenMlsProvider::storage(&self.provider));
        }
        let built = MlsGroup::external_commit_builder()
            .with_ratchet_tree(tree)
            .with_config(join_config())
            .build_group(&self.provider, info, self.identity.credential_with_key())
            .map_err(EngineError::mls)
            .and_then(|b| {
                b.leaf_node_parameters(LeafNodeParameters::builder().with_capabilities(capabilities()).build())
                    .load_psks(openmls_traits::OpenMlsProvider::storage(&self.provider))
                    .map_err(EngineError::mls)
            })
            .and_then(|b| {
                b.build(
                    openmls_traits::OpenMlsProvider::rand(&self.provider),
                    openmls_traits::OpenMlsProvider::crypto(&self.provider),
                    self.identity.signer(),
                    |_| true,
                )
                .map_err(EngineError::mls)
            })
            .and_then(|b| b.finalize(&self.provider).map_err(EngineError::mls));
        let (group, bundle) = match built {
            Ok(done) => done,
            Err(e) => {
                self.mls_rollback(conv, snapshot);
                return Err(e);
            }
        };
        // The members it rejoins are who the directory says they are, as for a Welcome.
        let asked: std::collections::BTreeSet<UserId> = fetched.iter().cloned().collect();
        let mut check = LeafCheck::new(&asked);
        let verdict = group.members().try_for_each(|m| self.check_leaf(&m.credential, &m.signature_key, &mut check).map(|_| ()));
        let need: Vec<UserId> = check.need.iter().cloned().collect();
        if verdict.is_err() || !need.is_empty() {
            drop(group);
            self.mls_rollback(conv, snapshot);
            verdict?;
            return Ok(need);
        }
        let commit = bundle.into_commit().tls_serialize_detached().map_err(EngineError::mls)?;
        self.groups.insert(conv.clone(), group);
        self.push_outbox(conv.clone(), PendingOp::Rejoin { epoch, commit });
        self.dirty.insert(StateKey::Conversation(conv.clone()));
        Ok(Vec::new())
    }

    /// The server's answer to this device's rejoin of `conv`.
    pub(super) fn rejoin_settled(&mut self, conv: &ChannelId, result: OutboundResult, now: u64) {
        match result {
            OutboundResult::Accepted { .. } => {
                if let Some(c) = self.conversations.get_mut(conv) {
                    c.rejoin = false;
                    c.refused_commits = 0;
                }
                self.dirty.insert(StateKey::Conversation(conv.clone()));
                self.sync_conversation(conv);
                // What was queued for the old epoch is encrypted anew.
                let orders: Vec<u64> = self.outbox.values().filter(|i| i.conv == *conv).map(|i| i.order).collect();
                for o in orders {
                    if let Some(item) = self.outbox.get_mut(&o) {
                        if let PendingOp::Message { ciphertext, .. } = &mut item.op {
                            *ciphertext = None;
                            self.dirty.insert(StateKey::Outbox(o));
                        }
                    }
                }
                self.push_outbox(conv.clone(), PendingOp::PublishGroupInfo);
                self.note_failure(
                    conv,
                    now,
                    "this device fell out of step with the conversation and rejoined it; messages sent in between cannot be read here"
                        .into(),
                );
            }
            // Another commit came first, or the server refused it: the shell fetches the
            // current GroupInfo and this device tries again.
            OutboundResult::Refused { .. } => {
                self.events.push(Event::ConversationChanged(conv.clone()));
            }
        }
    }

    /// The GroupInfo of `conv`'s current epoch, signed by this device, without the ratchet
    /// tree (the server has it): what members that must rejoin start from.
    pub(super) fn group_info_to_publish(&self, conv: &ChannelId) -> Result<Vec<u8>, EngineError> {
        self.require_active(conv)?;
        let group = self.groups.get(conv).ok_or(EngineError::NoSuchConversation)?;
        let crypto = openmls_traits::OpenMlsProvider::crypto(&self.provider);
        let info = group.export_group_info(crypto, self.identity.signer(), false).map_err(EngineError::mls)?;
        info.tls_serialize_detached().map_err(EngineError::mls)
    }
}
