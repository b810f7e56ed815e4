-- The epoch the channel's latest added devices joined in (one past the epoch of the commit
-- that added them, as that commit's framing says): an application message of any earlier
-- epoch is one they cannot read, so an enqueue refuses it (stale_epoch) and the sender
-- encrypts it again. 0 for channels whose members all joined at creation.
ALTER TABLE channels ADD COLUMN joined_at INTEGER NOT NULL DEFAULT 0;
