-- Setup-UI administration: sessions, login throttling, first-run setup tokens.
-- Session cookies and setup tokens are random and stored only as SHA-256 hashes.

CREATE TABLE admin_sessions (
    id            TEXT PRIMARY KEY,             -- sha256 of the cookie value
    admin_id      TEXT NOT NULL REFERENCES admins(id) ON DELETE CASCADE,
    csrf_token    TEXT NOT NULL,                -- synchronizer token for this session's forms
    remote_addr   TEXT,
    user_agent    TEXT,
    created_at    REAL NOT NULL,
    last_seen_at  REAL NOT NULL,                -- idle timeout is measured from here
    ended_at      REAL
);
CREATE INDEX admin_sessions_by_admin ON admin_sessions(admin_id);

-- Failed sign-ins per (username, address): counted in a window, then locked out.
CREATE TABLE admin_login_throttle (
    username      TEXT NOT NULL COLLATE NOCASE,
    remote_addr   TEXT NOT NULL,
    failures      INTEGER NOT NULL DEFAULT 0,
    window_start  REAL NOT NULL,
    locked_until  REAL,
    PRIMARY KEY (username, remote_addr)
);

-- One-time setup URLs printed by `exec-broker serve` while no administrator exists.
CREATE TABLE admin_setup_tokens (
    token_hash    TEXT PRIMARY KEY,
    created_at    REAL NOT NULL,
    expires_at    REAL NOT NULL,
    used_at       REAL
);
