-- OpenID Connect provider state (DESIGN §4, §6): broker sessions, authorization codes,
-- refresh and access tokens, and the back-channel logout outbox. Every secret is stored
-- as its SHA-256 only. Single-use rows are consumed with
-- `UPDATE ... WHERE consumed_at IS NULL` so that two workers can never both accept one.

-- A broker session: what a successful upstream login left behind (OIDC Core §3.1.2.3:
-- answer later authorize requests without a new IdP round trip). `id` is the `sid`.
CREATE TABLE broker_sessions (
    id                TEXT PRIMARY KEY,         -- ses_... (also the OIDC `sid` claim)
    token_hash        TEXT NOT NULL UNIQUE,     -- sha256 of the cookie value
    organization_id   TEXT NOT NULL,
    connection_id     TEXT NOT NULL,
    subject           TEXT NOT NULL,            -- the `sub` we issue
    email             TEXT,
    directory_user_id TEXT,
    claims            TEXT NOT NULL,            -- JSON: user claims for ID tokens
    auth_time         REAL NOT NULL,
    created_at        REAL NOT NULL,
    expires_at        REAL NOT NULL,
    ended_at          REAL,
    end_reason        TEXT
);
CREATE INDEX broker_sessions_by_org ON broker_sessions(organization_id, ended_at);
CREATE INDEX broker_sessions_by_email ON broker_sessions(organization_id, email);

-- Which clients received tokens within a session: the back-channel logout audience.
CREATE TABLE session_clients (
    session_id TEXT NOT NULL REFERENCES broker_sessions(id) ON DELETE CASCADE,
    client_id  TEXT NOT NULL,
    subject    TEXT NOT NULL,
    created_at REAL NOT NULL,
    PRIMARY KEY (session_id, client_id)
);

-- One-time authorization codes (RFC 6749 §4.1.2, 60 s). `grant_id` tags everything issued
-- from the code, so that a replay can revoke it (§4.1.2, §10.5).
CREATE TABLE auth_codes (
    code_hash             TEXT PRIMARY KEY,
    grant_id              TEXT NOT NULL,        -- fam_...
    client_id             TEXT NOT NULL,
    session_id            TEXT NOT NULL,
    flow_id               TEXT,
    redirect_uri          TEXT NOT NULL,
    code_challenge        TEXT NOT NULL,
    code_challenge_method TEXT NOT NULL,
    nonce                 TEXT,
    scope                 TEXT NOT NULL,
    claims                TEXT NOT NULL,        -- JSON: user claims for the ID token
    auth_time             REAL NOT NULL,
    created_at            REAL NOT NULL,
    expires_at            REAL NOT NULL,
    consumed_at           REAL
);
CREATE INDEX auth_codes_by_expiry ON auth_codes(expires_at);

-- Refresh tokens, rotated on every use; a rotated one presented again revokes its family.
CREATE TABLE refresh_tokens (
    token_hash        TEXT PRIMARY KEY,
    family_id         TEXT NOT NULL,            -- the grant_id of the code it came from
    client_id         TEXT NOT NULL,
    session_id        TEXT NOT NULL,
    organization_id   TEXT NOT NULL,
    subject           TEXT NOT NULL,
    email             TEXT,
    directory_user_id TEXT,
    scope             TEXT NOT NULL,
    claims            TEXT NOT NULL,
    auth_time         REAL NOT NULL,
    created_at        REAL NOT NULL,
    expires_at        REAL NOT NULL,
    rotated_at        REAL,
    revoked_at        REAL,
    revoke_reason     TEXT
);
CREATE INDEX refresh_tokens_by_family ON refresh_tokens(family_id);
CREATE INDEX refresh_tokens_by_session ON refresh_tokens(session_id);
CREATE INDEX refresh_tokens_by_email ON refresh_tokens(organization_id, email);
CREATE INDEX refresh_tokens_by_user ON refresh_tokens(organization_id, directory_user_id);

-- Access tokens are RFC 9068 JWTs; this row lets userinfo refuse a revoked one and holds
-- the claims userinfo returns.
CREATE TABLE access_tokens (
    jti        TEXT PRIMARY KEY,
    grant_id   TEXT NOT NULL,
    client_id  TEXT NOT NULL,
    session_id TEXT NOT NULL,
    claims     TEXT NOT NULL,
    created_at REAL NOT NULL,
    expires_at REAL NOT NULL,
    revoked_at REAL
);
CREATE INDEX access_tokens_by_grant ON access_tokens(grant_id);
CREATE INDEX access_tokens_by_session ON access_tokens(session_id);
CREATE INDEX access_tokens_by_expiry ON access_tokens(expires_at);

-- Outbox of OpenID Connect Back-Channel Logout 1.0 deliveries; the logout token is
-- signed when it is sent (broker.oidc.backchannel).
CREATE TABLE backchannel_logouts (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    client_id       TEXT NOT NULL,
    session_id      TEXT NOT NULL,              -- the `sid`
    subject         TEXT NOT NULL,
    reason          TEXT NOT NULL,
    created_at      REAL NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at REAL NOT NULL,
    delivered_at    REAL,
    failed_at       REAL,
    last_error      TEXT,
    UNIQUE (client_id, session_id)
);
CREATE INDEX backchannel_logouts_due ON backchannel_logouts(delivered_at, failed_at, next_attempt_at);

-- `jti`s of private_key_jwt client assertions already seen (RFC 7523 §3 item 7: a JWT
-- may be used once), kept until the assertion expires.
CREATE TABLE client_assertions (
    jti_hash   TEXT PRIMARY KEY,               -- sha256(client_id + jti)
    client_id  TEXT NOT NULL,
    expires_at REAL NOT NULL
);
CREATE INDEX client_assertions_by_expiry ON client_assertions(expires_at);
