-- rbv serve: the queue lives in the store, so any worker of any node can
-- take a job. A job names its worker pool; a worker that takes one holds a
-- lease (its node and a time), renews it while working, and a job whose
-- lease ran out (the node died, its network was cut) is taken again.
-- Portable SQL, as 0002.
ALTER TABLE jobs ADD COLUMN pool TEXT NOT NULL DEFAULT 'light';
UPDATE jobs SET pool = 'heavy' WHERE model IN ('pro', 'original');
ALTER TABLE jobs ADD COLUMN lease_owner TEXT;
ALTER TABLE jobs ADD COLUMN lease_until BIGINT;
CREATE INDEX jobs_by_pool ON jobs(pool, status, queued_at);
