//! Profiles in the engine: the account's own card, the cards of the people it talks with, and
//! when a card goes out.
//!
//! The own card is signed with the identity key (every device of the account holds it), so
//! each device can make and share it, and a card one device sets reaches the others through
//! the conversations they share and replaces theirs when newer. A conversation remembers the
//! version it last carried and to which members and how many devices; as this device's next
//! message goes out into it (any kind, receipts included), a newer version, a new member or a
//! new device makes the card follow it. Nothing goes to a message request before it is
//! accepted.
//!
//! A received card is kept only if its signature verifies against the identity key held for
//! its user, who must be a member of that conversation (so the directory's records are
//! known), and only if newer than the one held. A card that fails is not used; it marks the
//! user's profile `forged` until a good, newer one arrives, so that the UI can say a profile
//! was refused.

use qpq_types::{ChannelId, UserId};
use serde::{Deserialize, Serialize};

use super::{Engine, Event};
use crate::app_message::{AppMessage, Body};
use crate::conversation::ProfileShared;
use crate::error::EngineError;
use crate::outbox::PendingOp;
use crate::profile::{check_profile, read_card, sign_card, Picture, Profile};
use crate::state::StateKey;

/// What this device holds of one user's profile.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct HeldProfile {
    /// The last card whose signature verified.
    #[serde(default, with = "crate::outbox::opt_hex_bytes")]
    card: Option<Vec<u8>>,
    /// Its version (`updated_at`); 0 without a card.
    #[serde(default)]
    updated_at: u64,
    /// Its display name, so that titles need not decode the card (and copy its picture).
    #[serde(default)]
    name: String,
    /// A card that failed its signature check arrived after `card`.
    #[serde(default)]
    forged: bool,
}

/// A user's profile as this device holds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KnownProfile {
    /// The verified profile, if any arrived.
    pub profile: Option<Profile>,
    /// A card whose signature did not verify arrived after the verified one (or with none):
    /// it was not used.
    pub forged: bool,
}

impl Engine {
    /// Sets this account's profile (display name, status, picture) and shares it in every
    /// conversation this device is in, except requests not yet accepted. Replaces the whole
    /// profile: pass the current picture to keep it.
    pub fn set_profile(
        &mut self,
        name: &str,
        status: &str,
        picture: Option<Picture>,
        now: u64,
    ) -> Result<(), EngineError> {
        let (name, status) = (name.trim(), status.trim());
        check_profile(name, status, picture.as_ref()).map_err(EngineError::BadValue)?;
        let me = self.user().clone();
        let previous = self.profiles.get(&me).map_or(0, |h| h.updated_at);
        let profile = Profile {
            user: me.clone(),
            updated_at: now.max(previous.saturating_add(1)),
            name: name.to_string(),
            status: status.to_string(),
            picture,
        };
        let card = sign_card(&profile, self.identity.identity_signing_key());
        self.hold_profile(&me, card, &profile);
        let convs: Vec<ChannelId> = self.conversations.keys().cloned().collect();
        for conv in convs {
            self.share_profile_if_needed(&conv);
        }
        Ok(())
    }

    /// The profile of `user` (this account's own included) as this device holds it; `None`
    /// when no card ever arrived.
    pub fn profile(&self, user: &UserId) -> Option<KnownProfile> {
        let held = self.profiles.get(user)?;
        let profile = held.card.as_deref().and_then(|c| read_card(c).ok()).map(|c| c.profile);
        Some(KnownProfile { profile, forged: held.forged })
    }

    /// The display name of `user` from a verified profile, when it has a non-empty one.
    pub fn display_name(&self, user: &UserId) -> Option<String> {
        self.profiles.get(user).map(|h| h.name.clone()).filter(|n| !n.is_empty())
    }

    /// The signed card of `user` as held, for forwarding.
    pub fn profile_card(&self, user: &UserId) -> Option<Vec<u8>> {
        self.profiles.get(user)?.card.clone()
    }

    /// Forwards a profile card into a conversation. Its user must be a member there; the
    /// receivers check its signature, so this cannot vouch for a card that was altered.
    pub fn share_profile_card(&mut self, conv: &ChannelId, card: Vec<u8>, now: u64) -> Result<(), EngineError> {
        self.require_active(conv)?;
        let read = read_card(&card).map_err(|e| EngineError::BadValue(format!("this is not a profile card: {e}")))?;
        let member = self.conversations.get(conv).is_some_and(|c| c.members.contains(&read.profile.user));
        if !member {
            return Err(EngineError::BadValue(format!("{} is not a member of this conversation", read.profile.user)));
        }
        if self.is_request(conv) {
            return Err(EngineError::BadValue("accept the request before sending anything to it".into()));
        }
        self.send_control(conv, Body::Profile { card }, now);
        Ok(())
    }

    /// Queues the own card into `conv` if it has not carried this version to every current
    /// member yet. Called as each message of this device is first encrypted for `conv`.
    pub(super) fn share_profile_if_needed(&mut self, conv: &ChannelId) {
        let me = self.user().clone();
        let Some(held) = self.profiles.get(&me) else { return };
        let (Some(card), version) = (held.card.clone(), held.updated_at) else { return };
        let leaves = self.groups.get(conv).map_or(0, |g| g.members().count());
        let Some(c) = self.conversations.get_mut(conv) else { return };
        if c.request || c.hidden || !c.active {
            return;
        }
        let shared = c.profile_shared.as_ref().is_some_and(|s| {
            s.version == version && s.leaves >= leaves && c.members.iter().all(|m| s.members.contains(m))
        });
        if shared {
            return;
        }
        c.profile_shared = Some(ProfileShared { version, members: c.members.clone(), leaves });
        self.dirty.insert(StateKey::Conversation(conv.clone()));
        let msg = AppMessage { id: self.new_message_id(), sent_at: version, body: Body::Profile { card } };
        self.push_outbox(
            conv.clone(),
            PendingOp::message(msg.id, msg.encode(), false),
        );
    }

    /// A card arrived in `conv`: kept if it verifies and is newer, marked forged if it does
    /// not verify. A card that cannot be read at all, or of someone who is not a member, is
    /// dropped.
    pub(super) fn receive_profile_card(&mut self, conv: &ChannelId, card: Vec<u8>) {
        let Ok(read) = read_card(&card) else { return };
        let user = read.profile.user.clone();
        let me = self.user().clone();
        let member = self.conversations.get(conv).is_some_and(|c| c.members.contains(&user));
        if !member && user != me {
            return;
        }
        let key = if user == me {
            Some(self.identity.identity_public_key().to_vec())
        } else {
            self.known.get(&user).map(|k| k.identity_key.clone())
        };
        let Some(key) = key else { return };
        let held = self.profiles.get(&user).cloned().unwrap_or_default();
        if !read.verify(&key) {
            if !held.forged {
                self.profiles.insert(user.clone(), HeldProfile { forged: true, ..held });
                self.dirty.insert(StateKey::Profile(user.clone()));
                self.events.push(Event::ProfileChanged(user));
            }
            return;
        }
        let profile = read.profile;
        let version = profile.updated_at;
        if user == me {
            // Another device of this account shared it here: this conversation has it.
            let leaves = self.groups.get(conv).map_or(0, |g| g.members().count());
            if let Some(c) = self.conversations.get_mut(conv) {
                c.profile_shared = Some(ProfileShared { version, members: c.members.clone(), leaves });
                self.dirty.insert(StateKey::Conversation(conv.clone()));
            }
        }
        if version > held.updated_at {
            self.hold_profile(&user, card, &profile);
        }
    }

    fn hold_profile(&mut self, user: &UserId, card: Vec<u8>, profile: &Profile) {
        let held = HeldProfile { card: Some(card), updated_at: profile.updated_at, name: profile.name.clone(), forged: false };
        self.profiles.insert(user.clone(), held);
        self.dirty.insert(StateKey::Profile(user.clone()));
        self.events.push(Event::ProfileChanged(user.clone()));
    }
}
