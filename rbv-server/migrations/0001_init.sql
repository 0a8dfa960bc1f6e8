-- rbv serve: the first schema. Times are Unix seconds (UTC).
CREATE TABLE settings (
    name  TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE api_keys (
    id         TEXT PRIMARY KEY,          -- key_<hex>, safe to log
    hash       TEXT NOT NULL UNIQUE,      -- hex SHA-256 of the secret
    name       TEXT NOT NULL,
    credits    REAL,                      -- NULL: no credit limit
    created_at INTEGER NOT NULL,
    revoked    INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE uploads (
    id           TEXT PRIMARY KEY,        -- the generated file name's stem
    key_id       TEXT NOT NULL REFERENCES api_keys(id),
    filename     TEXT NOT NULL,           -- the client's name, shown only
    content_type TEXT NOT NULL,
    size         INTEGER NOT NULL,
    path         TEXT NOT NULL,           -- generated, under the data directory
    created_at   INTEGER NOT NULL
);

CREATE TABLE jobs (
    id               TEXT PRIMARY KEY,
    key_id           TEXT NOT NULL REFERENCES api_keys(id),
    request_id       TEXT NOT NULL,       -- the request that created it
    video_url        TEXT NOT NULL,
    upload_id        TEXT REFERENCES uploads(id),
    status           TEXT NOT NULL,       -- created, pending, processing, completed, failed
    progress         REAL NOT NULL DEFAULT 0,
    settings         TEXT NOT NULL,       -- JSON: model, output_format, background, ...
    model            TEXT NOT NULL,
    output_format    TEXT NOT NULL,
    webhook_url      TEXT,
    metadata         TEXT,
    error            TEXT,
    output_file      TEXT,                -- generated, under the data directory
    duration_seconds REAL,
    credits_used     REAL,
    billing_status   TEXT,
    resolution       TEXT,
    processing_ms    INTEGER,
    attempts         INTEGER NOT NULL DEFAULT 0,
    created_at       INTEGER NOT NULL,
    queued_at        INTEGER,
    started_at       INTEGER,
    completed_at     INTEGER
);
CREATE INDEX jobs_by_key ON jobs(key_id, created_at);
CREATE INDEX jobs_by_status ON jobs(status, queued_at);

CREATE TABLE usage_events (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    key_id     TEXT NOT NULL,
    job_id     TEXT NOT NULL UNIQUE,      -- one charge per job
    model      TEXT NOT NULL,
    seconds    REAL NOT NULL,
    credits    REAL NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE INDEX usage_by_key ON usage_events(key_id, created_at);

CREATE TABLE webhook_events (
    id          TEXT PRIMARY KEY,         -- X-Webhook-Delivery-Id
    job_id      TEXT NOT NULL,
    event       TEXT NOT NULL,
    url         TEXT NOT NULL,
    body        TEXT NOT NULL,
    state       TEXT NOT NULL,            -- pending, delivered, failed
    attempts    INTEGER NOT NULL DEFAULT 0,
    last_status INTEGER,
    last_error  TEXT,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
);
CREATE INDEX webhooks_by_job ON webhook_events(job_id, created_at);
