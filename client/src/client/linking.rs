//! Linking a device, both sides of it (the code and the messages are in `crate::link`).
//!
//! The account's side: [`Client::open_link`] opens a slot and gives the code to show;
//! [`Client::serve_link`] waits for the new device's request, registers that device with a
//! record signed by the identity key (the node refuses a sixth), answers with the account's
//! identity key or with why not, and then adds the device to every conversation as soon as it
//! has published key packages. The new device's side is [`Client::link`]: it sends its
//! request, waits for the answer and, only once accepted, creates and stores its engine — a
//! wrong, expired or used code leaves nothing behind on either device.

use futures::FutureExt;
use qpq_core::Engine;
use qpq_proto::{DeviceId, ErrorCode, RemoteError};
use rand::RngCore;
use zeroize::Zeroizing;

use super::{seed, Client, ClientEvent};
use crate::api::Connection;
use crate::error::ClientError;
use crate::link::{LinkAnswer, LinkCode, LinkRequest, LINK_LIFETIME_MS};
use crate::{Connector, Platform, StateStore};

/// How often both sides look into the slot.
const POLL_MS: u64 = 1000;
/// How often the account's device tries to deliver its answer.
const ANSWER_ATTEMPTS: usize = 10;
/// How long the account's device keeps trying to add the new one to its conversations (it
/// needs the new device's key packages, published at its first login).
const JOIN_TIMEOUT_MS: u64 = 120_000;

/// What a person is told when the node has no slot for a code.
const NO_SUCH_LINK: &str = "this link code is wrong, has expired or was used already: on your other device choose \
                            Link a device for a new one, and type it here within ten minutes";

/// Where a hand-over is, for the UI.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LinkProgress {
    /// Waiting for the other device.
    Waiting,
    /// The new device asked and is being registered (its name).
    Registering(String),
    /// The recent history is being sent: bytes so far, of `total`.
    History {
        /// Bytes sent.
        done: u64,
        /// Bytes in all.
        total: u64,
    },
    /// (On the new device) the account device's settings for the shell to apply.
    Settings(String),
    /// The new device is registered and joins the conversations: `done` of `total`.
    Joining {
        /// Conversations it was added to (or is being added to).
        done: usize,
        /// Conversations in all.
        total: usize,
    },
}

/// A device linked by [`Client::serve_link`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LinkedDevice {
    /// Its id.
    pub device: DeviceId,
    /// The name it gave.
    pub name: String,
    /// Conversations it was added to.
    pub conversations: usize,
}

/// The node's `no_such_link` in words for this moment of the hand-over.
fn no_such_link(e: ClientError, words: &str) -> ClientError {
    match e.remote_code() {
        Some(ErrorCode::NoSuchLink) => {
            ClientError::Remote(RemoteError { code: Some(ErrorCode::NoSuchLink), message: words.into() })
        }
        _ => e,
    }
}

impl<S: StateStore, P: Platform> Client<S, P> {
    /// Opens a link slot on the node; returns the code to show and when it stops working (Unix
    /// ms). Serve it with [`Client::serve_link`].
    pub async fn open_link(&self) -> Result<(LinkCode, u64), ClientError> {
        let session = self.session()?;
        let code = LinkCode::generate();
        let expires_at = session.open_link(code.slot()).await?;
        Ok((code, expires_at))
    }

    /// Closes a code early (the person cancelled); a [`Client::serve_link`] waiting on it
    /// ends.
    pub async fn cancel_link(&self, code: &LinkCode) -> Result<(), ClientError> {
        self.session()?.close_link(code.slot()).await
    }

    /// Waits for a new device to use `code`, registers it, hands it the account and adds it
    /// to every conversation. Connection losses are waited out; the code's expiry (or
    /// [`Client::cancel_link`]) ends the wait with an error.
    /// `settings` is what the shell wants the new device's shell to have (opaque here, at
    /// most [`crate::link::MAX_SETTINGS`] bytes; empty for none).
    pub async fn serve_link(
        &self,
        code: &LinkCode,
        settings: &str,
        progress: impl Fn(LinkProgress),
    ) -> Result<LinkedDevice, ClientError> {
        progress(LinkProgress::Waiting);
        let expired = "the link code expired before another device used it: choose Link a device for a new one";
        let sealed = loop {
            match self.session() {
                Ok(s) => match s.link_request(code.slot()).await {
                    Ok(Some(r)) => break r,
                    Ok(None) => {}
                    Err(e) if e.is_transport() || e.retry_after_ms().is_some() => {}
                    Err(e) => return Err(no_such_link(e, expired)),
                },
                Err(_) if self.inner.stopped.get() => return Err(ClientError::Cancelled("the app stopped".into())),
                Err(_) => {}
            }
            self.inner.platform.sleep(POLL_MS).await;
        };
        let session = self.session()?;
        // A request that does not open was not made with this code: only the node could have
        // put it there. Nothing is registered; the slot stays until it expires.
        let request = code.open_request(&sealed)?;
        progress(LinkProgress::Registering(request.name.clone()));
        let created_at = self.inner.platform.now_ms();
        let record = self.with_engine(|e| e.sign_device_record(request.device_id, request.device_key, created_at));
        if let Err(e) = session.add_device(&record).await {
            let why = match e.remote_code() {
                Some(ErrorCode::TooManyDevices) => "your account already has five devices, the most it can have: remove \
                                                    one you no longer use (Devices, then Remove device) and link again"
                    .to_string(),
                _ => format!("your other device could not register this one: {e}"),
            };
            // The new device is told why; if even that fails, its wait ends with the code.
            let _ = session.answer_link(code.slot(), &code.seal_answer(&LinkAnswer::Refused(why.clone()))).await;
            return Err(match e.remote_code() {
                Some(ErrorCode::TooManyDevices) => ClientError::Remote(RemoteError { code: e.remote_code(), message: why }),
                _ => e,
            });
        }
        // The history goes first, so the answer can say where it is; linking goes on without
        // it if it cannot be sent.
        let history = match self.upload_history(&session, &|done, total| progress(LinkProgress::History { done, total })).await {
            Ok(h) => h,
            Err(e) => {
                self.emit(ClientEvent::Notice(format!("your history could not be sent to the new device: {e}")));
                None
            }
        };
        let answer = LinkAnswer::Accepted {
            user: self.user(),
            identity_secret: self.with_engine(Engine::identity_secret),
            created_at,
            history,
            settings: settings.to_string(),
        };
        self.send_answer(code, &code.seal_answer(&answer), request.device_id).await?;
        let conversations = self.join_linked_device(request.device_id, &progress).await;
        Ok(LinkedDevice { device: request.device_id, name: request.name, conversations })
    }

    /// Answers with `sealed`, trying again over a new connection when one is lost. If it
    /// cannot be answered the device registered for it is removed again, so the account is
    /// as it was.
    async fn send_answer(&self, code: &LinkCode, sealed: &[u8], device: DeviceId) -> Result<(), ClientError> {
        let mut last = None;
        for _ in 0..ANSWER_ATTEMPTS {
            match self.session() {
                Ok(s) => match s.answer_link(code.slot(), sealed).await {
                    Ok(()) => return Ok(()),
                    Err(e) if e.is_transport() || e.retry_after_ms().is_some() => last = Some(e),
                    Err(e) => {
                        last = Some(e);
                        break;
                    }
                },
                Err(e) => last = Some(e),
            }
            self.inner.platform.sleep(POLL_MS).await;
        }
        if let Ok(s) = self.session() {
            let _ = s.revoke_device(&device).await;
        }
        Err(last.unwrap_or_else(|| ClientError::Disconnected("the new device could not be answered".into())))
    }

    /// Adds a just-registered device of this account to every conversation, as soon as it has
    /// published key packages; returns to how many it was added. What is left when the wait
    /// ends is done at a later login of any of the account's devices.
    async fn join_linked_device(&self, device: DeviceId, progress: &impl Fn(LinkProgress)) -> usize {
        let deadline = self.inner.platform.now_ms() + JOIN_TIMEOUT_MS;
        let total = self.with_engine(|e| e.conversations().iter().filter(|c| c.active).count());
        loop {
            let missing = |e: &Engine| {
                e.own_devices_missing().iter().filter(|(_, devices)| devices.contains(&device)).count()
            };
            if let Ok(session) = self.session() {
                if let Err(e) = self.sync_own_devices(&session).await {
                    if !e.is_transport() {
                        self.emit(ClientEvent::Notice(format!("your new device could not join every conversation yet: {e}")));
                    }
                }
            }
            let left = self.with_engine(missing);
            let done = total.saturating_sub(left);
            progress(LinkProgress::Joining { done, total });
            if left == 0 || self.inner.platform.now_ms() >= deadline || self.inner.stopped.get() {
                return done;
            }
            self.inner.platform.sleep(POLL_MS).await;
        }
    }

    /// Makes this browser (or program) a new device of the account whose device showed `code`:
    /// sends the request, waits up to the code's lifetime for the answer, and only then
    /// creates and stores the engine. `name` says what device this is ("Chromium on Linux").
    pub async fn link(
        connector: &dyn Connector,
        store: S,
        platform: P,
        code: &str,
        name: &str,
        progress: impl Fn(LinkProgress),
    ) -> Result<Self, ClientError> {
        let code = LinkCode::parse(code)?;
        let mut device_secret = Zeroizing::new([0u8; 32]);
        rand::rngs::OsRng.fill_bytes(device_secret.as_mut());
        let mut id = [0u8; 16];
        rand::rngs::OsRng.fill_bytes(&mut id);
        let device_id = DeviceId(id);
        let device_key = qpq_core::ed25519_public_key(&device_secret);
        let request = LinkRequest { device_id, device_key, name: name.to_string() };

        // A lost connection is waited out (a new one continues where the last stopped): once
        // the request is in, the account's device may already have registered this one.
        let deadline = platform.now_ms() + LINK_LIFETIME_MS;
        let expired = "the link code expired before your other device answered: make a new one there";
        let (mut requested, mut tried) = (false, false);
        let answer = loop {
            let attempt = async {
                let (r, w) = connector.connect().await.map_err(ClientError::Disconnected)?;
                let (conn, driver) = Connection::new(r, w);
                platform.spawn(driver.boxed_local());
                let got = async {
                    let (domain, _) = conn.hello(concat!("qpq-client/", env!("CARGO_PKG_VERSION"))).await?;
                    if !requested {
                        let again = tried;
                        tried = true;
                        match conn.put_link_request(code.slot(), &code.seal_request(&request)).await {
                            Ok(()) => {}
                            // The request of an attempt whose reply was lost is in the slot.
                            Err(e) if again && e.remote_code() == Some(ErrorCode::NoSuchLink) => {}
                            Err(e) => return Err(no_such_link(e, NO_SUCH_LINK)),
                        }
                        requested = true;
                        progress(LinkProgress::Waiting);
                    }
                    loop {
                        if let Some(a) = conn.take_link_answer(code.slot()).await.map_err(|e| no_such_link(e, expired))? {
                            return Ok::<_, ClientError>((domain, a));
                        }
                        if platform.now_ms() >= deadline {
                            return Err(ClientError::Input(expired.into()));
                        }
                        platform.sleep(POLL_MS).await;
                    }
                }
                .await;
                conn.close().await;
                got
            };
            match attempt.await {
                Err(e) if (e.is_transport() || e.retry_after_ms().is_some()) && platform.now_ms() < deadline => {
                    platform.sleep(e.retry_after_ms().unwrap_or(POLL_MS)).await;
                }
                Err(e) => break Err(e),
                Ok((domain, sealed)) => break code.open_answer(&sealed).map(|a| (domain, a)),
            }
        };
        let (domain, answer) = answer?;
        let (user, identity_secret, created_at, history, settings) = match answer {
            LinkAnswer::Accepted { user, identity_secret, created_at, history, settings } => {
                (user, identity_secret, created_at, history, settings)
            }
            LinkAnswer::Refused(why) => return Err(ClientError::Input(why)),
        };
        if user.domain() != domain {
            return Err(ClientError::Input(format!("the other device's account is on {}, not on this server", user.domain())));
        }
        let mut engine = Engine::create_linked(user, &identity_secret, device_id, &device_secret, created_at, seed());
        engine.set_device_name(name);
        // Fetched once this device is in the conversation that holds it (see `handover`).
        engine.set_pending_handover(history.map(|h| h.to_bytes().to_vec()));
        let client = Self::from_engine(engine, store, platform);
        client.persist().await?;
        if !settings.is_empty() {
            progress(LinkProgress::Settings(settings));
        }
        Ok(client)
    }
}
