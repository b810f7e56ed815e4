-- Web Push (RFC 8030): each device's subscription, the pushes waiting to be sent, and the
-- cluster's VAPID key (RFC 8292). Nothing here is message content.

-- A device's push subscription as its browser gave it. `notified` is 1 from a sent push
-- until the device next acknowledges its queue: later messages ride on that wake-up.
CREATE TABLE push_subscriptions (
    device     INTEGER NOT NULL PRIMARY KEY REFERENCES devices (id) ON DELETE CASCADE,
    endpoint   TEXT    NOT NULL,
    p256dh     BLOB    NOT NULL,
    auth       BLOB    NOT NULL,
    updated_at INTEGER NOT NULL,
    notified   INTEGER NOT NULL DEFAULT 0 CHECK (notified IN (0, 1))
) STRICT;

-- At most one waiting push per device (coalescing): due at `due_at`, tried `attempts` times.
-- A sender that claims it moves `due_at` to the end of its lease.
CREATE TABLE push_pending (
    device   INTEGER NOT NULL PRIMARY KEY REFERENCES push_subscriptions (device) ON DELETE CASCADE,
    due_at   INTEGER NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0
) STRICT;
CREATE INDEX push_pending_by_due ON push_pending (due_at);

-- The cluster's one VAPID key pair (P-256): created by the first node that needs it.
CREATE TABLE vapid_keys (
    id          INTEGER NOT NULL PRIMARY KEY CHECK (id = 1),
    private_key BLOB    NOT NULL,
    public_key  BLOB    NOT NULL,
    created_at  INTEGER NOT NULL
) STRICT;
