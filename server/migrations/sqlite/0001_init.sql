-- quicproquo server schema (SQLite). Everything stored is ciphertext or routing metadata.
-- Times are milliseconds since the Unix epoch; 0 in an expiry column means "never".

-- Registered identities.
CREATE TABLE users (
    name         TEXT    NOT NULL PRIMARY KEY,
    identity_key BLOB    NOT NULL,
    created_at   INTEGER NOT NULL
) STRICT;

-- Names of deleted users, refused to new registrations until reserved_until.
CREATE TABLE reserved_names (
    name           TEXT    NOT NULL PRIMARY KEY,
    reserved_until INTEGER NOT NULL
) STRICT;

-- Devices. `id` is internal (foreign keys); `last_seq` is the device's delivery-queue counter.
CREATE TABLE devices (
    id         INTEGER PRIMARY KEY,
    user_name  TEXT    NOT NULL REFERENCES users (name) ON DELETE CASCADE,
    device_id  BLOB    NOT NULL,
    device_key BLOB    NOT NULL,
    signed_at  INTEGER NOT NULL,
    signature  BLOB    NOT NULL,
    added_at   INTEGER NOT NULL,
    last_seq   INTEGER NOT NULL DEFAULT 0,
    UNIQUE (user_name, device_id)
) STRICT;

-- Key packages: one-time ones (handed out once, oldest first) and at most one last-resort
-- package per device.
CREATE TABLE key_packages (
    id          INTEGER PRIMARY KEY,
    device      INTEGER NOT NULL REFERENCES devices (id) ON DELETE CASCADE,
    hash        BLOB    NOT NULL,
    data        BLOB    NOT NULL,
    last_resort INTEGER NOT NULL CHECK (last_resort IN (0, 1))
) STRICT;
CREATE UNIQUE INDEX key_packages_one_time_hash ON key_packages (hash) WHERE last_resort = 0;
CREATE UNIQUE INDEX key_packages_last_resort ON key_packages (device) WHERE last_resort = 1;
CREATE INDEX key_packages_by_device ON key_packages (device, last_resort, id);

-- Hashes of one-time key packages already handed out; they are never accepted again.
CREATE TABLE claimed_key_packages (
    hash BLOB NOT NULL PRIMARY KEY
) STRICT, WITHOUT ROWID;

-- Channels (MLS groups). The creator is remembered so a retried create is recognised.
CREATE TABLE channels (
    id             BLOB    NOT NULL PRIMARY KEY,
    epoch          INTEGER NOT NULL,
    created_at     INTEGER NOT NULL,
    creator_user   TEXT    NOT NULL,
    creator_device BLOB    NOT NULL
) STRICT;

CREATE TABLE channel_members (
    channel BLOB    NOT NULL REFERENCES channels (id) ON DELETE CASCADE,
    device  INTEGER NOT NULL REFERENCES devices (id) ON DELETE CASCADE,
    PRIMARY KEY (channel, device)
) STRICT, WITHOUT ROWID;
CREATE INDEX channel_members_by_device ON channel_members (device);

-- Per-device delivery queues.
CREATE TABLE envelopes (
    device        INTEGER NOT NULL REFERENCES devices (id) ON DELETE CASCADE,
    seq           INTEGER NOT NULL,
    channel       BLOB    NOT NULL,
    sender_user   TEXT    NOT NULL,
    sender_device BLOB    NOT NULL,
    kind          INTEGER NOT NULL,
    payload       BLOB    NOT NULL,
    server_time   INTEGER NOT NULL,
    expires_at    INTEGER NOT NULL,
    PRIMARY KEY (device, seq)
) STRICT;
CREATE INDEX envelopes_by_expiry ON envelopes (expires_at) WHERE expires_at > 0;

-- Idempotency records of accepted enqueues (kind 0) and commits (kind 1).
CREATE TABLE sent_messages (
    sender_user   TEXT    NOT NULL,
    sender_device BLOB    NOT NULL,
    client_msg_id BLOB    NOT NULL,
    kind          INTEGER NOT NULL,
    channel       BLOB    NOT NULL,
    epoch         INTEGER NOT NULL,
    server_time   INTEGER NOT NULL,
    PRIMARY KEY (sender_user, sender_device, client_msg_id, kind)
) STRICT, WITHOUT ROWID;
CREATE INDEX sent_messages_by_time ON sent_messages (server_time);

-- Encrypted files, uploaded in chunks.
CREATE TABLE blobs (
    id            BLOB    NOT NULL PRIMARY KEY,
    channel       BLOB    NOT NULL REFERENCES channels (id) ON DELETE CASCADE,
    size          INTEGER NOT NULL,
    chunk_size    INTEGER NOT NULL,
    chunks_stored INTEGER NOT NULL,
    expires_at    INTEGER NOT NULL,
    owner_user    TEXT    NOT NULL REFERENCES users (name) ON DELETE CASCADE,
    owner_device  BLOB    NOT NULL,
    created_at    INTEGER NOT NULL
) STRICT;
CREATE INDEX blobs_by_expiry ON blobs (expires_at) WHERE expires_at > 0;
CREATE INDEX blobs_by_owner ON blobs (owner_user);
CREATE INDEX blobs_by_channel ON blobs (channel);

CREATE TABLE blob_chunks (
    blob BLOB    NOT NULL REFERENCES blobs (id) ON DELETE CASCADE,
    idx  INTEGER NOT NULL,
    data BLOB    NOT NULL,
    PRIMARY KEY (blob, idx)
) STRICT;
