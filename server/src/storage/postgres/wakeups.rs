//! Wake-ups across nodes, by one of two buses:
//!
//! - PostgreSQL itself (the default): `pg_notify` inside the transaction that queued the
//!   envelopes (delivered only if it commits), and one LISTEN connection per node forwarding
//!   other nodes' notifications to the local broadcast channel. PostgreSQL serialises the
//!   commits of transactions that notified, which costs commit throughput under many writers
//!   (BENCHMARKS.md, `qpq-pg-notify`).
//! - NATS (`--nats-url`): the same payloads published right after the commit, on a subject
//!   named after the database, and one subscription per node. PostgreSQL stays the source of
//!   truth; a wake-up is only a hint to fetch. One published by a node that dies between its
//!   commit and the publish is lost, as a NOTIFY is while a listener reconnects: the
//!   recipient's session fetches on its next wake-up or connection.
//!
//! A notification's payload is the sending node's id on the first line, then one
//! `q <device id hex>` (new envelopes) or `g <device id hex>` (the device is gone) line per
//! device: a device's 16 random bytes, never a user name. The node skips its own
//! notifications because it has already woken its subscribers right after the commit.
//! Notifications sent while the listener is reconnecting are lost; every subscriber of the
//! node is then told to fetch (`Wake::Resync`).

use std::time::Duration;

use futures::StreamExt;
use qpq_proto::DeviceId;
use sqlx::postgres::{PgConnectOptions, PgListener, PgPoolOptions};
use sqlx::PgConnection;
use tokio::sync::{broadcast, mpsc};
use tokio::task::JoinHandle;

use crate::storage::rows::{db, describe, TxError};
use crate::storage::{StoreError, Wake};

/// The NOTIFY channel.
pub(super) const CHANNEL: &str = "qpq_wakeup";

/// The `application_name` of listener connections (visible in `pg_stat_activity`).
pub(super) const LISTENER_APPLICATION: &str = "qpq-wakeup-listener";

/// PostgreSQL refuses payloads of 8000 bytes or more; stay well below.
const MAX_PAYLOAD: usize = 7000;

/// Waits between reconnection attempts, doubling from the first to the last.
const BACKOFF_FIRST: Duration = Duration::from_millis(100);
const BACKOFF_LAST: Duration = Duration::from_secs(5);

/// Sends `wakes` as part of the current transaction.
pub(super) async fn notify(conn: &mut PgConnection, node: u64, wakes: &[Wake]) -> Result<(), TxError> {
    for payload in payloads(node, wakes) {
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(CHANNEL)
            .bind(payload)
            .execute(&mut *conn)
            .await
            .map_err(db("send wake-ups"))?;
    }
    Ok(())
}

/// The background task forwarding notifications; stopped when dropped.
pub(super) struct Listener {
    task: JoinHandle<()>,
}

/// NATS as the wake-up bus: publishes after commits and forwards other nodes' wake-ups.
pub(super) struct NatsBus {
    /// Payloads to publish, in commit order (a task of its own publishes them).
    out: mpsc::UnboundedSender<String>,
    node: u64,
    tasks: [JoinHandle<()>; 3],
}

impl NatsBus {
    /// Connects to the NATS server at `url` and subscribes to the wake-ups of the database
    /// `database`; forwards other nodes' to `wake`.
    pub(super) async fn start(url: &str, database: &str, node: u64, wake: broadcast::Sender<Wake>) -> Result<Self, StoreError> {
        // The client reports connections and losses to a callback; a task of ours acts on them.
        let (events_tx, events) = mpsc::unbounded_channel::<async_nats::Event>();
        let client = async_nats::ConnectOptions::new()
            .name("qpq-server")
            .event_callback(move |event| {
                let events_tx = events_tx.clone();
                async move {
                    let _ = events_tx.send(event);
                }
            })
            .connect(url)
            .await
            // The URL may carry credentials: never echo it.
            .map_err(|e| StoreError::Config(format!("cannot reach the NATS server for wake-ups: {e}")))?;
        // One subject per database, so that clusters sharing a NATS server stay apart (a
        // database name may hold what a subject may not: wildcards, dots, spaces).
        let token: String =
            database.chars().map(|c| if c.is_ascii_alphanumeric() || c == '_' || c == '-' { c } else { '_' }).collect();
        let subject = format!("qpq.wakeup.{token}");
        let mut subscription = client
            .subscribe(subject.clone())
            .await
            .map_err(|e| StoreError::Backend(format!("subscribe to wake-ups on NATS: {e}")))?;
        // The subscription is in effect once the server has seen it.
        client.flush().await.map_err(|e| StoreError::Backend(format!("subscribe to wake-ups on NATS: {e}")))?;
        let (client_for_resync, resync_wake) = (client.clone(), wake.clone());
        let forward = tokio::spawn(async move {
            while let Some(message) = subscription.next().await {
                let Ok(payload) = std::str::from_utf8(&message.payload) else { continue };
                for w in parse(payload, node) {
                    let _ = wake.send(w);
                }
            }
        });
        let (out, mut queue) = mpsc::unbounded_channel::<String>();
        let publish = tokio::spawn(async move {
            while let Some(payload) = queue.recv().await {
                // Buffered by the client while it reconnects; an error means it gave up.
                if let Err(e) = client.publish(subject.clone(), payload.into()).await {
                    tracing::warn!(error = %e, "a wake-up could not be published on NATS");
                }
            }
        });
        let resync = tokio::spawn(resync_after_losses(client_for_resync, events, resync_wake));
        Ok(NatsBus { out, node, tasks: [forward, publish, resync] })
    }

    /// Publishes `wakes` (after their commit).
    pub(super) fn publish(&self, wakes: &[Wake]) {
        for payload in payloads(self.node, wakes) {
            let _ = self.out.send(payload);
        }
    }
}

/// Tells every subscriber to fetch (`Wake::Resync`) once the client is connected again
/// after a loss: wake-ups published meanwhile are lost.
///
/// The client also reports its first connection, possibly after `connect` returned; that
/// one missed nothing. On a reconnection it reports the connection before it subscribes
/// again, so the resync waits for a flush: the server has then handled the subscription,
/// and a wake-up published after a subscriber's fetch cannot fall in between.
async fn resync_after_losses(
    client: async_nats::Client,
    mut events: mpsc::UnboundedReceiver<async_nats::Event>,
    wake: broadcast::Sender<Wake>,
) {
    let mut lost = false;
    while let Some(event) = events.recv().await {
        match event {
            async_nats::Event::Disconnected => {
                lost = true;
                tracing::warn!("wake-up bus (NATS) disconnected; reconnecting");
            }
            async_nats::Event::Connected if lost => match client.flush().await {
                Ok(()) => {
                    lost = false;
                    tracing::info!("wake-up bus (NATS) reconnected");
                    let _ = wake.send(Wake::Resync);
                }
                // Lost again: the next connection resyncs.
                Err(e) => tracing::warn!(error = %e, "wake-up bus (NATS) lost again while reconnecting"),
            },
            _ => {}
        }
    }
}

impl Drop for NatsBus {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

impl Listener {
    /// Starts listening (returning once LISTEN is in effect) and forwards other nodes'
    /// wake-ups to `wake`, reconnecting whenever the connection drops.
    pub(super) async fn start(
        options: PgConnectOptions,
        node: u64,
        wake: broadcast::Sender<Wake>,
    ) -> Result<Self, StoreError> {
        let listener = listen(&options).await.map_err(|e| describe("listen for wake-ups", &e))?;
        let task = tokio::spawn(forward(listener, options, node, wake));
        Ok(Listener { task })
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Opens a dedicated connection and LISTENs on [`CHANNEL`].
async fn listen(options: &PgConnectOptions) -> Result<PgListener, sqlx::Error> {
    let pool = PgPoolOptions::new()
        .max_connections(1)
        .min_connections(0)
        .idle_timeout(None)
        .max_lifetime(None)
        .connect_with(options.clone().application_name(LISTENER_APPLICATION))
        .await?;
    let mut listener = PgListener::connect_with(&pool).await?;
    listener.ignore_pool_close_event(true);
    listener.listen(CHANNEL).await?;
    Ok(listener)
}

async fn forward(
    mut listener: PgListener,
    options: PgConnectOptions,
    node: u64,
    wake: broadcast::Sender<Wake>,
) {
    loop {
        match listener.try_recv().await {
            Ok(Some(notification)) => {
                for w in parse(notification.payload(), node) {
                    let _ = wake.send(w);
                }
            }
            // The connection dropped and PgListener reconnected (and re-LISTENed) already.
            Ok(None) => {
                tracing::warn!("wake-up listener reconnected; wake-ups in between were missed");
                let _ = wake.send(Wake::Resync);
            }
            Err(e) => {
                tracing::warn!(error = %describe("listen for wake-ups", &e), "wake-up listener failed; reconnecting");
                listener = reconnect(&options).await;
                let _ = wake.send(Wake::Resync);
            }
        }
    }
}

/// A fresh listener, retried with exponential back-off until the database answers.
async fn reconnect(options: &PgConnectOptions) -> PgListener {
    let mut pause = BACKOFF_FIRST;
    loop {
        tokio::time::sleep(pause).await;
        match listen(options).await {
            Ok(listener) => {
                tracing::info!("wake-up listener reconnected");
                return listener;
            }
            Err(e) => {
                tracing::warn!(error = %describe("listen for wake-ups", &e), "wake-up listener still disconnected");
                pause = (pause * 2).min(BACKOFF_LAST);
            }
        }
    }
}

/// Splits `wakes` into payloads below [`MAX_PAYLOAD`] bytes.
fn payloads(node: u64, wakes: &[Wake]) -> Vec<String> {
    let header = format!("{node:016x}");
    let mut out = Vec::new();
    let mut current = header.clone();
    for w in wakes {
        let line = match w {
            Wake::Queue(d) => format!("\nq {}", d.to_hex()),
            Wake::Gone(d) => format!("\ng {}", d.to_hex()),
            // Local only: never sent to other nodes.
            Wake::Resync => continue,
        };
        if current.len() + line.len() > MAX_PAYLOAD && current.len() > header.len() {
            out.push(std::mem::replace(&mut current, header.clone()));
        }
        current.push_str(&line);
    }
    if current.len() > header.len() {
        out.push(current);
    }
    out
}

/// The wake-ups in a payload from another node; nothing for our own or a malformed one.
fn parse(payload: &str, node: u64) -> Vec<Wake> {
    let mut lines = payload.lines();
    let from = lines.next().and_then(|h| u64::from_str_radix(h, 16).ok());
    if from.is_none_or(|from| from == node) {
        return Vec::new();
    }
    lines
        .filter_map(|line| {
            let (kind, device) = line.split_once(' ')?;
            let device = DeviceId::from_slice(&hex::decode(device).ok()?).ok()?;
            match kind {
                "q" => Some(Wake::Queue(device)),
                "g" => Some(Wake::Gone(device)),
                _ => None,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn device(n: u8) -> Wake {
        if n.is_multiple_of(3) {
            Wake::Gone(DeviceId([n; 16]))
        } else {
            Wake::Queue(DeviceId([n; 16]))
        }
    }

    #[test]
    fn payloads_round_trip_and_stay_small() {
        let wakes: Vec<Wake> = (0..255).map(device).collect();
        let payloads = payloads(7, &wakes);
        assert!(payloads.len() > 1, "255 devices need several notifications");
        assert!(payloads.iter().all(|p| p.len() <= MAX_PAYLOAD));
        let parsed: Vec<Wake> = payloads.iter().flat_map(|p| parse(p, 8)).collect();
        assert_eq!(parsed, wakes);
    }

    #[test]
    fn payloads_carry_no_user_names() {
        let payload = &payloads(7, &[device(1), device(3)])[0];
        assert_eq!(payload, &format!("{:016x}\nq {}\ng {}", 7, "01".repeat(16), "03".repeat(16)));
    }

    #[test]
    fn own_and_malformed_payloads_are_ignored() {
        let payload = &payloads(7, &[device(1)])[0];
        assert!(parse(payload, 7).is_empty(), "a node does not wake itself twice");
        assert!(parse("", 8).is_empty());
        assert!(parse("zz\nq 0101", 8).is_empty());
        assert_eq!(parse("7\nq not-hex\nq 01\nx 0101010101010101010101010101010\n0101 a@b", 8), Vec::<Wake>::new());
    }
}
