//! Backup and restore, both sides (the file format is `crate::backup`), and what the other
//! members of a restored account's conversations do about it.
//!
//! [`Client::backup`] seals everything the engine exports under a passphrase.
//! [`Client::restore`] opens such a file in a fresh browser or program, makes a new device of
//! the account and has the node register it in place of every other device of the account
//! (signed by the identity key from the file, bound to the node's single-use nonce). The node
//! tells the other members of the account's conversations; their clients
//! ([`Client::repair_loop`]) read the directory, and where none of that member's listed devices
//! has a leaf any more they add the new device and remove the old leaves in one commit. The
//! new device's history goes in as each Welcome brings a conversation back.

use std::collections::BTreeMap;

use futures::FutureExt;
use qpq_core::{AccountBackup, Engine};
use qpq_proto::{DeviceId, ErrorCode, RemoteError, UserId};
use rand::RngCore;
use zeroize::Zeroizing;

use super::{seed, Client, ClientEvent};
use crate::api::Connection;
use crate::backup::{Opening, Sealing};
use crate::error::ClientError;
use crate::{Connector, Platform, StateStore};

/// Chunks sealed or opened between two pauses that let the page draw its progress bar.
const CHUNKS_PER_PAUSE: u32 = 4;
/// How often a member retries adding a restored device that has no key packages yet.
const REPAIR_RETRY_MS: u64 = 2_000;
/// How long the loop sleeps when nothing wakes it.
const REPAIR_IDLE_MS: u64 = 60_000;
/// How long a member keeps retrying in one session (the rest waits for the next login).
const REPAIR_WINDOW_MS: u64 = 10 * 60 * 1000;

/// Where a backup or a restore is, for the UI.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BackupProgress {
    /// The passphrase is being stretched (Argon2id).
    Deriving,
    /// Chunks sealed or opened so far, of `total`.
    Chunks {
        /// Done.
        done: u32,
        /// In all.
        total: u32,
    },
    /// (Restore) the new device is being registered with the server.
    Registering,
}

/// A restored account, ready to `start`.
pub struct Restored<S: StateStore, P: Platform> {
    /// The client of the new device.
    pub client: Client<S, P>,
    /// The settings the backed-up page passed to [`Client::backup`].
    pub settings: String,
    /// Conversations whose history waits for them to come back.
    pub conversations: usize,
    /// History entries in the backup.
    pub messages: usize,
}

fn input(e: crate::backup::BackupError) -> ClientError {
    ClientError::Input(e.to_string())
}

impl<S: StateStore, P: Platform> Client<S, P> {
    /// Everything this device holds of the account — identity, the people it knows, every
    /// conversation's history, and `settings` (the shell's, opaque here) — sealed under
    /// `passphrase` (at least 8 characters) as one file's bytes.
    pub async fn backup(
        &self,
        passphrase: &str,
        settings: &str,
        progress: impl Fn(BackupProgress),
    ) -> Result<Vec<u8>, ClientError> {
        let now = self.inner.platform.now_ms();
        let contents = self.with_engine(|e| e.export_account(settings, now));
        progress(BackupProgress::Deriving);
        self.inner.platform.sleep(0).await;
        let mut sealing = Sealing::new(&contents, passphrase).map_err(input)?;
        drop(contents);
        loop {
            let (done, total) = sealing.step();
            if done % CHUNKS_PER_PAUSE == 0 || done == total {
                progress(BackupProgress::Chunks { done, total });
                self.inner.platform.sleep(0).await;
            }
            if done == total {
                return Ok(sealing.finish());
            }
        }
    }

    /// Makes this browser (or program) a new device of the account in the backup `file`,
    /// opened with `passphrase`, in place of every other device of the account: they are
    /// signed out, and the other members of its conversations add this one. Nothing is
    /// stored unless the server registered it. `name` says what device this is.
    pub async fn restore(
        connector: &dyn Connector,
        store: S,
        platform: P,
        file: &[u8],
        passphrase: &str,
        name: &str,
        progress: impl Fn(BackupProgress),
    ) -> Result<Restored<S, P>, ClientError> {
        progress(BackupProgress::Deriving);
        platform.sleep(0).await;
        let mut opening = Opening::new(file, passphrase).map_err(input)?;
        loop {
            let (done, total) = opening.step().map_err(input)?;
            if done % CHUNKS_PER_PAUSE == 0 || done == total {
                progress(BackupProgress::Chunks { done, total });
                platform.sleep(0).await;
            }
            if done == total {
                break;
            }
        }
        let contents = opening.finish().map_err(input)?;
        let backup = AccountBackup::decode(&contents)
            .map_err(|_| ClientError::Input("this backup opened, but what it holds cannot be read by this version".into()))?;
        drop(contents);

        progress(BackupProgress::Registering);
        let mut device_secret = Zeroizing::new([0u8; 32]);
        rand::rngs::OsRng.fill_bytes(device_secret.as_mut());
        let mut id = [0u8; 16];
        rand::rngs::OsRng.fill_bytes(&mut id);
        let mut engine = Engine::restore(&backup, DeviceId(id), &device_secret, platform.now_ms(), seed());
        engine.set_device_name(name);

        let (r, w) = connector.connect().await.map_err(ClientError::Disconnected)?;
        let (conn, driver) = Connection::new(r, w);
        platform.spawn(driver.boxed_local());
        let registered = Self::register_restored(&conn, &engine).await;
        conn.close().await;
        registered?;

        let (settings, conversations, messages) =
            (backup.settings().to_string(), backup.conversations(), backup.messages());
        let client = Self::from_engine(engine, store, platform);
        client.persist().await?;
        Ok(Restored { client, settings, conversations, messages })
    }

    async fn register_restored(conn: &Connection, engine: &Engine) -> Result<(), ClientError> {
        let (domain, _) = conn.hello(concat!("qpq-client/", env!("CARGO_PKG_VERSION"))).await?;
        let user = engine.user().clone();
        if user.domain() != domain {
            return Err(ClientError::Input(format!("this backup is of an account on {}, not on this server", user.domain())));
        }
        let nonce = conn.challenge(&user, &engine.device_id()).await?;
        let (record, sig) = engine.sign_restore(&nonce);
        conn.restore_device(&record, &nonce, &sig).await.map_err(|e| {
            let words = match e.remote_code() {
                Some(ErrorCode::NoSuchUser) => format!("{user} no longer exists on this server: the account was deleted"),
                Some(ErrorCode::LoginFailed | ErrorCode::BadSignature) => {
                    format!("the server does not recognise this backup's keys for {user}: it belongs to an older account of that name")
                }
                _ => return e,
            };
            ClientError::Remote(RemoteError { code: e.remote_code(), message: words })
        })
    }

    /// Acts on the node's word that members' devices changed (see the module documentation),
    /// for as long as the client runs.
    pub(super) async fn repair_loop(self) {
        // When each user's hint was first tried in this session.
        let mut since: BTreeMap<UserId, u64> = BTreeMap::new();
        loop {
            if self.inner.stopped.get() {
                return;
            }
            let now = self.inner.platform.now_ms();
            let users: Vec<UserId> = self
                .with_engine(Engine::devices_changed)
                .into_iter()
                .filter(|u| now.saturating_sub(*since.entry(u.clone()).or_insert(now)) < REPAIR_WINDOW_MS)
                .collect();
            if users.is_empty() {
                // Nothing (more) to try in this session: woken by the next stored step or
                // connection change, not by polling.
                let change = self.next_change();
                let idle = self.inner.platform.sleep(REPAIR_IDLE_MS);
                futures::pin_mut!(idle);
                let _ = futures::future::select(change, idle).await;
                continue;
            }
            if self.session().is_err() {
                self.inner.platform.sleep(REPAIR_RETRY_MS).await;
                continue;
            }
            let mut waiting = false;
            for user in users {
                match self.repair_member(&user).await {
                    Ok(true) => {
                        since.remove(&user);
                    }
                    Ok(false) => waiting = true,
                    Err(e) if e.is_transport() => waiting = true,
                    Err(e) => {
                        // Told once; the hint is dropped (the directory's answer will not change
                        // by asking again).
                        self.emit(ClientEvent::Notice(format!("could not bring {user}'s new device into your conversations: {e}")));
                        self.inner.engine.borrow_mut().devices_checked(&user);
                        let _ = self.step_done().await;
                        since.remove(&user);
                    }
                }
            }
            if waiting {
                self.inner.platform.sleep(REPAIR_RETRY_MS).await;
            }
        }
    }

    /// Reads `user`'s records and queues adding their new devices where they have none left;
    /// `Ok(true)` when nothing is left to do for them, `Ok(false)` while their new device has
    /// published no key packages yet.
    async fn repair_member(&self, user: &UserId) -> Result<bool, ClientError> {
        let session = self.session()?;
        let before = self.with_engine(|e| e.identity_key_of(user).map(<[u8]>::to_vec));
        let (ik, records) = session.list_devices(user).await?;
        self.inner.engine.borrow_mut().learn_devices(user, &ik, &records, self.inner.platform.now_ms())?;
        if before.as_deref() != Some(ik.as_slice()) {
            // Not the account we knew (or one we never knew): its devices are not let in
            // this way. A changed key shows its own notice and safety number.
            self.inner.engine.borrow_mut().devices_checked(user);
            self.step_done().await?;
            return Ok(true);
        }
        let mut left = false;
        for (conv, devices, stale) in self.with_engine(|e| e.replaced_devices(user)) {
            let packages = super::actions::claim_device_packages(&session, user, &devices).await?;
            if packages.is_empty() {
                left = true;
                continue;
            }
            self.inner.engine.borrow_mut().replace_devices(&conv, packages, stale)?;
        }
        if !left {
            self.inner.engine.borrow_mut().devices_checked(user);
        }
        self.step_done().await?;
        Ok(!left)
    }
}
