//! One device in the message phase: its own QUIC connection and RPC stream (or, through a
//! gateway, a WebSocket or WebTransport session's byte stream), a login with the identity its
//! engine holds, and a subscription whose listener counts what arrives and acknowledges it as
//! the client does — by sequence number, after taking the batch, in a task of its own so the
//! next delivery is not held up by the acknowledgement's round trip.
//!
//! Nothing is decrypted here: the figure is the node's work, not this program's MLS.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;
use std::time::Duration;

use anyhow::Context;
use capnp::capability::Rc as CapRc;
use qpq_client::{BoundStream, Connection, Session};
use qpq_core::Engine;
use qpq_proto::node_capnp::{listener, subscription};
use qpq_proto::{wire, DeviceAddress, EnvelopeKind, LOGIN_BINDING_LEN, LOGIN_EXPORTER_LABEL};
use qpq_quic::{Trust, ALPN_NODE};
use tokio_util::compat::{TokioAsyncReadCompatExt, TokioAsyncWriteCompatExt};

use crate::target::NodeUnderTest;

/// What one device received and acknowledged.
#[derive(Default)]
pub struct Tally {
    /// Application messages received.
    pub delivered: Cell<u64>,
    /// Application messages received, by (sender, index in its pool): the payload names
    /// them, since every ciphertext of every pool is distinct.
    pub copies: RefCell<HashMap<(usize, usize), u64>>,
    /// Application messages whose payload is in no pool (bytes the node changed).
    pub unknown: Cell<u64>,
    /// Envelopes of other kinds (commits, Welcomes) received.
    pub other_kinds: Cell<u64>,
    /// Envelopes whose sequence number was not above the last one seen (a duplicate).
    pub out_of_order: Cell<u64>,
    /// The highest sequence number seen.
    pub last_seq: Cell<u64>,
    /// `deliver` calls the node made (each a batch of envelopes, acknowledged in its answer).
    pub batches: Cell<u64>,
}

/// A logged-in device.
pub struct DeviceSession {
    /// Its address.
    pub address: DeviceAddress,
    /// Its session capability.
    pub session: Session,
    /// What it received.
    pub tally: Rc<Tally>,
    conn: Connection,
    /// The session's own QUIC connection, when it goes straight to the node (one through a
    /// gateway ends with its stream).
    quic: Option<quinn::Connection>,
    subscription: RefCell<Option<subscription::Client>>,
    heartbeat: RefCell<Option<tokio::task::JoinHandle<()>>>,
}

/// A client endpoint trusting the node's certificate, shared by all devices of a run (one UDP
/// socket; each device still has a QUIC connection of its own).
pub fn endpoint(node: &NodeUnderTest) -> anyhow::Result<quinn::Endpoint> {
    let pin: [u8; 32] = hex::decode(node.fingerprint.trim())
        .ok()
        .and_then(|v| v.try_into().ok())
        .context("a certificate fingerprint is 64 hex digits")?;
    let mut ep = qpq_quic::shared_client_endpoint(node.addr)?;
    ep.set_default_client_config(qpq_quic::client_config(&Trust::Pinned(vec![pin]), ALPN_NODE, Duration::from_secs(30))?);
    Ok(ep)
}

impl DeviceSession {
    /// Connects straight to the node and logs in as the device `engine` holds.
    pub async fn open(ep: &quinn::Endpoint, node: &NodeUnderTest, engine: &Engine) -> anyhow::Result<DeviceSession> {
        let quic = ep.connect(node.addr, "localhost")?.await.context("connecting to the node")?;
        let (send, recv) = quic.open_bi().await.context("opening a stream")?;
        // Bound to this connection, as the native client's login is.
        let mut binding = [0u8; LOGIN_BINDING_LEN];
        quic.export_keying_material(&mut binding, LOGIN_EXPORTER_LABEL, b"")
            .map_err(|_| anyhow::anyhow!("the connection has no TLS exporter"))?;
        let mut s = DeviceSession::log_in(recv.compat(), send.compat_write(), &binding, engine).await?;
        s.quic = Some(quic);
        Ok(s)
    }

    /// Logs in as the device `engine` holds over a stream a `qpq_client::Connector` opened
    /// (`connect_bound`): bound to the connection when the transport gives its exporter value,
    /// else — through a gateway, as for the app in a browser — with an empty binding, as
    /// `qpq-client` logs in.
    pub async fn over(stream: BoundStream, engine: &Engine) -> anyhow::Result<DeviceSession> {
        let ((r, w), binding) = stream;
        DeviceSession::log_in(r, w, binding.as_ref().map_or(&[][..], |b| &b[..]), engine).await
    }

    /// Hello, challenge and login over the stream `r`, `w`, the signature over `binding`.
    async fn log_in<R, W>(r: R, w: W, binding: &[u8], engine: &Engine) -> anyhow::Result<DeviceSession>
    where
        R: futures::io::AsyncRead + Unpin + 'static,
        W: futures::io::AsyncWrite + Unpin + 'static,
    {
        let (conn, driver) = Connection::new(r, w);
        tokio::task::spawn_local(driver);
        conn.hello(concat!("qpq-load/", env!("CARGO_PKG_VERSION"))).await?;
        let (user, device) = (engine.user().clone(), engine.device_id());
        let nonce = conn.challenge(&user, &device).await?;
        let session = conn.login(&user, &device, &nonce, &engine.sign_login(&nonce, binding)).await?;
        Ok(DeviceSession {
            address: DeviceAddress { user, device },
            session,
            tally: Rc::default(),
            conn,
            quic: None,
            subscription: RefCell::new(None),
            heartbeat: RefCell::new(None),
        })
    }

    /// Subscribes to deliveries after `after` (the engine's cursor); `pools` names each
    /// payload's (sender, index in its pool).
    pub async fn subscribe(&self, after: u64, pools: Rc<PoolIndex>) -> anyhow::Result<()> {
        let listener: listener::Client =
            capnp_rpc::new_client(Counter { tally: self.tally.clone(), pools });
        let handle = self.session.subscribe(listener, after).await?;
        *self.subscription.borrow_mut() = Some(handle);
        Ok(())
    }

    /// How many envelopes the node still holds for this device (at most `limit`).
    pub async fn queued(&self, limit: u32) -> anyhow::Result<usize> {
        Ok(self.session.fetch(0, limit).await?.len())
    }

    /// Calls `whoami` every `every`, as the app's heartbeat does (`qpq-client` checks an idle
    /// connection that way, which also keeps a gateway's idle timer from closing it), until
    /// the session closes or a call fails. The first call comes at a random point of the
    /// first period: sessions of different people are not in step.
    pub fn heartbeat(&self, every: Duration) {
        let session = self.session.clone();
        let first = every.mul_f64(rand::random::<f64>());
        let beat = tokio::task::spawn_local(async move {
            tokio::time::sleep(first).await;
            while session.whoami().await.is_ok() {
                tokio::time::sleep(every).await;
            }
        });
        if let Some(old) = self.heartbeat.replace(Some(beat)) {
            old.abort();
        }
    }

    /// Ends the heartbeat and the subscription and closes the stream and connection.
    pub async fn close(self) {
        if let Some(beat) = self.heartbeat.take() {
            beat.abort();
        }
        self.subscription.borrow_mut().take();
        self.conn.close().await;
        if let Some(quic) = &self.quic {
            quic.close(0u32.into(), b"done");
        }
    }
}

/// The listener: counts, and acknowledges what it counted in its answer, as the client does.
struct Counter {
    tally: Rc<Tally>,
    pools: Rc<PoolIndex>,
}

/// Every pooled ciphertext and whose it is: (sender, index in its pool).
pub type PoolIndex = HashMap<Vec<u8>, (usize, usize)>;

impl listener::Server for Counter {
    fn deliver(
        self: CapRc<Self>,
        params: listener::DeliverParams,
        mut results: listener::DeliverResults,
    ) -> impl std::future::Future<Output = Result<(), capnp::Error>> + 'static {
        let taken = self.take(params).map(|last| results.get().set_stored(last));
        async move { taken }
    }
}

impl Counter {
    /// Counts a batch; returns the last sequence number in it (0 for none).
    fn take(&self, params: listener::DeliverParams) -> Result<u64, capnp::Error> {
        let t = &self.tally;
        let mut last = None;
        for r in params.get()?.get_envelopes()? {
            let env = wire::read_envelope(r)?;
            if env.seq <= t.last_seq.get() {
                t.out_of_order.set(t.out_of_order.get() + 1);
            }
            t.last_seq.set(t.last_seq.get().max(env.seq));
            if env.kind == EnvelopeKind::Application {
                t.delivered.set(t.delivered.get() + 1);
                match self.pools.get(&env.payload) {
                    Some(&key) => *t.copies.borrow_mut().entry(key).or_default() += 1,
                    None => t.unknown.set(t.unknown.get() + 1),
                }
            } else {
                t.other_kinds.set(t.other_kinds.get() + 1);
            }
            last = Some(env.seq);
        }
        if last.is_some() {
            t.batches.set(t.batches.get() + 1);
        }
        Ok(last.unwrap_or(0))
    }
}
