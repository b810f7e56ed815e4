-- Web Push (RFC 8030): each device's subscription, the pushes waiting to be sent, and the
-- cluster's VAPID key (RFC 8292). Nothing here is message content.

-- A device's push subscription as its browser gave it. `notified` is true from a sent push
-- until the device next acknowledges its queue: later messages ride on that wake-up.
CREATE TABLE push_subscriptions (
    device     BIGINT  NOT NULL PRIMARY KEY REFERENCES devices (id) ON DELETE CASCADE,
    endpoint   TEXT    NOT NULL,
    p256dh     BYTEA   NOT NULL,
    auth       BYTEA   NOT NULL,
    updated_at BIGINT  NOT NULL,
    notified   BOOLEAN NOT NULL DEFAULT FALSE
);

-- At most one waiting push per device (coalescing): due at `due_at`, tried `attempts` times.
-- A sender that claims it moves `due_at` to the end of its lease.
CREATE TABLE push_pending (
    device   BIGINT NOT NULL PRIMARY KEY REFERENCES push_subscriptions (device) ON DELETE CASCADE,
    due_at   BIGINT NOT NULL,
    attempts BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX push_pending_by_due ON push_pending (due_at);

-- The cluster's one VAPID key pair (P-256): created by the first node that needs it.
CREATE TABLE vapid_keys (
    id          SMALLINT NOT NULL PRIMARY KEY CHECK (id = 1),
    private_key BYTEA    NOT NULL,
    public_key  BYTEA    NOT NULL,
    created_at  BIGINT   NOT NULL
);
