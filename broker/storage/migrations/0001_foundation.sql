-- Foundation: organizations, domains, connections, clients, signing keys, flows,
-- events and the audit log. Times are REAL seconds since the epoch (UTC).
-- Append-only: never edit a migration that has shipped; add the next number.

CREATE TABLE organizations (
    id            TEXT PRIMARY KEY,             -- org_...
    name          TEXT NOT NULL,
    external_id   TEXT UNIQUE,                  -- Exec's workspace id, when known
    sso_enabled   INTEGER NOT NULL DEFAULT 0,
    dsync_enabled INTEGER NOT NULL DEFAULT 0,
    default_seat  TEXT NOT NULL DEFAULT 'basic' CHECK (default_seat IN ('full', 'basic')),
    default_role  TEXT NOT NULL DEFAULT 'member',
    created_at    REAL NOT NULL,
    updated_at    REAL NOT NULL
);

CREATE TABLE domains (
    id                 TEXT PRIMARY KEY,        -- dom_...
    organization_id    TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    domain             TEXT NOT NULL,
    state              TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'verified', 'failed')),
    verification_token TEXT NOT NULL,
    verified_at        REAL,
    last_checked_at    REAL,
    next_check_at      REAL,
    check_count        INTEGER NOT NULL DEFAULT 0,
    last_error         TEXT,
    created_at         REAL NOT NULL,
    UNIQUE (organization_id, domain)
);
-- A domain verified by one organization cannot be claimed by another.
CREATE UNIQUE INDEX domains_verified_once ON domains(domain) WHERE state = 'verified';
CREATE INDEX domains_by_domain ON domains(domain);

CREATE TABLE connections (
    id              TEXT PRIMARY KEY,           -- conn_...
    organization_id TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    type            TEXT NOT NULL CHECK (type IN ('saml', 'oidc')),
    preset          TEXT NOT NULL DEFAULT 'generic',
    name            TEXT NOT NULL,
    state           TEXT NOT NULL DEFAULT 'draft' CHECK (state IN ('draft', 'active', 'inactive')),
    tested_at       REAL,                       -- last successful test login
    config          TEXT NOT NULL DEFAULT '{}', -- JSON, type-specific (IdP metadata, client id, ...)
    created_at      REAL NOT NULL,
    updated_at      REAL NOT NULL
);
CREATE INDEX connections_by_org ON connections(organization_id, state);

CREATE TABLE clients (
    id                          TEXT PRIMARY KEY,   -- the OAuth client_id (cli_...)
    name                        TEXT NOT NULL,
    secret_hash                 TEXT,               -- sha256 of brk_cs_... (NULL: private_key_jwt only)
    redirect_uris               TEXT NOT NULL DEFAULT '[]',
    post_logout_redirect_uris   TEXT NOT NULL DEFAULT '[]',
    initiate_login_uri          TEXT,
    backchannel_logout_uri      TEXT,
    token_endpoint_auth_method  TEXT NOT NULL DEFAULT 'client_secret_basic',
    id_token_signed_response_alg TEXT NOT NULL DEFAULT 'RS256' CHECK (id_token_signed_response_alg IN ('RS256', 'ES256')),
    jwks                        TEXT,               -- JSON JWKS for private_key_jwt
    front_channel_only          INTEGER NOT NULL DEFAULT 0,
    webhook_url                 TEXT,
    webhook_secret_enc          TEXT,               -- encrypted at rest: needed to sign
    created_at                  REAL NOT NULL,
    updated_at                  REAL NOT NULL
);

-- Which organizations a client may see (API) and log users into.
CREATE TABLE client_organizations (
    client_id       TEXT NOT NULL REFERENCES clients(id) ON DELETE CASCADE,
    organization_id TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    PRIMARY KEY (client_id, organization_id)
);

-- OIDC signing keys: private halves are files under certs/ (mode 0600); the store
-- holds their state so that every worker agrees on next/current/retired.
CREATE TABLE signing_keys (
    kid          TEXT PRIMARY KEY,
    alg          TEXT NOT NULL CHECK (alg IN ('RS256', 'ES256')),
    state        TEXT NOT NULL CHECK (state IN ('next', 'current', 'retired')),
    private_path TEXT NOT NULL,
    public_jwk   TEXT NOT NULL,
    created_at   REAL NOT NULL,
    activated_at REAL,
    retired_at   REAL
);
CREATE INDEX signing_keys_by_state ON signing_keys(alg, state);

CREATE TABLE admins (
    id            TEXT PRIMARY KEY,             -- adm_...
    username      TEXT NOT NULL UNIQUE COLLATE NOCASE,
    password_hash TEXT NOT NULL,                -- argon2id
    created_at    REAL NOT NULL,
    last_login_at REAL
);

-- Append-only change feed for Exec. `seq` is the cursor: SQLite serialises writers
-- (BEGIN IMMEDIATE), so rowid order is commit order (docs/adr/0004).
CREATE TABLE events (
    seq             INTEGER PRIMARY KEY AUTOINCREMENT,
    id              TEXT NOT NULL UNIQUE,       -- evt_...
    type            TEXT NOT NULL,
    organization_id TEXT,
    data            TEXT NOT NULL,              -- JSON: the full current object
    created_at      REAL NOT NULL
);
CREATE INDEX events_by_org ON events(organization_id, seq);
CREATE INDEX events_by_time ON events(created_at);

CREATE TABLE audit_log (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    at              REAL NOT NULL,
    actor           TEXT NOT NULL,              -- 'cli', 'admin:adm_...', 'scim:dir_...', 'system'
    action          TEXT NOT NULL,              -- e.g. 'domain.verified', 'login.refused'
    organization_id TEXT,
    target          TEXT,
    correlation_id  TEXT,
    remote_addr     TEXT,
    detail          TEXT NOT NULL DEFAULT '{}'  -- JSON, never secrets
);
CREATE INDEX audit_by_org ON audit_log(organization_id, id);
CREATE INDEX audit_by_correlation ON audit_log(correlation_id);

-- One row drives a login (DESIGN §4): the pending authorize request, the upstream
-- step (AuthnRequest id, state, nonce, PKCE verifier) and each failure's reason.
CREATE TABLE flows (
    id              TEXT PRIMARY KEY,           -- flow_...
    kind            TEXT NOT NULL,              -- 'authorize', 'test_login', 'idp_initiated'
    status          TEXT NOT NULL DEFAULT 'pending',
    client_id       TEXT,
    organization_id TEXT,
    connection_id   TEXT,
    request         TEXT NOT NULL DEFAULT '{}', -- JSON: the validated authorize parameters
    upstream        TEXT NOT NULL DEFAULT '{}', -- JSON: request id, state, nonce, verifier
    result          TEXT,                       -- JSON: mapped profile or failure detail
    error           TEXT,
    created_at      REAL NOT NULL,
    updated_at      REAL NOT NULL,
    expires_at      REAL NOT NULL
);
CREATE INDEX flows_by_expiry ON flows(expires_at);
CREATE INDEX flows_by_connection ON flows(connection_id, created_at);
