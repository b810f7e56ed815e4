//! The argument lists of statements that both dialects write alike but for their
//! placeholders (`?` in SQLite, `$n` in PostgreSQL). Each list is bound here once, in the
//! order its statement names the columns; the backends keep only the SQL text and how they
//! run it.

use qpq_proto::{DeviceAddress, DeviceRecord, UserId};
use sqlx::query::{Query, QueryAs, QueryScalar};
use sqlx::{Database, Encode, Type};

use super::backend::Outgoing;
use super::rows::{int, kind_code};
use super::{BlobRow, KeyPackageRow, Millis};

/// The column types the shared lists bind, for any sqlx database that has them.
pub(super) trait Binds<'q>: Sized {
    fn text(self, v: &'q str) -> Self;
    fn bytes(self, v: &'q [u8]) -> Self;
    fn int(self, v: i64) -> Self;
    fn small(self, v: i16) -> Self;
}

/// `Binds` for a statement type of sqlx whose `bind` takes any encodable value.
macro_rules! binds_by_bind {
    ($($generics:ident),* => $ty:ty) => {
        impl<'q, DB: Database, $($generics),*> Binds<'q> for $ty
        where
            &'q str: Encode<'q, DB> + Type<DB>,
            &'q [u8]: Encode<'q, DB> + Type<DB>,
            i64: Encode<'q, DB> + Type<DB>,
            i16: Encode<'q, DB> + Type<DB>,
        {
            fn text(self, v: &'q str) -> Self {
                self.bind(v)
            }
            fn bytes(self, v: &'q [u8]) -> Self {
                self.bind(v)
            }
            fn int(self, v: i64) -> Self {
                self.bind(v)
            }
            fn small(self, v: i16) -> Self {
                self.bind(v)
            }
        }
    };
}

binds_by_bind!(=> Query<'q, DB, <DB as Database>::Arguments<'q>>);
binds_by_bind!(O => QueryAs<'q, DB, O, <DB as Database>::Arguments<'q>>);
binds_by_bind!(O => QueryScalar<'q, DB, O, <DB as Database>::Arguments<'q>>);

/// `sent_messages (sender_user, sender_device, client_msg_id, kind, channel, epoch, server_time)`.
pub(super) fn sent_message<'q, Q: Binds<'q>>(
    q: Q,
    m: &'q Outgoing<'_>,
    client_msg_id: &'q [u8; 16],
    kind: i16,
    epoch: u64,
) -> Q {
    q.text(m.sender.user.as_str())
        .bytes(&m.sender.device.0[..])
        .bytes(&client_msg_id[..])
        .small(kind)
        .bytes(m.channel.as_bytes())
        .int(int(epoch))
        .int(int(m.now))
}

/// A sent message's key: `sender_user, sender_device, client_msg_id, kind`.
pub(super) fn sent_key<'q, Q: Binds<'q>>(q: Q, sender: &'q DeviceAddress, client_msg_id: &'q [u8; 16], kind: i16) -> Q {
    q.text(sender.user.as_str()).bytes(&sender.device.0[..]).bytes(&client_msg_id[..]).small(kind)
}

/// `key_packages (device, hash, data)`.
pub(super) fn key_package<'q, Q: Binds<'q>>(q: Q, device: i64, package: &'q KeyPackageRow) -> Q {
    q.int(device).bytes(&package.hash[..]).bytes(&package.data[..])
}

/// `blobs (id, channel, size, chunk_size, expires_at, owner_user, owner_device, created_at)`.
pub(super) fn blob<'q, Q: Binds<'q>>(q: Q, blob: &'q BlobRow, owner: &'q DeviceAddress, now: Millis) -> Q {
    q.bytes(&blob.id[..])
        .bytes(blob.channel.as_bytes())
        .int(int(blob.size))
        .int(i64::from(blob.chunk_size))
        .int(int(blob.expires_at))
        .text(owner.user.as_str())
        .bytes(&owner.device.0[..])
        .int(int(now))
}

/// `users (name, identity_key, created_at)`.
pub(super) fn user<'q, Q: Binds<'q>>(q: Q, user: &'q UserId, identity_key: &'q [u8; 32], now: Millis) -> Q {
    q.text(user.as_str()).bytes(&identity_key[..]).int(int(now))
}

/// A device's queue window: `user_name, device_id`, after `seq`, unexpired at `now`, at most
/// `limit` envelopes and `max_bytes` of payload.
pub(super) fn envelope_window<'q, Q: Binds<'q>>(
    q: Q,
    device: &'q DeviceAddress,
    after: u64,
    now: Millis,
    limit: u32,
    max_bytes: u64,
) -> Q {
    q.text(device.user.as_str())
        .bytes(&device.device.0[..])
        .int(int(after))
        .int(int(now))
        .int(i64::from(limit))
        .int(int(max_bytes))
}

/// `devices (user_name, device_id, device_key, signed_at, signature, added_at)`.
pub(super) fn device<'q, Q: Binds<'q>>(q: Q, record: &'q DeviceRecord, now: Millis) -> Q {
    q.text(record.user.as_str())
        .bytes(&record.device_id.0[..])
        .bytes(&record.device_key[..])
        .int(int(record.created_at))
        .bytes(&record.signature[..])
        .int(int(now))
}

/// An envelope's columns after its device and sequence number: `channel, kind, payload,
/// server_time, expires_at` (no sender: MLS authenticates it to the receivers).
pub(super) fn envelope<'q, Q: Binds<'q>>(q: Q, m: &'q Outgoing<'_>) -> Q {
    q.bytes(m.channel.as_bytes())
        .small(kind_code(m.kind))
        .bytes(m.payload)
        .int(int(m.now))
        .int(int(m.expires_at))
}

/// A link slot, its account and a time, in that order: the first columns of a new slot
/// (`slot, user_name, created_at`) and the test of a slot open for one account (`slot = ? AND
/// user_name = ? AND expires_at > ?`).
pub(super) fn slot_user_time<'q, Q: Binds<'q>>(q: Q, slot: &'q [u8; 32], user: &'q UserId, now: Millis) -> Q {
    q.bytes(&slot[..]).text(user.as_str()).int(int(now))
}
