//! What a person starts: chats and groups, membership, messages and the changes to them,
//! leaving and deleting the account. Each is one engine step, stored and then sent by the pump.

use qpq_core::{ClaimedPackage, ConversationKind, MessageId, SafetyNumber, Verification};
use qpq_proto::{ChannelId, UserId};

use super::{Client, ClientEvent};
use crate::api::Session;
use crate::error::ClientError;
use crate::{Platform, StateStore};

/// How long deleting an account waits for the notices to its conversations to be sent.
const ACCOUNT_NOTICE_TIMEOUT_MS: u64 = 10_000;

impl<S: StateStore, P: Platform> Client<S, P> {
    /// Opens the 1:1 chat with `peer`, creating it if there is none.
    pub async fn start_chat(&self, peer: &UserId) -> Result<ChannelId, ClientError> {
        let me = self.user();
        if *peer == me {
            return Err(ClientError::Input("that is you; start a chat with someone else".into()));
        }
        let existing = self.with_engine(|e| {
            e.conversations()
                .into_iter()
                .find(|c| c.kind == ConversationKind::Direct && c.active && c.members.contains(peer) && c.members.len() <= 2)
                .map(|c| c.id.clone())
        });
        if let Some(id) = existing {
            return Ok(id);
        }
        let session = self.session()?;
        let packages = self.claim_for(&session, std::slice::from_ref(peer)).await?;
        self.create_with(ConversationKind::Direct, "", packages).await
    }

    /// Creates a group named `name` with `members` (plus this user).
    pub async fn create_group(&self, name: &str, members: &[UserId]) -> Result<ChannelId, ClientError> {
        if name.trim().is_empty() {
            return Err(ClientError::Input("give the group a name".into()));
        }
        let me = self.user();
        let others: Vec<UserId> = dedup(members.iter().filter(|u| **u != me).cloned().collect());
        let session = self.session()?;
        let packages = self.claim_for(&session, &others).await?;
        self.create_with(ConversationKind::Group, name, packages).await
    }

    async fn create_with(&self, kind: ConversationKind, name: &str, mut packages: Vec<ClaimedPackage>) -> Result<ChannelId, ClientError> {
        // Our own other devices join too.
        let session = self.session()?;
        let me = self.user();
        packages.extend(self.claim_for(&session, std::slice::from_ref(&me)).await.unwrap_or_default());
        let now = self.inner.platform.now_ms();
        let id = {
            let mut e = self.inner.engine.borrow_mut();
            e.check_packages(&packages)?;
            let id = e.create_conversation(kind, name, now)?;
            if !packages.is_empty() {
                e.add_members(&id, packages)?;
            }
            id
        };
        self.step_done().await?;
        Ok(id)
    }

    /// Adds every device of `users` to a conversation.
    pub async fn add_members(&self, conv: &ChannelId, users: &[UserId]) -> Result<(), ClientError> {
        let session = self.session()?;
        let users = dedup(users.to_vec());
        let present = self.with_engine(|e| e.conversation(conv).map(|c| c.members.clone())).ok_or(ClientError::Engine(qpq_core::EngineError::NoSuchConversation))?;
        if let Some(u) = users.iter().find(|u| present.contains(u)) {
            return Err(ClientError::Input(format!("{u} is already a member")));
        }
        let packages = self.claim_for(&session, &users).await?;
        self.inner.engine.borrow_mut().add_members(conv, packages)?;
        self.step_done().await
    }

    /// Removes every device of `users` from a conversation.
    pub async fn remove_members(&self, conv: &ChannelId, users: &[UserId]) -> Result<(), ClientError> {
        self.inner.engine.borrow_mut().remove_members(conv, dedup(users.to_vec()))?;
        self.step_done().await
    }

    /// Sends a text message (it waits in the outbox while offline).
    pub async fn send_text(&self, conv: &ChannelId, text: &str) -> Result<MessageId, ClientError> {
        let now = self.inner.platform.now_ms();
        let id = self.inner.engine.borrow_mut().send_text(conv, text, None, now)?;
        self.step_done().await?;
        Ok(id)
    }

    /// Sends a text message replying to `reply_to` (an earlier message of the conversation).
    pub async fn send_reply(&self, conv: &ChannelId, text: &str, reply_to: MessageId) -> Result<MessageId, ClientError> {
        let now = self.inner.platform.now_ms();
        let id = {
            let mut e = self.inner.engine.borrow_mut();
            if e.message_by_id(conv, &reply_to).is_none_or(|m| !m.is_content()) {
                return Err(ClientError::Engine(qpq_core::EngineError::NoSuchMessage));
            }
            e.send_text(conv, text, Some(reply_to), now)?
        };
        self.step_done().await?;
        Ok(id)
    }

    /// Marks a conversation read (sending read receipts for what others wrote).
    pub async fn mark_read(&self, conv: &ChannelId) -> Result<(), ClientError> {
        self.inner.engine.borrow_mut().mark_read(conv);
        // Read receipts only: they wait a moment, so that a reply goes first.
        self.persist().await?;
        self.kick_for_receipts();
        Ok(())
    }

    /// Adds or takes back a reaction to a message.
    pub async fn react(&self, conv: &ChannelId, target: MessageId, emoji: &str, remove: bool) -> Result<(), ClientError> {
        let now = self.inner.platform.now_ms();
        self.inner.engine.borrow_mut().react(conv, target, emoji, remove, now)?;
        self.step_done().await
    }

    /// Changes the text of one of this user's messages for everyone.
    pub async fn edit_message(&self, conv: &ChannelId, target: MessageId, text: &str) -> Result<(), ClientError> {
        let now = self.inner.platform.now_ms();
        self.inner.engine.borrow_mut().edit_message(conv, target, text, now)?;
        self.step_done().await
    }

    /// Deletes one of this user's messages for everyone.
    pub async fn delete_message(&self, conv: &ChannelId, target: MessageId) -> Result<(), ClientError> {
        let now = self.inner.platform.now_ms();
        self.inner.engine.borrow_mut().delete_message(conv, target, now)?;
        self.step_done().await
    }

    /// Tells the members this user started or stopped typing. Nothing is queued while
    /// offline: a stale "typing" is worse than none.
    pub async fn set_typing(&self, conv: &ChannelId, active: bool) -> Result<(), ClientError> {
        if self.session().is_err() {
            return Ok(());
        }
        let now = self.inner.platform.now_ms();
        self.inner.engine.borrow_mut().set_typing(conv, active, now)?;
        self.step_done().await
    }

    /// Sends a call signal to the conversation (inside MLS, like every message). Refused
    /// offline: a call signal that waited in the outbox would arrive too late to matter.
    pub async fn send_call_signal(&self, conv: &ChannelId, signal: qpq_core::call::CallSignal) -> Result<(), ClientError> {
        self.session()?;
        let now = self.inner.platform.now_ms();
        self.inner.engine.borrow_mut().send_call_signal(conv, signal, now)?;
        self.step_done().await
    }

    /// Logs an incoming call that rang out here unanswered as missed.
    pub async fn call_rang_out(&self, conv: &ChannelId, call: qpq_core::call::CallId) -> Result<(), ClientError> {
        self.inner.engine.borrow_mut().call_rang_out(conv, call);
        self.step_done().await
    }

    /// Makes `user` an admin of a conversation (`admin`) or a member only. Admins only.
    pub async fn set_admin(&self, conv: &ChannelId, user: &UserId, admin: bool) -> Result<(), ClientError> {
        self.inner.engine.borrow_mut().set_admin(conv, user, admin)?;
        self.step_done().await
    }

    /// Sets the conversation's disappearing-message timer (seconds, 0 for off).
    pub async fn set_disappearing(&self, conv: &ChannelId, secs: u32) -> Result<(), ClientError> {
        self.inner.engine.borrow_mut().set_disappearing(conv, secs)?;
        self.step_done().await
    }

    /// Leaves a conversation; the other members remove this user's devices.
    pub async fn leave_conversation(&self, conv: &ChannelId) -> Result<(), ClientError> {
        let now = self.inner.platform.now_ms();
        self.inner.engine.borrow_mut().leave_conversation(conv, qpq_core::LeaveReason::Left, now)?;
        self.step_done().await
    }

    /// Deletes the account on the server. First every conversation is told (members then
    /// see "… deleted their account" and remove its devices); that notice is sent if it
    /// can be within ten seconds. The caller then clears local storage.
    pub async fn delete_account(&self) -> Result<(), ClientError> {
        let session = self.session()?;
        let now = self.inner.platform.now_ms();
        {
            let mut e = self.inner.engine.borrow_mut();
            let active: Vec<ChannelId> = e.conversations().iter().filter(|c| c.active).map(|c| c.id.clone()).collect();
            for conv in active {
                // A conversation that cannot be told is still left; the deletion goes on.
                let _ = e.leave_conversation(&conv, qpq_core::LeaveReason::AccountDeleted, now);
            }
        }
        self.step_done().await?;
        self.wait_for(ACCOUNT_NOTICE_TIMEOUT_MS, |e| e.outbox_len() == 0).await;
        session.delete_account().await?;
        self.stop();
        Ok(())
    }

    /// This account's devices as the directory lists them, oldest first (their records are
    /// checked against the identity key first), with their names and last logins.
    pub async fn own_devices(&self) -> Result<Vec<OwnDevice>, ClientError> {
        let me = self.user();
        let (ik, listed) = self.session()?.list_own_devices(&me).await?;
        let records: Vec<qpq_proto::DeviceRecord> = listed.iter().map(|(r, _, _)| r.clone()).collect();
        self.inner.engine.borrow_mut().learn_devices(&me, &ik, &records, self.inner.platform.now_ms())?;
        self.step_done().await?;
        let secret = self.with_engine(|e| e.identity_secret());
        let mut devices: Vec<OwnDevice> = listed
            .into_iter()
            .map(|(record, label, last_login)| OwnDevice {
                name: crate::device_label::open(&secret, &record.device_id, &label),
                record,
                last_login,
            })
            .collect();
        devices.sort_by_key(|d| d.record.created_at);
        Ok(devices)
    }

    /// Names this device for the account's other devices (sent at each login).
    pub async fn set_device_name(&self, name: &str) -> Result<(), ClientError> {
        self.inner.engine.borrow_mut().set_device_name(name);
        self.step_done().await
    }

    /// Signs this device out: it is removed from the account (the node forgets it at once;
    /// the account's other devices take its leaves out of the conversations) and the client
    /// stops. The caller then wipes local storage. Refused for the account's only device,
    /// which would leave an account nobody can use.
    pub async fn sign_out(&self) -> Result<(), ClientError> {
        let me = self.with_engine(|e| e.device_id());
        let devices = self.own_devices().await?;
        if devices.iter().all(|d| d.record.device_id == me) {
            return Err(ClientError::Input(
                "this is the only device of your account: signing out would lose the account. Link another device \
                 first (Devices, then Link a device), or delete the account"
                    .into(),
            ));
        }
        self.session()?.revoke_device(&me).await?;
        self.shutdown().await;
        Ok(())
    }

    /// Removes another device from this account: the node forgets it (its sessions close, it
    /// cannot log in, its key packages are gone), then this device removes its leaves from
    /// every conversation, so it reads nothing sent after. Returns how many conversations it
    /// is being removed from. Once the node has forgotten the device the revocation stands:
    /// if the conversations cannot be changed now, a notice says so and the next login does it.
    pub async fn revoke_device(&self, device: &qpq_proto::DeviceId) -> Result<usize, ClientError> {
        if *device == self.with_engine(|e| e.device_id()) {
            return Err(ClientError::Input("this is the device you are using: remove it from another one".into()));
        }
        let session = self.session()?;
        session.revoke_device(device).await?;
        match self.sync_own_devices(&session).await {
            Ok(removed_from) => Ok(removed_from),
            Err(e) => {
                let why = format!(
                    "the device was removed from your account; taking it out of your conversations waits for the \
                     next connection ({e})"
                );
                self.emit(ClientEvent::Notice(why));
                Ok(0)
            }
        }
    }

    /// Brings every conversation in line with this account's device list in the directory:
    /// queues removing the leaves of devices it no longer holds (revoked), and adds devices
    /// it holds that a conversation lacks (newly linked), each with a key package of that
    /// device alone. Done after each login, so any of the account's devices acts on a change
    /// made elsewhere. A refusal while adding (a device without packages, a rate limit) leaves
    /// the rest for the next login. Returns in how many conversations a removal was queued.
    pub(super) async fn sync_own_devices(&self, session: &crate::api::Session) -> Result<usize, ClientError> {
        let me = self.user();
        let (ik, records) = session.list_devices(&me).await?;
        let (removed, missing) = {
            let mut e = self.inner.engine.borrow_mut();
            e.learn_devices(&me, &ik, &records, self.inner.platform.now_ms())?;
            (e.remove_revoked_own_devices(), e.own_devices_missing())
        };
        for (conv, devices) in missing {
            let packages = match claim_device_packages(session, &me, &devices).await {
                Ok(p) => p,
                Err(_) => break,
            };
            if packages.is_empty() {
                continue;
            }
            let queued = self.inner.engine.borrow_mut().add_members(&conv, packages);
            if let Err(e) = queued {
                self.emit(ClientEvent::Notice(format!("a device of yours could not join a conversation: {e}")));
            }
        }
        self.step_done().await?;
        Ok(removed.len())
    }

    /// The safety number with `peer`. Online, their directory records are fetched first, so a
    /// changed identity key shows (with its notice) before the number is compared; offline,
    /// the number for the key last seen.
    pub async fn safety_number(&self, peer: &UserId) -> Result<SafetyNumber, ClientError> {
        if let Ok(session) = self.session() {
            let (ik, records) = session.list_devices(peer).await?;
            let now = self.inner.platform.now_ms();
            self.inner.engine.borrow_mut().learn_devices(peer, &ik, &records, now)?;
            self.step_done().await?;
        }
        self.with_engine(|e| e.safety_number(peer)).ok_or_else(|| {
            ClientError::Input(format!("there is no safety number with {peer} yet; start a chat with them first"))
        })
    }

    /// Marks `peer` verified: the person compared `digits`, the number they were shown.
    pub async fn mark_verified(&self, peer: &UserId, digits: &str) -> Result<(), ClientError> {
        self.inner.engine.borrow_mut().mark_verified(peer, digits)?;
        self.step_done().await
    }

    /// Takes back the verification of `peer`.
    pub async fn clear_verified(&self, peer: &UserId) -> Result<(), ClientError> {
        self.inner.engine.borrow_mut().clear_verified(peer);
        self.step_done().await
    }

    /// Claims key packages for every device of `users`, after checking their device records.
    async fn claim_for(&self, session: &Session, users: &[UserId]) -> Result<Vec<ClaimedPackage>, ClientError> {
        let me = self.user();
        let mut out = Vec::new();
        for u in users {
            let (ik, records) = session.list_devices(u).await?;
            self.inner.engine.borrow_mut().learn_devices(u, &ik, &records, self.inner.platform.now_ms())?;
            if self.with_engine(|e| e.verification(u)) == Verification::ChangedSinceVerified {
                // Their key packages stay unclaimed until the person verifies the new number;
                // the notice of the change is stored now.
                self.step_done().await?;
                return Err(qpq_core::EngineError::SafetyNumberChanged { user: u.clone() }.into());
            }
            let claimed = session.claim_key_packages(u).await?;
            if claimed.is_empty() && *u != me {
                return Err(ClientError::Input(format!(
                    "{u} cannot be reached right now (no device has announced keys); try again later"
                )));
            }
            out.extend(claimed.into_iter().map(|c| ClaimedPackage { user: u.clone(), device: c.device, key_package: c.key_package }));
        }
        Ok(out)
    }
}

/// A device of this account, as its own devices see it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OwnDevice {
    /// Its record in the directory.
    pub record: qpq_proto::DeviceRecord,
    /// What it is called, when it said (and the label opened).
    pub name: Option<String>,
    /// When it last logged in (Unix ms, 0 before the first).
    pub last_login: u64,
}

/// One key package of each of `devices` of `user`, to add them with `add_members`; devices
/// without a package (none published yet) are missing, and any the node added unasked are
/// dropped.
pub(super) async fn claim_device_packages(
    session: &Session,
    user: &UserId,
    devices: &[qpq_proto::DeviceId],
) -> Result<Vec<ClaimedPackage>, ClientError> {
    let claimed = session.claim_key_packages_of(user, devices).await?;
    Ok(claimed
        .into_iter()
        .filter(|c| devices.contains(&c.device))
        .map(|c| ClaimedPackage { user: user.clone(), device: c.device, key_package: c.key_package })
        .collect())
}

fn dedup(mut v: Vec<UserId>) -> Vec<UserId> {
    v.sort();
    v.dedup();
    v
}
