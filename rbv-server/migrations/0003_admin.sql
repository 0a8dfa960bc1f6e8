-- rbv serve: what the /v1/admin key routes show of a key besides its name
-- (the client id): an operator's note and when it was last used (updated
-- at most once a minute). Portable SQL, as 0002.
ALTER TABLE api_keys ADD COLUMN note TEXT NOT NULL DEFAULT '';
ALTER TABLE api_keys ADD COLUMN last_used_at BIGINT;
