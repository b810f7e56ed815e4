-- When each claimed key package was handed out, so its hash can be forgotten once the
-- package's own lifetime has passed (a client refuses an expired package anyway). Hashes
-- recorded before this column existed count as claimed at time 0 and go at the next expiry.
ALTER TABLE claimed_key_packages ADD COLUMN claimed_at BIGINT NOT NULL DEFAULT 0;
CREATE INDEX claimed_key_packages_by_time ON claimed_key_packages (claimed_at);
