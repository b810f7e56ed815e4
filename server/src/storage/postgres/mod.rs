//! The PostgreSQL backend: several server nodes sharing one database.
//!
//! Every invariant holds across processes, enforced by row locks rather than by anything
//! in-process: a channel's row serialises its commits (exactly one per epoch), a device's row
//! serialises its sequence numbers and key-package claims, a user's row its device additions,
//! and an advisory lock per name its registration and deletion. Transactions PostgreSQL
//! aborts to break a deadlock are retried. Wake-ups travel by `pg_notify` inside the
//! transaction that queued the envelopes and come back through one LISTEN connection per
//! node; nothing polls.

mod accounts;
mod blobs;
mod expiry;
mod messaging;
mod rows;
mod wakeups;

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use qpq_proto::{ChannelId, DeviceAddress, DeviceRecord, Envelope, UserId};
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use tokio::sync::broadcast;

use super::{
    BlobRow, ChannelRow, Claimed, CommitInput, CommitOutcome, EnqueueInput, EnqueueOutcome, ExpiryStats, KeyPackageRow,
    Millis, Storage, StoreError,
};
use rows::retrying;

static MIGRATOR: Migrator = sqlx::migrate!("./migrations/postgres");

/// Session advisory lock held while migrating, so nodes starting together migrate one by one.
const MIGRATION_LOCK: i64 = 0x7170_7100_6d69_6772;

/// How many wake-ups a slow subscriber may fall behind before it misses some.
const WAKE_CAPACITY: usize = 4096;

/// Connections per node.
const POOL_SIZE: u32 = 16;

/// How long a call waits for a free connection before failing.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(30);

/// Storage in a PostgreSQL database shared by any number of server nodes.
pub struct PgStorage {
    pool: PgPool,
    /// Random per process; tells this node's notifications from other nodes'.
    node: u64,
    wake: broadcast::Sender<DeviceAddress>,
    /// Forwards other nodes' wake-ups to `wake` until dropped.
    _listener: wakeups::Listener,
}

impl PgStorage {
    /// Connects to `url` (`postgres://user@host:port/database`), runs the migrations under an
    /// advisory lock, and starts listening for other nodes' wake-ups.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        // The URL may carry a password: never echo it.
        let options = PgConnectOptions::from_str(url)
            .map_err(|_| StoreError::Config("the PostgreSQL URL is malformed".into()))?;
        let pool = PgPoolOptions::new()
            .max_connections(POOL_SIZE)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_with(options.clone())
            .await
            .map_err(|e| rows::describe("connect to PostgreSQL", &e))?;
        migrate(&pool).await?;
        let node = rand::random::<u64>();
        let (wake, _) = broadcast::channel(WAKE_CAPACITY);
        let listener = wakeups::Listener::start(options, node, wake.clone()).await?;
        Ok(PgStorage { pool, node, wake, _listener: listener })
    }

    /// Wakes local subscribers of `devices` (called after the commit that queued for them;
    /// other nodes hear of it through NOTIFY).
    fn wake_all(&self, devices: Vec<DeviceAddress>) {
        for device in devices {
            // No subscriber is not an error: envelopes wait in the queue.
            let _ = self.wake.send(device);
        }
    }
}

/// Runs the migrations on one connection holding [`MIGRATION_LOCK`].
async fn migrate(pool: &PgPool) -> Result<(), StoreError> {
    const OP: &str = "migrate database";
    let mut conn = pool.acquire().await.map_err(|e| rows::describe(OP, &e))?;
    sqlx::query("SELECT pg_advisory_lock($1)")
        .bind(MIGRATION_LOCK)
        .execute(&mut *conn)
        .await
        .map_err(|e| rows::describe(OP, &e))?;
    let migrated = MIGRATOR.run(&mut *conn).await;
    let unlocked = sqlx::query("SELECT pg_advisory_unlock($1)").bind(MIGRATION_LOCK).execute(&mut *conn).await;
    if unlocked.is_err() {
        // Closing the session releases the lock for sure.
        let _ = conn.close().await;
    }
    migrated.map_err(|e| StoreError::Backend(format!("{OP}: {e}")))?;
    unlocked.map_err(|e| rows::describe(OP, &e))?;
    Ok(())
}

#[async_trait]
impl Storage for PgStorage {
    async fn create_user(
        &self,
        user: &UserId,
        identity_key: &[u8; 32],
        first_device: &DeviceRecord,
        now: Millis,
    ) -> Result<(), StoreError> {
        retrying(|| accounts::create_user(&self.pool, user, identity_key, first_device, now)).await
    }

    async fn identity_key(&self, user: &UserId) -> Result<Option<[u8; 32]>, StoreError> {
        retrying(|| accounts::identity_key(&self.pool, user)).await
    }

    async fn devices(&self, user: &UserId) -> Result<Vec<DeviceRecord>, StoreError> {
        retrying(|| accounts::devices(&self.pool, user)).await
    }

    async fn device(&self, device: &DeviceAddress) -> Result<Option<DeviceRecord>, StoreError> {
        retrying(|| accounts::device(&self.pool, device)).await
    }

    async fn add_device(&self, record: &DeviceRecord, max: usize, now: Millis) -> Result<(), StoreError> {
        retrying(|| accounts::add_device(&self.pool, record, max, now)).await
    }

    async fn revoke_device(&self, device: &DeviceAddress) -> Result<(), StoreError> {
        retrying(|| accounts::revoke_device(&self.pool, device)).await
    }

    async fn delete_user(&self, user: &UserId, reserved_until: Millis) -> Result<(), StoreError> {
        retrying(|| accounts::delete_user(&self.pool, user, reserved_until)).await
    }

    async fn add_key_packages(
        &self,
        device: &DeviceAddress,
        packages: &[KeyPackageRow],
        last_resort: Option<&KeyPackageRow>,
    ) -> Result<u32, StoreError> {
        retrying(|| accounts::add_key_packages(&self.pool, device, packages, last_resort)).await
    }

    async fn claim_key_packages(
        &self,
        user: &UserId,
        except: Option<&DeviceAddress>,
    ) -> Result<Vec<Claimed>, StoreError> {
        retrying(|| accounts::claim_key_packages(&self.pool, user, except)).await
    }

    async fn key_package_count(&self, device: &DeviceAddress) -> Result<u32, StoreError> {
        retrying(|| accounts::key_package_count(&self.pool, device)).await
    }

    async fn create_channel(
        &self,
        channel: &ChannelId,
        creator: &DeviceAddress,
        now: Millis,
    ) -> Result<ChannelRow, StoreError> {
        retrying(|| messaging::create_channel(&self.pool, channel, creator, now)).await
    }

    async fn channel(&self, channel: &ChannelId) -> Result<Option<ChannelRow>, StoreError> {
        retrying(|| messaging::channel(&self.pool, channel)).await
    }

    async fn commit(&self, input: &CommitInput) -> Result<CommitOutcome, StoreError> {
        let (outcome, woken) = retrying(|| messaging::commit(&self.pool, self.node, input)).await?;
        self.wake_all(woken);
        Ok(outcome)
    }

    async fn enqueue(&self, input: &EnqueueInput) -> Result<EnqueueOutcome, StoreError> {
        let (outcome, woken) = retrying(|| messaging::enqueue(&self.pool, self.node, input)).await?;
        self.wake_all(woken);
        Ok(outcome)
    }

    async fn fetch(
        &self,
        device: &DeviceAddress,
        after: u64,
        limit: u32,
        now: Millis,
    ) -> Result<Vec<Envelope>, StoreError> {
        retrying(|| messaging::fetch(&self.pool, device, after, limit, now)).await
    }

    async fn ack(&self, device: &DeviceAddress, up_to: u64) -> Result<(), StoreError> {
        retrying(|| messaging::ack(&self.pool, device, up_to)).await
    }

    async fn create_blob(&self, blob: &BlobRow, owner: &DeviceAddress, now: Millis) -> Result<(), StoreError> {
        retrying(|| blobs::create_blob(&self.pool, blob, owner, now)).await
    }

    async fn blob(&self, id: &[u8; 16], now: Millis) -> Result<Option<BlobRow>, StoreError> {
        retrying(|| blobs::blob(&self.pool, id, now)).await
    }

    async fn put_chunk(&self, id: &[u8; 16], index: u32, data: &[u8], now: Millis) -> Result<BlobRow, StoreError> {
        retrying(|| blobs::put_chunk(&self.pool, id, index, data, now)).await
    }

    async fn get_chunk(&self, id: &[u8; 16], index: u32, now: Millis) -> Result<Option<Vec<u8>>, StoreError> {
        retrying(|| blobs::get_chunk(&self.pool, id, index, now)).await
    }

    async fn expire(&self, now: Millis, records_before: Millis) -> Result<ExpiryStats, StoreError> {
        retrying(|| expiry::expire(&self.pool, now, records_before)).await
    }

    fn wakeups(&self) -> broadcast::Receiver<DeviceAddress> {
        self.wake.subscribe()
    }
}
