-- Blocking: `blocker`'s account blocks the user `blocked` (any name@domain, registered or
-- not, of this server or another). The node drops what `blocked` sends to the blocker's
-- devices in a conversation of the two accounts only and refuses their commits adding the
-- blocker's devices; every device of the blocker reads the same list. The rows go with the
-- blocker's account; they stay when the blocked account is deleted (its name may come back).
CREATE TABLE blocks (
    blocker    TEXT   NOT NULL REFERENCES users (name) ON DELETE CASCADE,
    blocked    TEXT   NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (blocker, blocked)
);
