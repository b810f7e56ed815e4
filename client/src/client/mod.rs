//! The client: one device's engine, its storage and its connection, kept moving.
//!
//! The `Client` handle and its shared state live here; its work is split by responsibility:
//! `actions` (what a person starts), `connection` (log-in, reconnecting, heartbeat, key
//! packages), `pump` (the outbox), `expiry` (the disappearing-message timer) and `intake`
//! (deliveries from the server, and persisting every step before anything acts on it).

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use futures::channel::{mpsc, oneshot};
use futures::future::{self, FutureExt};
use qpq_core::{Changeset, Engine, Event};
use qpq_proto::node_capnp::subscription;
use qpq_proto::UserId;
use rand::RngCore;

use crate::api::{Connection, Session};
use crate::error::ClientError;
use crate::{Connector, Platform, StateStore};

mod actions;
mod connection;
mod expiry;
mod handover;
mod intake;
mod linking;
mod people;
mod profiles;
mod pump;
mod restore;

pub use actions::OwnDevice;
pub use linking::{LinkProgress, LinkedDevice};
pub use restore::{BackupProgress, Restored};

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
    /// This device no longer belongs to its account (revoked from another device, or the
    /// account was deleted): the client stopped and does not try again.
    Removed {
        /// Why, in words for people.
        reason: String,
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
    /// The history from the device that linked this one is being fetched: bytes so far.
    History {
        /// Bytes fetched.
        done: u64,
        /// Bytes in all.
        total: u64,
    },
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
    /// Rejoin rounds in a row that left a conversation still to rejoin (see `answer_rejoins`).
    rejoin_rounds: Cell<u32>,
    /// A kick for held receipts is scheduled (see `kick_for_receipts`).
    receipts_kick: Cell<bool>,
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
                rejoin_rounds: Cell::new(0),
                receipts_kick: Cell::new(false),
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
        let me = self.clone();
        self.inner.platform.spawn(async move { me.handover_loop().await }.boxed_local());
        let me = self.clone();
        self.inner.platform.spawn(async move { me.repair_loop().await }.boxed_local());
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
        // The expiry timer (and anyone in `wait_for`) looks again and sees the stop.
        self.changed();
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
            let change = self.next_change();
            let sleep = self.inner.platform.sleep((deadline - now).min(250));
            futures::pin_mut!(sleep);
            let _ = future::select(change, sleep).await;
        }
    }

    /// Resolves at the next stored step, connection change or shutdown, whichever is first.
    pub(super) fn next_change(&self) -> oneshot::Receiver<()> {
        let (tx, rx) = oneshot::channel();
        self.inner.waiters.borrow_mut().push(tx);
        rx
    }

    /// Wakes everything waiting in [`Client::next_change`].
    pub(super) fn changed(&self) {
        for w in self.inner.waiters.borrow_mut().drain(..) {
            let _ = w.send(());
        }
    }

    pub(super) fn emit(&self, ev: ClientEvent) {
        for l in self.inner.listeners.borrow().iter() {
            l(&ev);
        }
    }
}

/// `name` or `name@domain`, defaulting to `domain`.
fn resolve_user(input: &str, domain: &str) -> Result<UserId, ClientError> {
    let input = input.trim();
    let full = if input.contains('@') { input.to_string() } else { format!("{input}@{domain}") };
    UserId::parse(&full).map_err(|e| ClientError::Input(format!("{input:?} is not a valid name: {e}")))
}
