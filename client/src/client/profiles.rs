//! Profiles (see `qpq_core`'s `profiles`): the engine signs, shares and checks the cards; the
//! client only turns each change into a stored step.

use qpq_core::{KnownProfile, Picture};
use qpq_proto::{ChannelId, UserId};

use super::Client;
use crate::error::ClientError;
use crate::{Platform, StateStore};

impl<S: StateStore, P: Platform> Client<S, P> {
    /// The profile of `user` (this account's own included) as this device holds it.
    pub fn profile(&self, user: &UserId) -> Option<KnownProfile> {
        self.with_engine(|e| e.profile(user))
    }

    /// Sets this account's profile and shares it in every conversation (not in requests
    /// before they are accepted). Replaces the whole profile: pass the current picture to
    /// keep it.
    pub async fn set_profile(&self, name: &str, status: &str, picture: Option<Picture>) -> Result<(), ClientError> {
        let now = self.inner.platform.now_ms();
        self.inner.engine.borrow_mut().set_profile(name, status, picture, now)?;
        self.step_done().await
    }

    /// The signed card of `user` as held, for forwarding.
    pub fn profile_card(&self, user: &UserId) -> Option<Vec<u8>> {
        self.with_engine(|e| e.profile_card(user))
    }

    /// Forwards a profile card into a conversation (its user must be a member there).
    pub async fn share_profile_card(&self, conv: &ChannelId, card: Vec<u8>) -> Result<(), ClientError> {
        let now = self.inner.platform.now_ms();
        self.inner.engine.borrow_mut().share_profile_card(conv, card, now)?;
        self.step_done().await
    }
}
