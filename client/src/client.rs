//! The client: one device's engine, its storage and its connection, kept moving.

use std::cell::{Cell, RefCell};
use std::rc::{Rc, Weak};

use capnp::capability::Rc as CapRc;
use futures::channel::{mpsc, oneshot};
use futures::future::{self, Either, FutureExt};
use futures::StreamExt;
use qpq_core::{Changeset, ClaimedPackage, ConversationKind, Engine, Event, MessageId};
use qpq_proto::node_capnp::{listener, subscription};
use qpq_proto::{wire, ChannelId, EnvelopeKind, ErrorCode, UserId};
use rand::RngCore;

use crate::api::{Connection, Session};
use crate::error::ClientError;
use crate::{Connector, Platform, StateStore};

/// Keep at least this many one-time key packages on the server.
const KEY_PACKAGES_LOW: u32 = 10;
/// Top up to this many.
const KEY_PACKAGES_TARGET: u32 = 30;
/// First and longest reconnect delay.
const BACKOFF_MIN_MS: u64 = 500;
const BACKOFF_MAX_MS: u64 = 30_000;
/// How often an idle connection is checked.
const HEARTBEAT_MS: u64 = 20_000;
/// How long a check may take before the connection is considered dead.
const HEARTBEAT_TIMEOUT_MS: u64 = 10_000;
/// How often expired messages are looked for.
const EXPIRY_TICK_MS: u64 = 500;
/// How long deleting an account waits for the notices to its conversations to be sent.
const ACCOUNT_NOTICE_TIMEOUT_MS: u64 = 10_000;

/// The connection as the UI shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConnState {
    /// Trying to connect.
    Connecting,
    /// Connected and logged in over the named transport.
    Online {
        /// "QUIC", "WebSocket", "WebTransport"…
        transport: String,
    },
    /// Not connected; will retry after `retry_in_ms`.
    Offline {
        /// Why, in words for people.
        reason: String,
        /// When the next attempt starts.
        retry_in_ms: u64,
    },
}

/// What the client tells its UI.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClientEvent {
    /// The engine's state changed.
    Engine(Event),
    /// The connection changed.
    Connection(ConnState),
    /// Something a person should know (a failed background step), in words.
    Notice(String),
}

type Listener = Box<dyn Fn(&ClientEvent)>;

struct Inner<S: StateStore, P: Platform> {
    engine: RefCell<Engine>,
    store: S,
    platform: P,
    persist_lock: futures::lock::Mutex<()>,
    /// Changes a failed write left behind; written before anything newer.
    unsaved: RefCell<Option<Changeset>>,
    session: RefCell<Option<Session>>,
    connection: RefCell<Option<Connection>>,
    subscription: RefCell<Option<subscription::Client>>,
    state: RefCell<ConnState>,
    listeners: RefCell<Vec<Listener>>,
    waiters: RefCell<Vec<oneshot::Sender<()>>>,
    kick: mpsc::UnboundedSender<()>,
    kicks: RefCell<Option<mpsc::UnboundedReceiver<()>>>,
    stopped: Cell<bool>,
    stop_signal: RefCell<Option<oneshot::Sender<()>>>,
}

/// One device's client. Cheap to clone (a handle).
pub struct Client<S: StateStore, P: Platform> {
    inner: Rc<Inner<S, P>>,
}

impl<S: StateStore, P: Platform> Clone for Client<S, P> {
    fn clone(&self) -> Self {
        Client { inner: self.inner.clone() }
    }
}

fn seed() -> [u8; 32] {
    let mut s = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut s);
    s
}

impl<S: StateStore, P: Platform> Client<S, P> {
    fn from_engine(engine: Engine, store: S, platform: P) -> Self {
        let (kick, kicks) = mpsc::unbounded();
        Client {
            inner: Rc::new(Inner {
                engine: RefCell::new(engine),
                store,
                platform,
                persist_lock: futures::lock::Mutex::new(()),
                unsaved: RefCell::new(None),
                session: RefCell::new(None),
                connection: RefCell::new(None),
                subscription: RefCell::new(None),
                state: RefCell::new(ConnState::Offline { reason: "not started".into(), retry_in_ms: 0 }),
                listeners: RefCell::new(Vec::new()),
                waiters: RefCell::new(Vec::new()),
                kick,
                kicks: RefCell::new(Some(kicks)),
                stopped: Cell::new(false),
                stop_signal: RefCell::new(None),
            }),
        }
    }

    /// Creates an account: a new identity and first device, registered with the server before
    /// anything is stored (so a taken name leaves nothing behind). `name` is `name` or
    /// `name@domain`; the domain must be the server's.
    pub async fn register(
        connector: &dyn Connector,
        store: S,
        platform: P,
        name: impl AsRef<str>,
    ) -> Result<Self, ClientError> {
        let (r, w) = connector.connect().await.map_err(ClientError::Disconnected)?;
        let (conn, driver) = Connection::new(r, w);
        platform.spawn(driver.boxed_local());
        let (domain, _) = conn.hello(concat!("qpq-client/", env!("CARGO_PKG_VERSION"))).await?;
        let user = resolve_user(name.as_ref(), &domain)?;
        if user.domain() != domain {
            return Err(ClientError::Input(format!(
                "this server is {domain}: choose a name ending in @{domain}, or just the name"
            )));
        }
        let engine = Engine::create(user, seed(), platform.now_ms());
        let registered = conn.register_identity(&engine.identity_public_key(), engine.device_record()).await;
        conn.close().await;
        registered?;
        let client = Self::from_engine(engine, store, platform);
        client.persist().await?;
        Ok(client)
    }

    /// Opens the account stored in `store`, or `None` when there is none.
    pub async fn open(store: S, platform: P) -> Result<Option<Self>, ClientError> {
        let entries = store.load().await.map_err(ClientError::Store)?;
        if entries.is_empty() {
            return Ok(None);
        }
        let engine = Engine::load(entries, seed())?;
        Ok(Some(Self::from_engine(engine, store, platform)))
    }

    /// Starts connecting (and reconnecting) in the background, and the outbox.
    pub fn start(&self, connector: Rc<dyn Connector>) {
        let Some(kicks) = self.inner.kicks.borrow_mut().take() else { return };
        let (stop_tx, stop_rx) = oneshot::channel();
        *self.inner.stop_signal.borrow_mut() = Some(stop_tx);
        let me = self.clone();
        self.inner.platform.spawn(async move { me.connection_loop(connector, stop_rx).await }.boxed_local());
        let me = self.clone();
        self.inner.platform.spawn(async move { me.pump_loop(kicks).await }.boxed_local());
        let me = self.clone();
        self.inner.platform.spawn(async move { me.expiry_loop().await }.boxed_local());
        self.kick();
    }

    /// Stops reconnecting and closes the session (in the background; see
    /// [`Client::shutdown`] to wait for it).
    pub fn stop(&self) {
        let me = self.clone();
        self.inner.platform.spawn(async move { me.shutdown().await }.boxed_local());
    }

    /// Stops reconnecting, closes the connection and waits until it is closed and no write
    /// to the state store is in flight; afterwards another instance may open the same store.
    pub async fn shutdown(&self) {
        self.inner.stopped.set(true);
        if let Some(s) = self.inner.stop_signal.borrow_mut().take() {
            let _ = s.send(());
        }
        self.inner.session.borrow_mut().take();
        self.inner.subscription.borrow_mut().take();
        let _ = self.inner.kick.unbounded_send(());
        let conn = self.inner.connection.borrow_mut().take();
        if let Some(conn) = conn {
            conn.close().await;
        }
        // Wait for a write in progress to finish.
        drop(self.inner.persist_lock.lock().await);
    }

    /// Calls `f` for every event from now on.
    pub fn on_event(&self, f: impl Fn(&ClientEvent) + 'static) {
        self.inner.listeners.borrow_mut().push(Box::new(f));
    }

    /// Reads the engine's state.
    pub fn with_engine<R>(&self, f: impl FnOnce(&Engine) -> R) -> R {
        f(&self.inner.engine.borrow())
    }

    /// The state store (e.g. to clear it after the account was deleted).
    pub fn store(&self) -> &S {
        &self.inner.store
    }

    /// This device's user.
    pub fn user(&self) -> UserId {
        self.inner.engine.borrow().user().clone()
    }

    /// Reads a person's input as a user: `name@domain`, or just `name` on this user's domain.
    pub fn resolve_user(&self, input: &str) -> Result<UserId, ClientError> {
        let me = self.user();
        resolve_user(input, me.domain())
    }

    /// The connection state.
    pub fn connection_state(&self) -> ConnState {
        self.inner.state.borrow().clone()
    }

    /// The engine, for a step of this crate's own (callers then run `step_done`).
    pub(crate) fn engine_mut(&self) -> std::cell::RefMut<'_, Engine> {
        self.inner.engine.borrow_mut()
    }

    /// The platform's clock and timers.
    pub(crate) fn platform(&self) -> &P {
        &self.inner.platform
    }

    /// The live session, if connected.
    pub fn session(&self) -> Result<Session, ClientError> {
        self.inner
            .session
            .borrow()
            .clone()
            .ok_or_else(|| ClientError::Disconnected("you are offline; try again when connected".into()))
    }

    // --- operations a person starts -------------------------------------------------------

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
        self.step_done().await
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

    /// Removes messages whose disappearing timer ran out; returns how many.
    pub async fn expire(&self) -> Result<usize, ClientError> {
        let now = self.inner.platform.now_ms();
        let n = self.inner.engine.borrow_mut().expire(now);
        if n > 0 {
            self.persist().await?;
        }
        Ok(n)
    }

    /// Waits until `pred` holds for the engine, or `timeout_ms` passes (returns false).
    pub async fn wait_for(&self, timeout_ms: u64, mut pred: impl FnMut(&Engine) -> bool) -> bool {
        let deadline = self.inner.platform.now_ms() + timeout_ms;
        loop {
            if pred(&self.inner.engine.borrow()) {
                return true;
            }
            let now = self.inner.platform.now_ms();
            if now >= deadline {
                return false;
            }
            let (tx, rx) = oneshot::channel();
            self.inner.waiters.borrow_mut().push(tx);
            let sleep = self.inner.platform.sleep((deadline - now).min(250));
            futures::pin_mut!(sleep);
            let _ = future::select(rx, sleep).await;
        }
    }

    // --- internals --------------------------------------------------------------------------

    /// Claims key packages for every device of `users`, after checking their device records.
    async fn claim_for(&self, session: &Session, users: &[UserId]) -> Result<Vec<ClaimedPackage>, ClientError> {
        let me = self.user();
        let mut out = Vec::new();
        for u in users {
            let (ik, records) = session.list_devices(u).await?;
            self.inner.engine.borrow_mut().learn_devices(u, &ik, &records)?;
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

    /// After a step a person started: store it, tell the UI, move the outbox.
    pub(crate) async fn step_done(&self) -> Result<(), ClientError> {
        self.persist().await?;
        self.kick();
        Ok(())
    }

    fn kick(&self) {
        let _ = self.inner.kick.unbounded_send(());
    }

    /// Stores everything the engine changed, then tells the UI. Nothing the changes imply
    /// may be sent before this returns.
    pub(crate) async fn persist(&self) -> Result<(), ClientError> {
        let _guard = self.inner.persist_lock.lock().await;
        let fresh = self.inner.engine.borrow_mut().take_changes();
        let changes = match self.inner.unsaved.borrow_mut().take() {
            Some(old) => merge(old, fresh),
            None => fresh,
        };
        if !changes.is_empty() {
            if let Err(e) = self.inner.store.apply(changes.clone()).await {
                *self.inner.unsaved.borrow_mut() = Some(changes);
                self.emit(ClientEvent::Notice(format!("could not save on this device: {e}")));
                return Err(ClientError::Store(e));
            }
        }
        let events = self.inner.engine.borrow_mut().drain_events();
        for ev in events {
            self.emit(ClientEvent::Engine(ev));
        }
        for w in self.inner.waiters.borrow_mut().drain(..) {
            let _ = w.send(());
        }
        Ok(())
    }

    fn emit(&self, ev: ClientEvent) {
        for l in self.inner.listeners.borrow().iter() {
            l(&ev);
        }
    }

    fn set_state(&self, s: ConnState) {
        if *self.inner.state.borrow() == s {
            return;
        }
        *self.inner.state.borrow_mut() = s.clone();
        self.emit(ClientEvent::Connection(s));
        for w in self.inner.waiters.borrow_mut().drain(..) {
            let _ = w.send(());
        }
    }

    async fn connection_loop(self, connector: Rc<dyn Connector>, stop: oneshot::Receiver<()>) {
        let mut stop = stop.shared();
        let mut backoff = BACKOFF_MIN_MS;
        while !self.inner.stopped.get() {
            self.set_state(ConnState::Connecting);
            let attempt = self.connect_once(&*connector).boxed_local();
            let conn = match future::select(attempt, stop.clone()).await {
                Either::Left((r, _)) => r,
                Either::Right(_) => return,
            };
            match conn {
                Ok(conn) => {
                    backoff = BACKOFF_MIN_MS;
                    self.set_state(ConnState::Online { transport: connector.transport_name() });
                    self.kick();
                    let closed = future::select(conn.closed().boxed_local(), self.heartbeat().boxed_local());
                    if let Either::Right(_) = future::select(closed, stop.clone()).await {
                        return;
                    }
                    self.inner.session.borrow_mut().take();
                    self.inner.subscription.borrow_mut().take();
                    // The heartbeat may have given up on a connection that is still open.
                    let stale = self.inner.connection.borrow_mut().take();
                    if let Some(c) = stale {
                        c.close().await;
                    }
                }
                Err(e) => {
                    self.inner.session.borrow_mut().take();
                    self.inner.subscription.borrow_mut().take();
                    self.set_state(ConnState::Offline { reason: e.to_string(), retry_in_ms: backoff });
                }
            }
            if self.inner.stopped.get() {
                return;
            }
            if !matches!(*self.inner.state.borrow(), ConnState::Offline { .. }) {
                self.set_state(ConnState::Offline { reason: "the connection was lost".into(), retry_in_ms: backoff });
            }
            // Jitter so many clients do not reconnect in lockstep.
            let jitter = rand::rngs::OsRng.next_u64() % (backoff / 4 + 1);
            let sleep = self.inner.platform.sleep(backoff + jitter);
            if let Either::Right(_) = future::select(sleep, stop.clone()).await {
                return;
            }
            backoff = (backoff * 2).min(BACKOFF_MAX_MS);
            let _ = &mut stop;
        }
    }

    /// Returns when the server stops answering: a small call every [`HEARTBEAT_MS`], which
    /// also keeps idle connections (and the gateway's idle timer) alive.
    async fn heartbeat(&self) {
        loop {
            self.inner.platform.sleep(HEARTBEAT_MS).await;
            let Ok(session) = self.session() else { return };
            let call = async move { session.whoami().await }.boxed_local();
            let timeout = self.inner.platform.sleep(HEARTBEAT_TIMEOUT_MS);
            match future::select(call, timeout).await {
                Either::Left((Ok(()), _)) => {}
                _ => return,
            }
        }
    }

    async fn connect_once(&self, connector: &dyn Connector) -> Result<Connection, ClientError> {
        let (r, w) = connector.connect().await.map_err(ClientError::Disconnected)?;
        let (conn, driver) = Connection::new(r, w);
        self.inner.platform.spawn(driver.boxed_local());
        match self.log_in(&conn).await {
            Ok(()) => {
                *self.inner.connection.borrow_mut() = Some(conn.clone());
                Ok(conn)
            }
            Err(e) => {
                conn.close().await;
                Err(e)
            }
        }
    }

    /// Version handshake, login, key packages, subscription.
    async fn log_in(&self, conn: &Connection) -> Result<(), ClientError> {
        let (domain, _) = conn.hello(concat!("qpq-client/", env!("CARGO_PKG_VERSION"))).await?;
        let (user, device) = self.with_engine(|e| (e.user().clone(), e.device_id()));
        let nonce = conn.challenge(&user, &device).await?;
        let sig = self.with_engine(|e| e.sign_login(&domain, &nonce));
        let session = conn.login(&user, &device, &nonce, &sig).await?;
        self.top_up_key_packages(&session).await?;
        let listener: listener::Client = capnp_rpc::new_client(ListenerImpl { client: Rc::downgrade(&self.inner) });
        let cursor = self.with_engine(Engine::cursor);
        let handle = session.subscribe(listener, cursor).await?;
        *self.inner.subscription.borrow_mut() = Some(handle);
        // Deliveries held since the last session, waiting for the directory.
        self.answer_directory(&session).await;
        *self.inner.session.borrow_mut() = Some(session);
        self.persist().await?;
        Ok(())
    }

    /// Fetches the directory records the engine waits for (deliveries naming members it has
    /// not verified yet), hands them over and lets the engine go on with what it held. A user
    /// the directory does not know is reported as such; any other failure leaves the
    /// deliveries held (they are stored) for the next delivery or session. Refusals are told
    /// to the UI.
    async fn answer_directory(&self, session: &Session) {
        for _ in 0..8 {
            let needed = self.with_engine(Engine::directory_needed);
            if needed.is_empty() {
                return;
            }
            for user in &needed {
                match session.list_devices(user).await {
                    Ok((ik, records)) => {
                        let learned = self.inner.engine.borrow_mut().learn_devices(user, &ik, &records);
                        if let Err(e) = learned {
                            self.emit(ClientEvent::Notice(e.to_string()));
                        }
                    }
                    Err(e) if e.code() == ErrorCode::NoSuchUser.as_str() => {
                        self.inner.engine.borrow_mut().directory_lacks(user);
                    }
                    Err(_) => return,
                }
            }
            let now = self.inner.platform.now_ms();
            let refused = self.inner.engine.borrow_mut().resume(now);
            for e in refused {
                self.emit(ClientEvent::Notice(format!("a message could not be read: {e}")));
            }
        }
    }

    async fn top_up_key_packages(&self, session: &Session) -> Result<(), ClientError> {
        let n = session.key_package_count().await?;
        if n >= KEY_PACKAGES_LOW {
            return Ok(());
        }
        let (kps, last_resort) = {
            let mut e = self.inner.engine.borrow_mut();
            (e.generate_key_packages((KEY_PACKAGES_TARGET - n) as usize)?, e.last_resort_key_package()?)
        };
        // The private halves must be stored before anyone can use the public ones.
        self.persist().await?;
        session.upload_key_packages(&kps, Some(&last_resort)).await?;
        Ok(())
    }

    /// Removes expired messages as their time comes (checked twice a second).
    async fn expiry_loop(self) {
        while !self.inner.stopped.get() {
            let now = self.inner.platform.now_ms();
            let due = self.inner.engine.borrow().next_expiry().is_some_and(|t| t <= now);
            if due {
                let _ = self.expire().await;
            }
            self.inner.platform.sleep(EXPIRY_TICK_MS).await;
        }
    }

    async fn pump_loop(self, mut kicks: mpsc::UnboundedReceiver<()>) {
        while kicks.next().await.is_some() {
            while kicks.try_recv().is_ok() {}
            if self.inner.stopped.get() {
                return;
            }
            self.pump().await;
        }
    }

    /// Sends outbox items until it is empty, waiting, or the connection fails.
    async fn pump(&self) {
        loop {
            let Some(session) = self.inner.session.borrow().clone() else { return };
            let now = self.inner.platform.now_ms();
            let out = self.inner.engine.borrow_mut().next_outbound(now);
            let Some(out) = out else {
                let _ = self.persist().await;
                return;
            };
            if self.persist().await.is_err() {
                return;
            }
            match session.send_outbound(&out).await {
                Ok(result) => {
                    let now = self.inner.platform.now_ms();
                    self.inner.engine.borrow_mut().outbound_result(out.id, result, now);
                    if self.persist().await.is_err() {
                        return;
                    }
                }
                // The connection loop notices, reconnects and kicks again.
                Err(_) => return,
            }
        }
    }

    /// Processes a batch of deliveries: engine, store, then acknowledge.
    async fn take_delivery(&self, envelopes: Vec<qpq_proto::Envelope>) -> Result<(), ClientError> {
        let now = self.inner.platform.now_ms();
        let mut last = None;
        let mut welcomed = false;
        for env in &envelopes {
            let r = self.inner.engine.borrow_mut().receive(env, now);
            if let Err(e) = r {
                self.emit(ClientEvent::Notice(format!("a message could not be read: {e}")));
            }
            welcomed |= env.kind == EnvelopeKind::Welcome;
            last = Some(env.seq);
        }
        if let Ok(session) = self.session() {
            self.answer_directory(&session).await;
        }
        self.persist().await?;
        if let (Some(seq), Ok(session)) = (last, self.session()) {
            let me = self.clone();
            self.inner.platform.spawn(
                async move {
                    let _ = session.ack(seq).await;
                    if welcomed {
                        if let Err(e) = me.top_up_key_packages(&session).await {
                            me.emit(ClientEvent::Notice(format!("could not publish new keys: {e}")));
                        }
                    }
                }
                .boxed_local(),
            );
        }
        self.kick();
        Ok(())
    }
}

struct ListenerImpl<S: StateStore, P: Platform> {
    client: Weak<Inner<S, P>>,
}

impl<S: StateStore, P: Platform> listener::Server for ListenerImpl<S, P> {
    fn deliver(
        self: CapRc<Self>,
        params: listener::DeliverParams,
        _: listener::DeliverResults,
    ) -> impl std::future::Future<Output = Result<(), capnp::Error>> + 'static {
        let client = self.client.upgrade().map(|inner| Client { inner });
        async move {
            let Some(client) = client else {
                return Err(capnp::Error::disconnected("the client has stopped".into()));
            };
            let envs = params.get()?.get_envelopes()?.iter().map(wire::read_envelope).collect::<Result<Vec<_>, _>>()?;
            client
                .take_delivery(envs)
                .await
                .map_err(|e| capnp::Error::failed(format!("the client could not store the delivery: {e}")))
        }
    }
}

/// `name` or `name@domain`, defaulting to `domain`.
fn resolve_user(input: &str, domain: &str) -> Result<UserId, ClientError> {
    let input = input.trim();
    let full = if input.contains('@') { input.to_string() } else { format!("{input}@{domain}") };
    UserId::parse(&full).map_err(|e| ClientError::Input(format!("{input:?} is not a valid name: {e}")))
}

fn dedup(mut v: Vec<UserId>) -> Vec<UserId> {
    v.sort();
    v.dedup();
    v
}

/// Combines two changesets; the later one wins for a key in both.
fn merge(old: Changeset, new: Changeset) -> Changeset {
    use std::collections::BTreeMap;
    let mut m: BTreeMap<Vec<u8>, Option<Vec<u8>>> = BTreeMap::new();
    for cs in [old, new] {
        for (k, v) in cs.puts {
            m.insert(k, Some(v));
        }
        for k in cs.deletes {
            m.insert(k, None);
        }
    }
    let mut out = Changeset::default();
    for (k, v) in m {
        match v {
            Some(v) => out.puts.push((k, v)),
            None => out.deletes.push(k),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn later_changes_win_when_merging() {
        let old = Changeset { puts: vec![(b"a".to_vec(), b"1".to_vec()), (b"b".to_vec(), b"1".to_vec())], deletes: vec![b"c".to_vec()] };
        let new = Changeset { puts: vec![(b"c".to_vec(), b"2".to_vec())], deletes: vec![b"a".to_vec()] };
        let m = merge(old, new);
        assert_eq!(m.puts, vec![(b"b".to_vec(), b"1".to_vec()), (b"c".to_vec(), b"2".to_vec())]);
        assert_eq!(m.deletes, vec![b"a".to_vec()]);
    }
}
