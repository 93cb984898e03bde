-- Exec integration API: one webhook delivery cursor per client endpoint, and the
-- delivery log. Design in broker/core/webhooks.py and docs/api/webhooks.md.

-- One row per client that has a webhook URL. `acked_seq` is the last event (events.seq)
-- the endpoint acknowledged with a 2xx; the worker holding the lease sends the next one.
-- The lease is taken with UPDATE ... WHERE lease_expires_at < now, so that one worker
-- at a time, across processes, delivers to an endpoint.
CREATE TABLE webhook_endpoints (
    client_id        TEXT PRIMARY KEY REFERENCES clients(id) ON DELETE CASCADE,
    acked_seq        INTEGER NOT NULL DEFAULT 0,
    state            TEXT NOT NULL DEFAULT 'ok' CHECK (state IN ('ok', 'retrying', 'failing')),
    attempts         INTEGER NOT NULL DEFAULT 0,   -- consecutive failures of the head event
    first_failure_at REAL,                         -- when the head event first failed
    next_attempt_at  REAL NOT NULL DEFAULT 0,
    lease_owner      TEXT,
    lease_expires_at REAL NOT NULL DEFAULT 0,
    last_success_at  REAL,
    last_error       TEXT,
    created_at       REAL NOT NULL,
    updated_at       REAL NOT NULL
);

-- Every attempt, and manual re-sends (kind 'resend', 'pending' until the worker sends it).
CREATE TABLE webhook_deliveries (
    id               TEXT PRIMARY KEY,             -- dlv_...
    client_id        TEXT NOT NULL REFERENCES clients(id) ON DELETE CASCADE,
    event_seq        INTEGER NOT NULL,
    event_id         TEXT NOT NULL,
    event_type       TEXT NOT NULL,
    kind             TEXT NOT NULL CHECK (kind IN ('stream', 'resend')),
    status           TEXT NOT NULL CHECK (status IN ('pending', 'succeeded', 'failed')),
    attempt          INTEGER NOT NULL DEFAULT 1,
    url              TEXT,
    http_status      INTEGER,
    latency_ms       REAL,
    response_excerpt TEXT,                         -- first 500 bytes of the answer
    error            TEXT,
    created_at       REAL NOT NULL,
    finished_at      REAL
);
CREATE INDEX webhook_deliveries_by_client ON webhook_deliveries(client_id, created_at);
CREATE INDEX webhook_deliveries_pending ON webhook_deliveries(client_id, created_at)
    WHERE status = 'pending';
CREATE INDEX webhook_deliveries_by_time ON webhook_deliveries(created_at);
