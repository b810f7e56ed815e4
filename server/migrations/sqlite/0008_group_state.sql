-- The public state of a channel's MLS group (ratchet tree, group context, transcript hashes:
-- no secrets), which the node keeps to validate commits (server/src/group_state.rs). Written
-- at createChannel from the creator's GroupInfo and replaced by every accepted commit, in the
-- transaction that advances the channel's epoch. Channels created before this table existed
-- have no row; their commits get the framing checks only.
CREATE TABLE channel_groups (
    channel    BLOB NOT NULL PRIMARY KEY REFERENCES channels (id) ON DELETE CASCADE,
    state      BLOB NOT NULL,
    -- the GroupInfo of the current epoch a member handed in (putGroupInfo), for rejoins; NULL
    -- from each accepted commit until then
    group_info BLOB
) STRICT, WITHOUT ROWID;
