-- SAML service provider state shared by every worker (DESIGN §6, §8): the AuthnRequests we
-- issued (InResponseTo ↔ flow binding), the assertion-ID replay cache, the recent login
-- attempts per connection for the admin (ssoready's saml_flows), the metadata refresh
-- schedule with its lease, and the admin-managed allow-list of private hosts.
-- Append-only: never edit a migration that has shipped; add the next number.

-- One row per AuthnRequest sent (pysaml2 keeps these in memory; we keep them here so that
-- any worker can check an InResponseTo). Consumed once, by the first response that uses it.
CREATE TABLE saml_requests (
    request_id    TEXT PRIMARY KEY,             -- the AuthnRequest ID (xs:ID)
    connection_id TEXT NOT NULL,
    flow_id       TEXT NOT NULL,
    created_at    REAL NOT NULL,
    expires_at    REAL NOT NULL,
    consumed_at   REAL
);
CREATE INDEX saml_requests_by_expiry ON saml_requests(expires_at);

-- One-time use of assertion IDs (SAML Profiles §4.1.4.5). The primary key makes the insert
-- the atomic check: a second worker inserting the same ID gets a constraint error.
CREATE TABLE saml_replay_cache (
    assertion_id  TEXT PRIMARY KEY,
    connection_id TEXT NOT NULL,
    seen_at       REAL NOT NULL,
    expires_at    REAL NOT NULL                 -- kept at least until the assertion expires
);
CREATE INDEX saml_replay_by_expiry ON saml_replay_cache(expires_at);

-- The last N login attempts of each connection, for the admin's recent-login view.
CREATE TABLE saml_login_attempts (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    connection_id  TEXT NOT NULL,
    at             REAL NOT NULL,
    flow_id        TEXT,
    kind           TEXT NOT NULL,               -- 'sp_initiated', 'idp_initiated', 'test_login'
    outcome        TEXT NOT NULL CHECK (outcome IN ('succeeded', 'refused')),
    check_name     TEXT,                        -- which check failed (verify.py or core reason)
    expected       TEXT,
    got            TEXT,
    subject        TEXT,                        -- NameID, when the response got that far
    correlation_id TEXT,
    detail         TEXT NOT NULL DEFAULT '{}'   -- JSON, never secrets
);
CREATE INDEX saml_login_attempts_by_conn ON saml_login_attempts(connection_id, id);

-- Metadata URL refresh: when each connection is due, and which worker holds the lease.
CREATE TABLE saml_metadata_refresh (
    connection_id    TEXT PRIMARY KEY REFERENCES connections(id) ON DELETE CASCADE,
    next_at          REAL NOT NULL,
    lease_owner      TEXT,
    lease_until      REAL NOT NULL DEFAULT 0,
    last_attempt_at  REAL,
    last_success_at  REAL,
    last_error       TEXT,
    failures         INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX saml_metadata_refresh_due ON saml_metadata_refresh(next_at);

-- Hosts an administrator allowed to resolve to private addresses (on-prem AD FS), for
-- metadata and discovery fetches; joined with the `network.private_hosts_allowlist` setting.
CREATE TABLE network_allowed_hosts (
    host       TEXT PRIMARY KEY,                -- lower case, no trailing dot
    added_at   REAL NOT NULL,
    added_by   TEXT NOT NULL,
    note       TEXT
);
