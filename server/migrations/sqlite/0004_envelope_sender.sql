-- Queued envelopes no longer name their sender: MLS authenticates every sender to the
-- receivers, so a copy per recipient device of who sent what is metadata the node does not
-- need. Idempotency records (`sent_messages`) keep the sender: a retry is recognised by it,
-- and they are pruned after 7 days.
ALTER TABLE envelopes DROP COLUMN sender_user;
ALTER TABLE envelopes DROP COLUMN sender_device;
