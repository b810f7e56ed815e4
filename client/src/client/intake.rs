//! Delivery intake and persistence: the subscription's listener hands each batch of envelopes
//! to the engine, the directory records the engine asks for are fetched (so it can go on with
//! deliveries it held), the result is stored, and only then acknowledged. `persist` is the one way
//! any step reaches the state store: nothing a step implies is sent before it returns.

use std::rc::{Rc, Weak};

use capnp::capability::Rc as CapRc;
use futures::future::FutureExt;
use qpq_core::{Changeset, Engine};
use qpq_proto::node_capnp::listener;
use qpq_proto::{wire, EnvelopeKind, ErrorCode};

use super::{Client, ClientEvent, Inner};
use crate::api::Session;
use crate::error::ClientError;
use crate::{Platform, StateStore};

impl<S: StateStore, P: Platform> Client<S, P> {
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
        self.changed();
        Ok(())
    }

    /// The listener the server delivers to, holding this client weakly (a stopped client
    /// refuses deliveries instead of being kept alive by the connection).
    pub(super) fn listener(&self) -> listener::Client {
        capnp_rpc::new_client(ListenerImpl { client: Rc::downgrade(&self.inner) })
    }

    /// Processes a batch of deliveries: engine, then store. Returns the last sequence number
    /// taken, which the answer to `deliver` carries: the node acknowledges up to it.
    async fn take_delivery(&self, envelopes: Vec<qpq_proto::Envelope>) -> Result<u64, ClientError> {
        let now = self.inner.platform.now_ms();
        let restoring = self.with_engine(Engine::restoring);
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
            self.answer_account_hint(&session).await;
            self.answer_rejoins(&session).await;
        }
        self.persist().await?;
        // Conversations of a restored account come back one Welcome at a time.
        match restoring.saturating_sub(self.with_engine(Engine::restoring)) {
            0 => {}
            1 => self.emit(ClientEvent::Notice("a conversation from your backup is back, with its history".into())),
            n => self.emit(ClientEvent::Notice(format!("{n} conversations from your backup are back, with their history"))),
        }
        // A Welcome used up one of this device's key packages.
        if let (true, Ok(session)) = (welcomed, self.session()) {
            let me = self.clone();
            self.inner.platform.spawn(
                async move {
                    if let Err(e) = me.top_up_key_packages(&session).await {
                        me.emit(ClientEvent::Notice(format!("could not publish new keys: {e}")));
                    }
                }
                .boxed_local(),
            );
        }
        // What the delivery queued (a commit, say) goes now; the receipts for it wait a moment
        // for a reply to go first.
        if self.with_engine(Engine::outbox_len) > 0 {
            self.kick();
        } else {
            self.kick_for_receipts();
        }
        Ok(last.unwrap_or(0))
    }

    /// Reads the account's blocks again when the node said another device of the account
    /// changed them; a failure leaves the hint for the next delivery (or the next login,
    /// which reads them anyway).
    async fn answer_account_hint(&self, session: &Session) {
        if self.with_engine(Engine::blocks_stale) {
            if let Ok(users) = session.blocked_users().await {
                self.inner.engine.borrow_mut().set_blocked_users(users);
            }
        }
    }

    /// Fetches the directory records the engine waits for (deliveries naming members it has
    /// not verified yet), hands them over and lets the engine go on with what it held. A user
    /// the directory does not know is reported as such; any other failure leaves the
    /// deliveries held (they are stored) for the next delivery or session. Refusals are told
    /// to the UI.
    pub(super) async fn answer_directory(&self, session: &Session) {
        for _ in 0..8 {
            let needed = self.with_engine(Engine::directory_needed);
            if needed.is_empty() {
                return;
            }
            for user in &needed {
                match session.list_devices(user).await {
                    Ok((ik, records)) => {
                        let learned = self.inner.engine.borrow_mut().learn_devices(user, &ik, &records, self.inner.platform.now_ms());
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
}

/// Rounds of rejoin attempts in a row before waiting for the next delivery or session.
const REJOIN_ROUNDS: u32 = 20;
/// Time between rejoin rounds.
const REJOIN_RETRY_MS: u64 = 1500;

impl<S: StateStore, P: Platform> Client<S, P> {
    /// Rejoins the conversations this device fell out of step with (`engine/rejoin.rs`): the
    /// server's GroupInfo and tree, the directory records of members not verified yet, then
    /// the engine queues its external commit, which the pump sends first. A conversation
    /// whose GroupInfo is not there yet (its last committer has not handed it in), or whose
    /// rejoin lost to another commit, is tried again a little later, for up to
    /// `REJOIN_ROUNDS` rounds in a row, then at the next delivery or session; a rejoin the
    /// engine refuses is told to the UI.
    pub(super) async fn answer_rejoins(&self, session: &Session) {
        let needed = self.with_engine(Engine::rejoins_needed);
        let rounds = &self.inner.rejoin_rounds;
        if needed.is_empty() {
            rounds.set(0);
            return;
        }
        rounds.set(rounds.get() + 1);
        if rounds.get() <= REJOIN_ROUNDS {
            // Looks again once the pump has sent what this round queues.
            let (me, session, sleep) = (self.clone(), session.clone(), self.inner.platform.sleep(REJOIN_RETRY_MS));
            self.inner.platform.spawn(
                async move {
                    sleep.await;
                    if !me.inner.stopped.get() {
                        me.answer_rejoins(&session).await;
                        let _ = me.persist().await;
                    }
                }
                .boxed_local(),
            );
        }
        for conv in needed {
            let Ok((info, tree)) = session.group_info(&conv).await else { continue };
            let mut fetched = Vec::new();
            for _ in 0..2 {
                let need = self.inner.engine.borrow_mut().rejoin(&conv, &info, &tree, &fetched);
                match need {
                    Ok(users) if users.is_empty() => break,
                    Ok(users) => {
                        for user in users {
                            if let Ok((ik, records)) = session.list_devices(&user).await {
                                let now = self.inner.platform.now_ms();
                                let learned = self.inner.engine.borrow_mut().learn_devices(&user, &ik, &records, now);
                                if let Err(e) = learned {
                                    self.emit(ClientEvent::Notice(e.to_string()));
                                }
                            }
                            fetched.push(user);
                        }
                    }
                    Err(e) => {
                        self.emit(ClientEvent::Notice(format!("could not rejoin a conversation: {e}")));
                        break;
                    }
                }
            }
        }
        self.kick();
    }
}

struct ListenerImpl<S: StateStore, P: Platform> {
    client: Weak<Inner<S, P>>,
}

impl<S: StateStore, P: Platform> listener::Server for ListenerImpl<S, P> {
    fn deliver(
        self: CapRc<Self>,
        params: listener::DeliverParams,
        mut results: listener::DeliverResults,
    ) -> impl std::future::Future<Output = Result<(), capnp::Error>> + 'static {
        let client = self.client.upgrade().map(|inner| Client { inner });
        async move {
            let Some(client) = client else {
                return Err(capnp::Error::disconnected("the client has stopped".into()));
            };
            let envs = params.get()?.get_envelopes()?.iter().map(wire::read_envelope).collect::<Result<Vec<_>, _>>()?;
            let stored = client
                .take_delivery(envs)
                .await
                .map_err(|e| capnp::Error::failed(format!("the client could not store the delivery: {e}")))?;
            // The acknowledgement rides on the answer: no `ack` call of its own.
            results.get().set_stored(stored);
            Ok(())
        }
    }
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
