-- rbv serve: a long job's segments. The worker that takes the job (its
-- coordinator) cuts it into frame ranges that any worker of the job's pool
-- takes, each under a lease of its own as jobs are, then joins their
-- lossless outputs into the job's one output. Segments belong to one start
-- of their job (start_mark: the job's attempts_before then); the worker
-- that did a segment stays in lease_owner. Portable SQL, as 0002.
CREATE TABLE segments (
    job_id      TEXT NOT NULL,
    idx         INTEGER NOT NULL,
    start_mark  INTEGER NOT NULL,
    first_frame INTEGER NOT NULL,
    end_frame   INTEGER,
    warm_up     INTEGER NOT NULL,
    pool        TEXT NOT NULL,
    status      TEXT NOT NULL,
    attempts    INTEGER NOT NULL DEFAULT 0,
    lease_owner TEXT,
    lease_until INTEGER,
    frames_done INTEGER NOT NULL DEFAULT 0,
    seconds     REAL,
    output_file TEXT,
    error       TEXT,
    queued_at   INTEGER NOT NULL,
    PRIMARY KEY (job_id, start_mark, idx)
);
CREATE INDEX segments_by_pool ON segments(pool, status, queued_at);
