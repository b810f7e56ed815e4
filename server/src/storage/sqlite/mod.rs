//! The SQLite backend: one embedded database file for a single-node server.
//!
//! All writes go through one connection and begin `IMMEDIATE`, so write transactions are
//! serialised in-process and never fail with `SQLITE_BUSY` half-way; reads use a separate
//! read-only pool and see WAL snapshots, so they never wait for writers. Wake-ups are an
//! in-process broadcast sent after each commit. It does not support several processes
//! sharing the file: use PostgreSQL for that.

mod accounts;
mod blobs;
mod expiry;
mod messaging;
mod rows;

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use qpq_proto::{ChannelId, DeviceAddress, DeviceRecord, Envelope, UserId};
use sqlx::migrate::Migrator;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Sqlite, Transaction};
use tokio::sync::broadcast;

use super::{
    BlobRow, ChannelRow, Claimed, CommitInput, CommitOutcome, EnqueueInput, EnqueueOutcome, ExpiryStats, KeyPackageRow,
    Millis, Storage, StoreError,
};
use rows::db;

static MIGRATOR: Migrator = sqlx::migrate!("./migrations/sqlite");

/// How many wake-ups a slow subscriber may fall behind before it misses some.
const WAKE_CAPACITY: usize = 4096;

/// How long a connection waits for a lock held by something outside this process (a backup
/// tool, say) before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// Storage in one SQLite file (WAL mode, foreign keys on).
pub struct SqliteStorage {
    writer: SqlitePool,
    reader: SqlitePool,
    wake: broadcast::Sender<DeviceAddress>,
}

impl SqliteStorage {
    /// Opens (creating if missing) the database at `path` and runs the migrations.
    /// `:memory:` gives a private in-memory database on a single connection.
    pub async fn open(path: &str) -> Result<Self, StoreError> {
        if path.is_empty() {
            return Err(StoreError::Config("sqlite:// needs a file path, e.g. sqlite://qpq.db".into()));
        }
        let in_memory = path == ":memory:";
        let base = if in_memory {
            SqliteConnectOptions::from_str("sqlite::memory:").map_err(db("open database"))?
        } else {
            SqliteConnectOptions::new().filename(path)
        };
        let write_options = base
            .clone()
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(BUSY_TIMEOUT);
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(write_options)
            .await
            .map_err(db("open database"))?;
        MIGRATOR.run(&writer).await.map_err(|e| StoreError::Backend(format!("migrate database: {e}")))?;
        let reader = if in_memory {
            writer.clone()
        } else {
            SqlitePoolOptions::new()
                .max_connections(4)
                .connect_with(base.read_only(true).busy_timeout(BUSY_TIMEOUT))
                .await
                .map_err(db("open database for reading"))?
        };
        let (wake, _) = broadcast::channel(WAKE_CAPACITY);
        Ok(SqliteStorage { writer, reader, wake })
    }

    /// Begins a write transaction holding the database's write lock from the start.
    async fn write(&self, op: &'static str) -> Result<Transaction<'static, Sqlite>, StoreError> {
        self.writer.begin_with("BEGIN IMMEDIATE").await.map_err(db(op))
    }

    /// Wakes the subscribers of `devices` (called after the commit that queued for them).
    fn wake_all(&self, devices: Vec<DeviceAddress>) {
        for device in devices {
            // No subscriber is not an error: envelopes wait in the queue.
            let _ = self.wake.send(device);
        }
    }
}

#[async_trait]
impl Storage for SqliteStorage {
    async fn create_user(
        &self,
        user: &UserId,
        identity_key: &[u8; 32],
        first_device: &DeviceRecord,
        now: Millis,
    ) -> Result<(), StoreError> {
        let mut tx = self.write("create user").await?;
        accounts::create_user(&mut tx, user, identity_key, first_device, now).await?;
        tx.commit().await.map_err(db("create user"))
    }

    async fn identity_key(&self, user: &UserId) -> Result<Option<[u8; 32]>, StoreError> {
        accounts::identity_key(&self.reader, user).await
    }

    async fn devices(&self, user: &UserId) -> Result<Vec<DeviceRecord>, StoreError> {
        accounts::devices(&self.reader, user).await
    }

    async fn device(&self, device: &DeviceAddress) -> Result<Option<DeviceRecord>, StoreError> {
        accounts::device(&self.reader, device).await
    }

    async fn add_device(&self, record: &DeviceRecord, max: usize, now: Millis) -> Result<(), StoreError> {
        let mut tx = self.write("add device").await?;
        accounts::add_device(&mut tx, record, max, now).await?;
        tx.commit().await.map_err(db("add device"))
    }

    async fn revoke_device(&self, device: &DeviceAddress) -> Result<(), StoreError> {
        let mut tx = self.write("revoke device").await?;
        accounts::revoke_device(&mut tx, device).await?;
        tx.commit().await.map_err(db("revoke device"))
    }

    async fn delete_user(&self, user: &UserId, reserved_until: Millis) -> Result<(), StoreError> {
        let mut tx = self.write("delete user").await?;
        accounts::delete_user(&mut tx, user, reserved_until).await?;
        tx.commit().await.map_err(db("delete user"))
    }

    async fn add_key_packages(
        &self,
        device: &DeviceAddress,
        packages: &[KeyPackageRow],
        last_resort: Option<&KeyPackageRow>,
    ) -> Result<u32, StoreError> {
        let mut tx = self.write("add key packages").await?;
        let left = accounts::add_key_packages(&mut tx, device, packages, last_resort).await?;
        tx.commit().await.map_err(db("add key packages"))?;
        Ok(left)
    }

    async fn claim_key_packages(
        &self,
        user: &UserId,
        except: Option<&DeviceAddress>,
    ) -> Result<Vec<Claimed>, StoreError> {
        let mut tx = self.write("claim key packages").await?;
        let claimed = accounts::claim_key_packages(&mut tx, user, except).await?;
        tx.commit().await.map_err(db("claim key packages"))?;
        Ok(claimed)
    }

    async fn key_package_count(&self, device: &DeviceAddress) -> Result<u32, StoreError> {
        accounts::key_package_count(&self.reader, device).await
    }

    async fn create_channel(
        &self,
        channel: &ChannelId,
        creator: &DeviceAddress,
        now: Millis,
    ) -> Result<ChannelRow, StoreError> {
        let mut tx = self.write("create channel").await?;
        let row = messaging::create_channel(&mut tx, channel, creator, now).await?;
        tx.commit().await.map_err(db("create channel"))?;
        Ok(row)
    }

    async fn channel(&self, channel: &ChannelId) -> Result<Option<ChannelRow>, StoreError> {
        let mut conn = self.reader.acquire().await.map_err(db("read channel"))?;
        messaging::channel(&mut conn, channel).await
    }

    async fn commit(&self, input: &CommitInput) -> Result<CommitOutcome, StoreError> {
        let mut tx = self.write("commit").await?;
        let (outcome, woken) = messaging::commit(&mut tx, input).await?;
        tx.commit().await.map_err(db("commit"))?;
        self.wake_all(woken);
        Ok(outcome)
    }

    async fn enqueue(&self, input: &EnqueueInput) -> Result<EnqueueOutcome, StoreError> {
        let mut tx = self.write("enqueue").await?;
        let (outcome, woken) = messaging::enqueue(&mut tx, input).await?;
        tx.commit().await.map_err(db("enqueue"))?;
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
        messaging::fetch(&self.reader, device, after, limit, now).await
    }

    async fn ack(&self, device: &DeviceAddress, up_to: u64) -> Result<(), StoreError> {
        let mut tx = self.write("acknowledge").await?;
        messaging::ack(&mut tx, device, up_to).await?;
        tx.commit().await.map_err(db("acknowledge"))
    }

    async fn create_blob(&self, blob: &BlobRow, owner: &DeviceAddress, now: Millis) -> Result<(), StoreError> {
        let mut tx = self.write("create blob").await?;
        blobs::create_blob(&mut tx, blob, owner, now).await?;
        tx.commit().await.map_err(db("create blob"))
    }

    async fn blob(&self, id: &[u8; 16], now: Millis) -> Result<Option<BlobRow>, StoreError> {
        let mut conn = self.reader.acquire().await.map_err(db("read blob"))?;
        blobs::blob(&mut conn, id, now).await
    }

    async fn put_chunk(&self, id: &[u8; 16], index: u32, data: &[u8], now: Millis) -> Result<BlobRow, StoreError> {
        let mut tx = self.write("store chunk").await?;
        let row = blobs::put_chunk(&mut tx, id, index, data, now).await?;
        tx.commit().await.map_err(db("store chunk"))?;
        Ok(row)
    }

    async fn get_chunk(&self, id: &[u8; 16], index: u32, now: Millis) -> Result<Option<Vec<u8>>, StoreError> {
        blobs::get_chunk(&self.reader, id, index, now).await
    }

    async fn expire(&self, now: Millis, records_before: Millis) -> Result<ExpiryStats, StoreError> {
        let mut tx = self.write("expire").await?;
        let stats = expiry::expire(&mut tx, now, records_before).await?;
        tx.commit().await.map_err(db("expire"))?;
        Ok(stats)
    }

    fn wakeups(&self) -> broadcast::Receiver<DeviceAddress> {
        self.wake.subscribe()
    }
}
