-- Directory Sync (SCIM 2.0): one directory per organization, its users and groups,
-- memberships, group → role mappings and the journal of SCIM requests.
-- Append-only: never edit a migration that has shipped; add the next number.

CREATE TABLE directories (
    id                        TEXT PRIMARY KEY,          -- dir_...
    organization_id           TEXT NOT NULL UNIQUE REFERENCES organizations(id) ON DELETE CASCADE,
    state                     TEXT NOT NULL CHECK (state IN ('active', 'inactive')),
    token_hash                TEXT,                      -- sha256 of brk_scim_...; NULL when inactive
    previous_token_hash       TEXT,                      -- still accepted until ...expires_at
    previous_token_expires_at REAL,
    -- Token bucket for throttling, shared by every worker (updated in the request's
    -- write transaction, which SQLite serialises).
    bucket_tokens             REAL,
    bucket_at                 REAL,
    created_at                REAL NOT NULL,
    updated_at                REAL NOT NULL,
    token_rotated_at          REAL
);

CREATE TABLE directory_users (
    id              TEXT PRIMARY KEY,                    -- usr_...
    organization_id TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    directory_id    TEXT REFERENCES directories(id),     -- NULL: unlinked (Directory Sync off)
    external_id     TEXT,
    user_name       TEXT NOT NULL COLLATE NOCASE,        -- RFC 7643 §4.1.1: caseExact false
    email           TEXT COLLATE NOCASE,
    given_name      TEXT,
    family_name     TEXT,
    state           TEXT NOT NULL CHECK (state IN ('active', 'inactive', 'deleted')),
    role            TEXT NOT NULL,
    seat            TEXT NOT NULL CHECK (seat IN ('full', 'basic')),
    base_seat       TEXT NOT NULL CHECK (base_seat IN ('full', 'basic')), -- seat without mappings
    idp_id          TEXT,                                -- the SSO subject, once linked by a login
    raw             TEXT NOT NULL DEFAULT '{}',          -- JSON: the SCIM resource as last written
    version         INTEGER NOT NULL DEFAULT 1,
    created_at      REAL NOT NULL,
    updated_at      REAL NOT NULL
);
-- userName is unique per directory among live users (case-insensitively); deleted rows stay
-- as tombstones so that a login of a deleted user is refused.
CREATE UNIQUE INDEX directory_users_user_name ON directory_users(directory_id, user_name)
    WHERE state != 'deleted';
CREATE INDEX directory_users_external_id ON directory_users(directory_id, external_id)
    WHERE state != 'deleted';
-- Re-linking after Directory Sync was switched off and on again (provisioning.create_user).
CREATE INDEX directory_users_unlinked_name ON directory_users(organization_id, user_name)
    WHERE directory_id IS NULL;
CREATE INDEX directory_users_unlinked_external ON directory_users(organization_id, external_id)
    WHERE directory_id IS NULL;
CREATE INDEX directory_users_by_dir ON directory_users(directory_id, id);
CREATE INDEX directory_users_by_email ON directory_users(organization_id, email);
CREATE INDEX directory_users_by_idp ON directory_users(organization_id, idp_id);

CREATE TABLE directory_groups (
    id              TEXT PRIMARY KEY,                    -- grp_...
    organization_id TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    directory_id    TEXT REFERENCES directories(id),
    external_id     TEXT,
    display_name    TEXT NOT NULL COLLATE NOCASE,
    member_count    INTEGER NOT NULL DEFAULT 0,          -- kept by the repository: O(1) reads
    raw             TEXT NOT NULL DEFAULT '{}',          -- JSON without `members`
    version         INTEGER NOT NULL DEFAULT 1,
    created_at      REAL NOT NULL,
    updated_at      REAL NOT NULL
);
CREATE INDEX directory_groups_by_dir ON directory_groups(directory_id, id);
CREATE INDEX directory_groups_by_name ON directory_groups(directory_id, display_name);
CREATE INDEX directory_groups_external_id ON directory_groups(directory_id, external_id);
CREATE INDEX directory_groups_by_org_name ON directory_groups(organization_id, display_name);

-- One row per (group, user): adding or removing one member of a 10,000-member group
-- touches one row and one index entry each way.
CREATE TABLE directory_memberships (
    group_id TEXT NOT NULL REFERENCES directory_groups(id) ON DELETE CASCADE,
    user_id  TEXT NOT NULL REFERENCES directory_users(id) ON DELETE CASCADE,
    PRIMARY KEY (group_id, user_id)
) WITHOUT ROWID;
CREATE INDEX directory_memberships_by_user ON directory_memberships(user_id, group_id);

-- Group → role (and optionally seat). A user's role comes from the mapped group with the
-- highest priority; ties break on the mapping id (oldest first).
CREATE TABLE role_mappings (
    id              TEXT PRIMARY KEY,                    -- rmap_...
    organization_id TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    group_id        TEXT,                                -- a directory group id, or
    group_name      TEXT COLLATE NOCASE,                 -- a group display name
    role            TEXT NOT NULL,
    seat            TEXT CHECK (seat IS NULL OR seat IN ('full', 'basic')),
    priority        INTEGER NOT NULL DEFAULT 0,
    created_at      REAL NOT NULL,
    CHECK ((group_id IS NULL) != (group_name IS NULL))
);
CREATE INDEX role_mappings_by_org ON role_mappings(organization_id, priority);

-- Every SCIM request, for the admin to look at (ssoready's scim_requests).
CREATE TABLE scim_requests (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    directory_id    TEXT,
    organization_id TEXT,
    at              REAL NOT NULL,
    method          TEXT NOT NULL,
    path            TEXT NOT NULL,
    status          INTEGER NOT NULL,
    request_body    TEXT,                                -- secrets redacted, truncated
    response_body   TEXT,                                -- truncated
    change          TEXT,                                -- JSON: what the request changed
    user_agent      TEXT,
    remote_addr     TEXT,
    request_id      TEXT,
    ms              REAL
);
CREATE INDEX scim_requests_by_dir ON scim_requests(directory_id, id);
CREATE INDEX scim_requests_by_time ON scim_requests(at);
