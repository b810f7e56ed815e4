-- What an account's own devices learn of each of them besides its signed record: its label
-- (ciphertext the account's devices made, e.g. an encrypted "Chromium on Linux"; NULL when
-- it has none) and when it last logged in (ms since the Unix epoch; 0 before its first login
-- since this column exists). Neither is shown to anyone outside the account.
ALTER TABLE devices ADD COLUMN label BYTEA;
ALTER TABLE devices ADD COLUMN last_login BIGINT NOT NULL DEFAULT 0;
