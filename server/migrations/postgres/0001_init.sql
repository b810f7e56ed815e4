-- quicproquo server schema (PostgreSQL). Everything stored is ciphertext or routing metadata.
-- Times are milliseconds since the Unix epoch; 0 in an expiry column means "never".

-- Registered identities. Rows are locked to serialise device additions per user.
CREATE TABLE users (
    name         TEXT   NOT NULL PRIMARY KEY,
    identity_key BYTEA  NOT NULL,
    created_at   BIGINT NOT NULL
);

-- Names of deleted users, refused to new registrations until reserved_until.
CREATE TABLE reserved_names (
    name           TEXT   NOT NULL PRIMARY KEY,
    reserved_until BIGINT NOT NULL
);

-- Devices. `id` is internal (foreign keys, lock order); `last_seq` is the device's
-- delivery-queue counter, bumped under the row lock so sequence numbers commit in order.
CREATE TABLE devices (
    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_name  TEXT   NOT NULL REFERENCES users (name) ON DELETE CASCADE,
    device_id  BYTEA  NOT NULL,
    device_key BYTEA  NOT NULL,
    signed_at  BIGINT NOT NULL,
    signature  BYTEA  NOT NULL,
    added_at   BIGINT NOT NULL,
    last_seq   BIGINT NOT NULL DEFAULT 0,
    UNIQUE (user_name, device_id)
);

-- Key packages: one-time ones (handed out once, oldest first) and at most one last-resort
-- package per device.
CREATE TABLE key_packages (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    device      BIGINT  NOT NULL REFERENCES devices (id) ON DELETE CASCADE,
    hash        BYTEA   NOT NULL,
    data        BYTEA   NOT NULL,
    last_resort BOOLEAN NOT NULL
);
CREATE UNIQUE INDEX key_packages_one_time_hash ON key_packages (hash) WHERE NOT last_resort;
CREATE UNIQUE INDEX key_packages_last_resort ON key_packages (device) WHERE last_resort;
CREATE INDEX key_packages_by_device ON key_packages (device, last_resort, id);

-- Hashes of one-time key packages already handed out; they are never accepted again.
CREATE TABLE claimed_key_packages (
    hash BYTEA NOT NULL PRIMARY KEY
);

-- Channels (MLS groups). The row lock serialises commits: one commit per epoch.
CREATE TABLE channels (
    id             BYTEA  NOT NULL PRIMARY KEY,
    epoch          BIGINT NOT NULL,
    created_at     BIGINT NOT NULL,
    creator_user   TEXT   NOT NULL,
    creator_device BYTEA  NOT NULL
);

CREATE TABLE channel_members (
    channel BYTEA  NOT NULL REFERENCES channels (id) ON DELETE CASCADE,
    device  BIGINT NOT NULL REFERENCES devices (id) ON DELETE CASCADE,
    PRIMARY KEY (channel, device)
);
CREATE INDEX channel_members_by_device ON channel_members (device);

-- Per-device delivery queues.
CREATE TABLE envelopes (
    device        BIGINT   NOT NULL REFERENCES devices (id) ON DELETE CASCADE,
    seq           BIGINT   NOT NULL,
    channel       BYTEA    NOT NULL,
    sender_user   TEXT     NOT NULL,
    sender_device BYTEA    NOT NULL,
    kind          SMALLINT NOT NULL,
    payload       BYTEA    NOT NULL,
    server_time   BIGINT   NOT NULL,
    expires_at    BIGINT   NOT NULL,
    PRIMARY KEY (device, seq)
);
CREATE INDEX envelopes_by_expiry ON envelopes (expires_at) WHERE expires_at > 0;

-- Idempotency records of accepted enqueues (kind 0) and commits (kind 1).
CREATE TABLE sent_messages (
    sender_user   TEXT     NOT NULL,
    sender_device BYTEA    NOT NULL,
    client_msg_id BYTEA    NOT NULL,
    kind          SMALLINT NOT NULL,
    channel       BYTEA    NOT NULL,
    epoch         BIGINT   NOT NULL,
    server_time   BIGINT   NOT NULL,
    PRIMARY KEY (sender_user, sender_device, client_msg_id, kind)
);
CREATE INDEX sent_messages_by_time ON sent_messages (server_time);

-- Encrypted files, uploaded in chunks.
CREATE TABLE blobs (
    id            BYTEA  NOT NULL PRIMARY KEY,
    channel       BYTEA  NOT NULL REFERENCES channels (id) ON DELETE CASCADE,
    size          BIGINT NOT NULL,
    chunk_size    BIGINT NOT NULL,
    chunks_stored BIGINT NOT NULL,
    expires_at    BIGINT NOT NULL,
    owner_user    TEXT   NOT NULL REFERENCES users (name) ON DELETE CASCADE,
    owner_device  BYTEA  NOT NULL,
    created_at    BIGINT NOT NULL
);
CREATE INDEX blobs_by_expiry ON blobs (expires_at) WHERE expires_at > 0;
CREATE INDEX blobs_by_owner ON blobs (owner_user);
CREATE INDEX blobs_by_channel ON blobs (channel);

CREATE TABLE blob_chunks (
    blob BYTEA  NOT NULL REFERENCES blobs (id) ON DELETE CASCADE,
    idx  BIGINT NOT NULL,
    data BYTEA  NOT NULL,
    PRIMARY KEY (blob, idx)
);
