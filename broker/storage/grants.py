"""Authorization codes, refresh tokens and access-token revocations (OIDC provider).

Access tokens are self-contained JWTs: no row is written when one is issued. The
`access_tokens` table holds what was revoked (core.grants writes one row per revoked
token, grant or session); rows from before that change still revoke by grant/session.

Only SHA-256 hashes of codes and refresh tokens are stored. Consuming a code and
rotating a refresh token are single UPDATE statements guarded by `consumed_at IS NULL`
/ `rotated_at IS NULL`, whose row count says whether this caller won (RFC 6749 §4.1.2,
§10.4; two workers can never both accept one).
"""

from __future__ import annotations

import sqlite3

from broker.core.ports import AccessTokenRecord, AuthCode, RefreshTokenRecord
from broker.storage.db import Database
from broker.storage.rows import dumps, insert, loads


def _code(row: sqlite3.Row) -> AuthCode:
    return AuthCode(
        grant_id=row["grant_id"],
        client_id=row["client_id"],
        session_id=row["session_id"],
        flow_id=row["flow_id"],
        redirect_uri=row["redirect_uri"],
        code_challenge=row["code_challenge"],
        code_challenge_method=row["code_challenge_method"],
        nonce=row["nonce"],
        scope=row["scope"],
        claims=loads(row["claims"], {}),
        auth_time=row["auth_time"],
        created_at=row["created_at"],
        expires_at=row["expires_at"],
        consumed_at=row["consumed_at"],
    )


def _refresh(row: sqlite3.Row) -> RefreshTokenRecord:
    return RefreshTokenRecord(
        family_id=row["family_id"],
        client_id=row["client_id"],
        session_id=row["session_id"],
        organization_id=row["organization_id"],
        subject=row["subject"],
        email=row["email"],
        directory_user_id=row["directory_user_id"],
        scope=row["scope"],
        claims=loads(row["claims"], {}),
        auth_time=row["auth_time"],
        created_at=row["created_at"],
        expires_at=row["expires_at"],
        rotated_at=row["rotated_at"],
        revoked_at=row["revoked_at"],
    )


class GrantRepo:
    def __init__(self, db: Database) -> None:
        self.db = db

    # -- authorization codes -----------------------------------------------------

    def create_code(self, code_hash: str, code: AuthCode) -> None:
        insert(
            self.db,
            "auth_codes",
            {
                "code_hash": code_hash,
                "grant_id": code.grant_id,
                "client_id": code.client_id,
                "session_id": code.session_id,
                "flow_id": code.flow_id,
                "redirect_uri": code.redirect_uri,
                "code_challenge": code.code_challenge,
                "code_challenge_method": code.code_challenge_method,
                "nonce": code.nonce,
                "scope": code.scope,
                "claims": dumps(code.claims),
                "auth_time": code.auth_time,
                "created_at": code.created_at,
                "expires_at": code.expires_at,
            },
            "authorization code",
        )

    def consume_code(self, code_hash: str, client_id: str, now: float) -> AuthCode | None:
        rows = self.db.all(  # all(): step a RETURNING statement to its end
            "UPDATE auth_codes SET consumed_at = ? WHERE code_hash = ? AND client_id = ?"
            " AND consumed_at IS NULL AND expires_at > ? RETURNING *",
            (now, code_hash, client_id, now),
        )
        return _code(rows[0]) if rows else None

    def find_code(self, code_hash: str) -> AuthCode | None:
        row = self.db.one("SELECT * FROM auth_codes WHERE code_hash = ?", (code_hash,))
        return None if row is None else _code(row)

    # -- refresh tokens ----------------------------------------------------------

    def create_refresh(self, token_hash: str, token: RefreshTokenRecord) -> None:
        insert(
            self.db,
            "refresh_tokens",
            {
                "token_hash": token_hash,
                "family_id": token.family_id,
                "client_id": token.client_id,
                "session_id": token.session_id,
                "organization_id": token.organization_id,
                "subject": token.subject,
                "email": token.email,
                "directory_user_id": token.directory_user_id,
                "scope": token.scope,
                "claims": dumps(token.claims),
                "auth_time": token.auth_time,
                "created_at": token.created_at,
                "expires_at": token.expires_at,
            },
            "refresh token",
        )

    def rotate_refresh(
        self, token_hash: str, client_id: str, now: float
    ) -> RefreshTokenRecord | None:
        rows = self.db.all(
            "UPDATE refresh_tokens SET rotated_at = ? WHERE token_hash = ? AND client_id = ?"
            " AND rotated_at IS NULL AND revoked_at IS NULL AND expires_at > ? RETURNING *",
            (now, token_hash, client_id, now),
        )
        return _refresh(rows[0]) if rows else None

    def find_refresh(self, token_hash: str) -> RefreshTokenRecord | None:
        row = self.db.one("SELECT * FROM refresh_tokens WHERE token_hash = ?", (token_hash,))
        return None if row is None else _refresh(row)

    # -- access tokens -----------------------------------------------------------

    def create_access(self, token: AccessTokenRecord) -> None:
        insert(
            self.db,
            "access_tokens",
            {
                "jti": token.jti,
                "grant_id": token.grant_id,
                "client_id": token.client_id,
                "session_id": token.session_id,
                "claims": dumps(token.claims),
                "created_at": token.created_at,
                "expires_at": token.expires_at,
                "revoked_at": token.revoked_at,
            },
            "access token",
        )

    def find_access(self, jti: str) -> AccessTokenRecord | None:
        row = self.db.one("SELECT * FROM access_tokens WHERE jti = ?", (jti,))
        if row is None:
            return None
        return AccessTokenRecord(
            jti=row["jti"],
            grant_id=row["grant_id"],
            client_id=row["client_id"],
            session_id=row["session_id"],
            claims=loads(row["claims"], {}),
            created_at=row["created_at"],
            expires_at=row["expires_at"],
            revoked_at=row["revoked_at"],
        )

    def revoke_access(self, jti: str, now: float) -> bool:
        return bool(
            self.db.execute(
                "UPDATE access_tokens SET revoked_at = ? WHERE jti = ? AND revoked_at IS NULL",
                (now, jti),
            ).rowcount
        )

    # -- revocation --------------------------------------------------------------

    def revoke_grant(self, grant_id: str, now: float, reason: str) -> int:
        count = self.db.execute(
            "UPDATE refresh_tokens SET revoked_at = ?, revoke_reason = ?"
            " WHERE family_id = ? AND revoked_at IS NULL",
            (now, reason, grant_id),
        ).rowcount
        count += self.db.execute(
            "UPDATE access_tokens SET revoked_at = ? WHERE grant_id = ? AND revoked_at IS NULL",
            (now, grant_id),
        ).rowcount
        return int(count)

    def revoke_session(self, session_id: str, now: float, reason: str) -> int:
        count = self.db.execute(
            "UPDATE refresh_tokens SET revoked_at = ?, revoke_reason = ?"
            " WHERE session_id = ? AND revoked_at IS NULL",
            (now, reason, session_id),
        ).rowcount
        count += self.db.execute(
            "UPDATE access_tokens SET revoked_at = ? WHERE session_id = ? AND revoked_at IS NULL",
            (now, session_id),
        ).rowcount
        return int(count)

    def revoke_user(
        self,
        organization_id: str,
        email: str | None,
        directory_user_id: str | None,
        now: float,
        reason: str,
    ) -> list[tuple[str, str, str]]:
        rows = self.db.all(
            "UPDATE refresh_tokens SET revoked_at = ?, revoke_reason = ?"
            " WHERE organization_id = ? AND revoked_at IS NULL"
            " AND ((? IS NOT NULL AND email = ? COLLATE NOCASE)"
            "      OR (? IS NOT NULL AND directory_user_id = ?))"
            " RETURNING client_id, session_id, subject",
            (now, reason, organization_id, email, email, directory_user_id, directory_user_id),
        )
        affected = {(r["client_id"], r["session_id"], r["subject"]) for r in rows}
        for _client, session_id, _subject in affected:
            self.db.execute(
                "UPDATE access_tokens SET revoked_at = ? WHERE session_id = ?"
                " AND revoked_at IS NULL",
                (now, session_id),
            )
        return sorted(affected)

    def remember_assertion(self, jti_hash: str, client_id: str, expires_at: float) -> bool:
        """Record a client assertion's jti; False when it was seen before (a replay)."""
        return bool(
            self.db.execute(
                "INSERT OR IGNORE INTO client_assertions (jti_hash, client_id, expires_at)"
                " VALUES (?, ?, ?)",
                (jti_hash, client_id, expires_at),
            ).rowcount
        )

    def purge_expired(self, now: float) -> int:
        count = self.db.execute(
            "DELETE FROM client_assertions WHERE expires_at < ?", (now - 600,)
        ).rowcount
        count += self.db.execute(
            "DELETE FROM auth_codes WHERE expires_at < ?", (now - 3600,)
        ).rowcount
        count += self.db.execute(
            "DELETE FROM access_tokens WHERE expires_at < ?", (now - 3600,)
        ).rowcount
        count += self.db.execute(
            "DELETE FROM refresh_tokens WHERE expires_at < ?", (now - 86400,)
        ).rowcount
        return int(count)
