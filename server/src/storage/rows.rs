//! Conversions between column values and domain types, and the error mapping, shared by both
//! backends.
//!
//! Integers are stored signed (`i64`, envelope and record kinds `i16`): values from callers
//! are clamped into range (never wrapped) and values read back are checked, so corrupt rows
//! become `Backend` errors instead of panics. Driver errors are reported by operation and
//! kind of failure, never with the data involved.

use qpq_proto::{ChannelId, DeviceAddress, DeviceId, DeviceRecord, Envelope, EnvelopeKind, UserId};

use super::{BlobRow, DeviceAbout, PushJob, PushSubscription, StoreError};

/// A device record as selected: user, device id, device key, signed time, signature.
pub(super) type DeviceCols = (String, Vec<u8>, Vec<u8>, i64, Vec<u8>);

/// A device record with what its account's devices learn of it, as selected: the columns of
/// [`DeviceCols`], then label (NULL when none) and last login.
pub(super) type DeviceAboutCols = (String, Vec<u8>, Vec<u8>, i64, Vec<u8>, Option<Vec<u8>>, i64);

/// The columns of an envelope, in the order the queries select them.
pub(super) type EnvelopeCols = (i64, Vec<u8>, i16, Vec<u8>, i64, i64);

/// A channel joined with one of its members: epoch, created at, member user and device
/// (NULL when the channel has no members).
pub(super) type ChannelMemberCols = (i64, i64, Option<String>, Option<Vec<u8>>);

/// The columns of a blob: id, channel, size, chunk size, chunks stored, expiry.
pub(super) type BlobCols = (Vec<u8>, Vec<u8>, i64, i64, i64, i64);

/// A push subscription as selected: endpoint, p256dh, auth.
pub(super) type PushSubCols = (String, Vec<u8>, Vec<u8>);

/// A waiting push as selected: device key, attempts, endpoint, p256dh, auth.
pub(super) type PushJobCols = (i64, i64, String, Vec<u8>, Vec<u8>);

/// A device's address as selected: user, device id.
pub(super) type AddressCols = (String, Vec<u8>);

/// Idempotency records of enqueues and of commits live side by side, told apart by kind.
pub(super) const SENT_APPLICATION: i16 = 0;
/// See [`SENT_APPLICATION`].
pub(super) const SENT_COMMIT: i16 = 1;

/// Why one attempt at a transaction failed (crate-internal: `rows` is a private module).
#[derive(Debug)]
pub enum TxError {
    /// A refusal to report as it is.
    Refused(StoreError),
    /// A driver error, retried when the backend's rules say so.
    Db(&'static str, sqlx::Error),
    /// An error of the embedded SQLite backend, which never retries (its one writer never
    /// conflicts).
    Sqlite(&'static str, rusqlite::Error),
}

impl From<StoreError> for TxError {
    fn from(e: StoreError) -> Self {
        TxError::Refused(e)
    }
}

/// Tags a driver error with the operation that failed.
pub(super) fn db(op: &'static str) -> impl FnOnce(sqlx::Error) -> TxError {
    move |e| TxError::Db(op, e)
}

/// Tags an error of the embedded SQLite backend with the operation that failed.
pub(super) fn sqlite(op: &'static str) -> impl FnOnce(rusqlite::Error) -> TxError {
    move |e| TxError::Sqlite(op, e)
}

/// `Backend` for an error of the embedded SQLite backend, as [`describe`] does for sqlx's
/// (SQLite's messages can name values, so only the error code is kept).
pub(super) fn describe_sqlite(op: &'static str, e: &rusqlite::Error) -> StoreError {
    StoreError::Backend(sqlite_failure(op, e))
}

/// The text of [`describe_sqlite`]: the operation and the kind of failure.
pub(super) fn sqlite_failure(op: &'static str, e: &rusqlite::Error) -> String {
    let what = match e {
        rusqlite::Error::SqliteFailure(failure, _) => {
            format!("the database refused the statement (code {})", failure.extended_code)
        }
        rusqlite::Error::FromSqlConversionFailure(..)
        | rusqlite::Error::IntegralValueOutOfRange(..)
        | rusqlite::Error::InvalidColumnType(..) => "a stored value has an unexpected type".to_owned(),
        _ => "unexpected database failure".to_owned(),
    };
    format!("{op}: {what}")
}

/// `Backend`, naming the operation and the kind of failure but never the data involved
/// (databases' messages and details can quote values, so only the error code is kept).
pub(super) fn describe(op: &'static str, e: &sqlx::Error) -> StoreError {
    let what = match e {
        sqlx::Error::Database(d) => match d.code() {
            Some(code) => format!("the database refused the statement (code {code})"),
            None => "the database refused the statement".to_owned(),
        },
        sqlx::Error::PoolTimedOut => "timed out waiting for a connection".to_owned(),
        sqlx::Error::PoolClosed => "the storage is closed".to_owned(),
        sqlx::Error::Io(_) => "I/O failure".to_owned(),
        sqlx::Error::Tls(_) => "the connection to the database failed".to_owned(),
        sqlx::Error::ColumnDecode { .. } | sqlx::Error::Decode(_) => "a stored value has an unexpected type".to_owned(),
        _ => "unexpected database failure".to_owned(),
    };
    StoreError::Backend(format!("{op}: {what}"))
}

/// A corrupt row: something the schema should have prevented.
pub(super) fn corrupt(op: &'static str) -> StoreError {
    StoreError::Backend(format!("{op}: a stored row is malformed"))
}

/// A `u64` from a caller as a column value, clamped to `i64::MAX`.
pub(super) fn int(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// A column value as `u64`; negative values are corrupt.
pub(super) fn uint(v: i64, op: &'static str) -> Result<u64, StoreError> {
    u64::try_from(v).map_err(|_| corrupt(op))
}

/// A column value as `u32`.
pub(super) fn uint32(v: i64, op: &'static str) -> Result<u32, StoreError> {
    u32::try_from(v).map_err(|_| corrupt(op))
}

/// A count as `u32`, saturating.
pub(super) fn count32(v: i64) -> u32 {
    u32::try_from(v).unwrap_or(u32::MAX)
}

/// A column value as a fixed-size array.
pub(super) fn fixed<const N: usize>(v: Vec<u8>, op: &'static str) -> Result<[u8; N], StoreError> {
    <[u8; N]>::try_from(v).map_err(|_| corrupt(op))
}

/// A stored user name.
pub(super) fn user(name: &str, op: &'static str) -> Result<UserId, StoreError> {
    UserId::parse(name).map_err(|_| corrupt(op))
}

/// A stored device address.
pub(super) fn address(cols: AddressCols, op: &'static str) -> Result<DeviceAddress, StoreError> {
    let (name, device) = cols;
    Ok(DeviceAddress { user: user(&name, op)?, device: DeviceId(fixed(device, op)?) })
}

/// A stored device record.
pub(super) fn device_record(cols: DeviceCols, op: &'static str) -> Result<DeviceRecord, StoreError> {
    let (name, device_id, device_key, signed_at, signature) = cols;
    Ok(DeviceRecord {
        user: user(&name, op)?,
        device_id: DeviceId(fixed(device_id, op)?),
        device_key: fixed(device_key, op)?,
        created_at: uint(signed_at, op)?,
        signature: fixed(signature, op)?,
    })
}

/// A stored device record with its label and last login.
pub(super) fn device_about(cols: DeviceAboutCols, op: &'static str) -> Result<(DeviceRecord, DeviceAbout), StoreError> {
    let (name, device_id, device_key, signed_at, signature, label, last_login) = cols;
    let record = device_record((name, device_id, device_key, signed_at, signature), op)?;
    Ok((record, DeviceAbout { label, last_login: uint(last_login, op)? }))
}

/// A stored envelope.
pub(super) fn envelope(cols: EnvelopeCols, op: &'static str) -> Result<Envelope, StoreError> {
    let (seq, channel, kind, payload, server_time, expires_at) = cols;
    Ok(Envelope {
        seq: uint(seq, op)?,
        channel: ChannelId::from_slice(&channel).map_err(|_| corrupt(op))?,
        kind: kind_from_code(kind).ok_or_else(|| corrupt(op))?,
        payload,
        server_time: uint(server_time, op)?,
        expires_at: uint(expires_at, op)?,
    })
}

/// A stored blob's metadata.
pub(super) fn blob_row(cols: BlobCols, op: &'static str) -> Result<BlobRow, StoreError> {
    let (id, channel, size, chunk_size, chunks_stored, expires_at) = cols;
    Ok(BlobRow {
        id: fixed(id, op)?,
        channel: ChannelId::from_slice(&channel).map_err(|_| corrupt(op))?,
        size: uint(size, op)?,
        chunk_size: uint32(chunk_size, op)?,
        chunks_stored: uint32(chunks_stored, op)?,
        expires_at: uint(expires_at, op)?,
    })
}

/// The stored code of an envelope kind.
pub(super) fn kind_code(kind: EnvelopeKind) -> i16 {
    match kind {
        EnvelopeKind::Application => 0,
        EnvelopeKind::Commit => 1,
        EnvelopeKind::Welcome => 2,
        EnvelopeKind::Proposal => 3,
        EnvelopeKind::Devices => 4,
        EnvelopeKind::Account => 5,
    }
}

fn kind_from_code(code: i16) -> Option<EnvelopeKind> {
    match code {
        0 => Some(EnvelopeKind::Application),
        1 => Some(EnvelopeKind::Commit),
        2 => Some(EnvelopeKind::Welcome),
        3 => Some(EnvelopeKind::Proposal),
        4 => Some(EnvelopeKind::Devices),
        5 => Some(EnvelopeKind::Account),
        _ => None,
    }
}

/// A push subscription from its columns.
pub(super) fn push_subscription((endpoint, p256dh, auth): PushSubCols, op: &'static str) -> Result<PushSubscription, StoreError> {
    Ok(PushSubscription {
        endpoint,
        p256dh: p256dh.try_into().map_err(|_| corrupt(op))?,
        auth: auth.try_into().map_err(|_| corrupt(op))?,
    })
}

/// A claimed push from its columns.
pub(super) fn push_job((id, attempts, endpoint, p256dh, auth): PushJobCols, op: &'static str) -> Result<PushJob, StoreError> {
    Ok(PushJob {
        id,
        subscription: push_subscription((endpoint, p256dh, auth), op)?,
        attempts: u32::try_from(attempts).map_err(|_| corrupt(op))?,
    })
}
