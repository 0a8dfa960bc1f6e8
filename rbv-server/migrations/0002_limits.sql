-- rbv serve: credits reserved up front and settled on completion, what an
-- upload holds (read at upload without decoding), retention.
-- Portable SQL: BIGINT and DOUBLE PRECISION columns, plain ALTER TABLE.

-- Per key: credits charged so far and credits held by queued or running jobs.
ALTER TABLE api_keys ADD COLUMN credits_used DOUBLE PRECISION NOT NULL DEFAULT 0;
ALTER TABLE api_keys ADD COLUMN credits_reserved DOUBLE PRECISION NOT NULL DEFAULT 0;
UPDATE api_keys SET credits_used =
    (SELECT COALESCE(SUM(credits), 0) FROM usage_events WHERE usage_events.key_id = api_keys.id);

-- Per job: what it holds of its key's credits (NULL: nothing yet) and the
-- media time that covers.
ALTER TABLE jobs ADD COLUMN reserved_credits DOUBLE PRECISION;
ALTER TABLE jobs ADD COLUMN reserved_seconds DOUBLE PRECISION;
-- Set when the retention sweep removed the output file.
ALTER TABLE jobs ADD COLUMN output_removed_at BIGINT;

-- What the upload's packets say (no frame decoded), and its removal.
ALTER TABLE uploads ADD COLUMN width BIGINT;
ALTER TABLE uploads ADD COLUMN height BIGINT;
ALTER TABLE uploads ADD COLUMN frames BIGINT;
ALTER TABLE uploads ADD COLUMN seconds DOUBLE PRECISION;
ALTER TABLE uploads ADD COLUMN removed_at BIGINT;
CREATE INDEX uploads_by_key ON uploads(key_id, created_at);
