-- Linking a device: slots through which a new device and a device of the account exchange
-- ciphertext (the new device's request, the account device's answer). The node sees a slot
-- name derived from the link code (never the code) and ciphertext; a slot lives ten minutes
-- and is gone once its answer is read.
CREATE TABLE link_slots (
    slot       BYTEA  NOT NULL PRIMARY KEY CHECK (length(slot) = 32),
    user_name  TEXT   NOT NULL REFERENCES users (name) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    request    BYTEA,
    answer     BYTEA
);
CREATE INDEX link_slots_by_user ON link_slots (user_name, expires_at);
CREATE INDEX link_slots_by_expiry ON link_slots (expires_at);
