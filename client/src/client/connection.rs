//! The connection: connecting and logging in, reconnecting with backoff and jitter, the
//! heartbeat that notices a silent server, and keeping one-time key packages topped up.

use std::rc::Rc;

use futures::channel::oneshot;
use futures::future::{self, Either, FutureExt};
use qpq_core::Engine;
use qpq_proto::ErrorCode;
use rand::RngCore;

use super::{Client, ClientEvent, ConnState};
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

impl<S: StateStore, P: Platform> Client<S, P> {
    fn set_state(&self, s: ConnState) {
        if *self.inner.state.borrow() == s {
            return;
        }
        *self.inner.state.borrow_mut() = s.clone();
        self.emit(ClientEvent::Connection(s));
        self.changed();
    }

    pub(super) async fn connection_loop(self, connector: Rc<dyn Connector>, stop: oneshot::Receiver<()>) {
        let stop = stop.shared();
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
                Err(e) if e.remote_code() == Some(ErrorCode::DeviceRevoked) => {
                    // Final: no later attempt can log in, so none is made.
                    self.inner.session.borrow_mut().take();
                    self.inner.subscription.borrow_mut().take();
                    self.set_state(ConnState::Removed {
                        reason: "This device was removed from your account, or the account was deleted. \
                                 It no longer connects; its messages stay readable here."
                            .into(),
                    });
                    return;
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
        let ((r, w), binding) = connector.connect_bound().await.map_err(ClientError::Disconnected)?;
        let (conn, driver) = Connection::new(r, w);
        self.inner.platform.spawn(driver.boxed_local());
        match self.log_in(&conn, binding.as_ref().map_or(&[][..], |b| &b[..])).await {
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

    /// Version handshake, login (bound to the connection's exporter value `binding`, if any),
    /// key packages, subscription.
    async fn log_in(&self, conn: &Connection, binding: &[u8]) -> Result<(), ClientError> {
        conn.hello(concat!("qpq-client/", env!("CARGO_PKG_VERSION"))).await?;
        let (user, device) = self.with_engine(|e| (e.user().clone(), e.device_id()));
        let nonce = conn.challenge(&user, &device).await?;
        let sig = self.with_engine(|e| e.sign_login(&nonce, binding));
        let session = conn.login(&user, &device, &nonce, &sig).await?;
        // What the account's other devices call this one (before the key packages, so a device
        // being linked has its name by the time it can be added); a node that cannot keep it
        // is no reason to stay offline.
        let label = self.with_engine(|e| {
            e.device_name().map(|n| crate::device_label::seal(&e.identity_secret(), &e.device_id(), n))
        });
        if let Some(label) = label {
            let _ = session.set_device_label(&label).await;
        }
        self.top_up_key_packages(&session).await?;
        let listener = self.listener();
        let cursor = self.with_engine(Engine::cursor);
        let handle = session.subscribe(listener, cursor).await?;
        *self.inner.subscription.borrow_mut() = Some(handle);
        // Deliveries held since the last session, waiting for the directory.
        self.answer_directory(&session).await;
        // Conversations this device fell out of step with.
        self.answer_rejoins(&session).await;
        // A device of this account revoked meanwhile leaves every conversation; one linked
        // meanwhile joins every conversation.
        if let Err(e) = self.sync_own_devices(&session).await {
            self.emit(ClientEvent::Notice(format!("could not check this account's devices: {e}")));
        }
        // Blocks another device of the account changed meanwhile.
        if let Err(e) = self.sync_blocked(&session).await {
            self.emit(ClientEvent::Notice(format!("could not read the people you block: {e}")));
        }

        *self.inner.session.borrow_mut() = Some(session.clone());
        self.persist().await?;
        Ok(())
    }

    pub(super) async fn top_up_key_packages(&self, session: &Session) -> Result<(), ClientError> {
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
}
