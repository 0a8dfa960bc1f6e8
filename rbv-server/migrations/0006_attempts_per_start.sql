-- rbv serve: `--max-attempts` counts the runs of one start. A job started
-- again (after it failed) keeps its run numbers going up (a late run of an
-- earlier start must never pass for a new one) and remembers where this
-- start began. Portable SQL, as 0002.
ALTER TABLE jobs ADD COLUMN attempts_before BIGINT NOT NULL DEFAULT 0;
