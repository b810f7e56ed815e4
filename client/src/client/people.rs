//! Contacts, message requests and blocking (see `qpq_core`'s `people`): the node keeps the
//! account's blocks and enforces them; the engine keeps contacts and requests.

use qpq_core::Contact;
use qpq_proto::{ChannelId, ErrorCode, UserId};

use super::Client;
use crate::api::Session;
use crate::error::ClientError;
use crate::{Platform, StateStore};

impl<S: StateStore, P: Platform> Client<S, P> {
    /// The contacts, sorted by address.
    pub fn contacts(&self) -> Vec<Contact> {
        self.with_engine(|e| e.contacts())
    }

    /// Adds `user` as a contact, once the directory says the account exists.
    pub async fn add_contact(&self, user: &UserId) -> Result<(), ClientError> {
        if *user == self.user() {
            return Err(ClientError::Input("that is you; add someone else".into()));
        }
        match self.session()?.list_devices(user).await {
            Ok(_) => {}
            Err(e) if e.remote_code() == Some(ErrorCode::NoSuchUser) => {
                return Err(ClientError::Input(format!("there is no account {user}")));
            }
            Err(e) => return Err(e),
        }
        let now = self.inner.platform.now_ms();
        self.inner.engine.borrow_mut().add_contacts([(user.clone(), now)]);
        self.step_done().await
    }

    /// Removes a contact.
    pub async fn remove_contact(&self, user: &UserId) -> Result<(), ClientError> {
        self.inner.engine.borrow_mut().remove_contact(user);
        self.step_done().await
    }

    /// The contacts as a JSON document, for a file.
    pub fn export_contacts(&self) -> String {
        qpq_core::encode_contacts(&self.contacts())
    }

    /// Adds the contacts of an exported list (those already there stay as they are);
    /// returns how many were new.
    pub async fn import_contacts(&self, json: &str) -> Result<usize, ClientError> {
        let me = self.user();
        let listed = qpq_core::decode_contacts(json)?;
        let now = self.inner.platform.now_ms();
        let new = {
            let mut e = self.inner.engine.borrow_mut();
            let fresh: Vec<(UserId, u64)> = listed
                .into_iter()
                .filter(|c| c.user != me && !e.is_contact(&c.user))
                .map(|c| (c.user, if c.added_at == 0 { now } else { c.added_at.min(now) }))
                .collect();
            let n = fresh.len();
            e.add_contacts(fresh);
            n
        };
        self.step_done().await?;
        Ok(new)
    }

    /// The users this account blocks, as last read from the node.
    pub fn blocked_users(&self) -> Vec<UserId> {
        self.with_engine(|e| e.blocked_users())
    }

    /// Blocks or unblocks `user` for the whole account: the node keeps it (and tells the
    /// account's other devices, which read the list again) and from then on drops what they send to this account
    /// in a conversation of two and refuses their adds; their requests are put away here.
    pub async fn set_blocked(&self, user: &UserId, blocked: bool) -> Result<(), ClientError> {
        if *user == self.user() {
            return Err(ClientError::Input("you cannot block yourself".into()));
        }
        self.session()?.set_blocked(user, blocked).await?;
        self.inner.engine.borrow_mut().set_blocked(user, blocked);
        self.step_done().await
    }

    /// Reads the account's blocks from the node (at each login: another device of the
    /// account may have changed them).
    pub(super) async fn sync_blocked(&self, session: &Session) -> Result<(), ClientError> {
        let users = session.blocked_users().await?;
        self.inner.engine.borrow_mut().set_blocked_users(users);
        self.step_done().await
    }

    /// Accepts a message request.
    pub async fn accept_request(&self, conv: &ChannelId) -> Result<(), ClientError> {
        let now = self.inner.platform.now_ms();
        self.inner.engine.borrow_mut().accept_request(conv, now)?;
        self.step_done().await
    }

    /// Deletes a message request: leaves it, and it is no longer listed.
    pub async fn delete_request(&self, conv: &ChannelId) -> Result<(), ClientError> {
        let now = self.inner.platform.now_ms();
        self.inner.engine.borrow_mut().delete_request(conv, now)?;
        self.step_done().await
    }
}
