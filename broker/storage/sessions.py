"""Broker sessions, the clients seen in each, and the back-channel logout outbox.

A session is found by the SHA-256 of its cookie value, never by its id: the id is the
OIDC `sid` that Exec sees in tokens, so it must not open the session.
"""

from __future__ import annotations

import sqlite3

from broker.core.ports import BrokerSession, LogoutDelivery
from broker.errors import NotFound
from broker.storage.db import Database
from broker.storage.rows import dumps, insert, loads


def _session(row: sqlite3.Row) -> BrokerSession:
    return BrokerSession(
        id=row["id"],
        organization_id=row["organization_id"],
        connection_id=row["connection_id"],
        subject=row["subject"],
        email=row["email"],
        directory_user_id=row["directory_user_id"],
        claims=loads(row["claims"], {}),
        auth_time=row["auth_time"],
        created_at=row["created_at"],
        expires_at=row["expires_at"],
        ended_at=row["ended_at"],
        end_reason=row["end_reason"],
    )


class SessionRepo:
    def __init__(self, db: Database) -> None:
        self.db = db

    def create(self, session: BrokerSession, token_hash: str) -> None:
        insert(
            self.db,
            "broker_sessions",
            {
                "id": session.id,
                "token_hash": token_hash,
                "organization_id": session.organization_id,
                "connection_id": session.connection_id,
                "subject": session.subject,
                "email": session.email,
                "directory_user_id": session.directory_user_id,
                "claims": dumps(session.claims),
                "auth_time": session.auth_time,
                "created_at": session.created_at,
                "expires_at": session.expires_at,
            },
            f"session {session.id}",
        )

    def get(self, session_id: str) -> BrokerSession:
        row = self.db.one("SELECT * FROM broker_sessions WHERE id = ?", (session_id,))
        if row is None:
            raise NotFound(f"session {session_id} not found")
        return _session(row)

    def by_token(self, token_hash: str, now: float) -> BrokerSession | None:
        row = self.db.one(
            "SELECT * FROM broker_sessions WHERE token_hash = ? AND ended_at IS NULL"
            " AND expires_at > ?",
            (token_hash, now),
        )
        return None if row is None else _session(row)

    def end(self, session_id: str, now: float, reason: str) -> bool:
        return bool(
            self.db.execute(
                "UPDATE broker_sessions SET ended_at = ?, end_reason = ?"
                " WHERE id = ? AND ended_at IS NULL",
                (now, reason, session_id),
            ).rowcount
        )

    def end_for_organization(self, org_id: str, now: float) -> int:
        """SSO switched off (core.policy): every session ends and Exec hears of it."""
        with self.db.transaction():
            ended = self.db.all(
                "UPDATE broker_sessions SET ended_at = ?, end_reason = 'sso_disabled'"
                " WHERE organization_id = ? AND ended_at IS NULL RETURNING id",
                (now, org_id),
            )
            for row in ended:
                self.db.execute(
                    "UPDATE refresh_tokens SET revoked_at = ?, revoke_reason = 'sso_disabled'"
                    " WHERE session_id = ? AND revoked_at IS NULL",
                    (now, row["id"]),
                )
                self.db.execute(
                    "INSERT OR IGNORE INTO backchannel_logouts (client_id, session_id, subject,"
                    " reason, created_at, next_attempt_at)"
                    " SELECT sc.client_id, sc.session_id, sc.subject, 'sso_disabled', ?, ?"
                    " FROM session_clients sc JOIN clients c ON c.id = sc.client_id"
                    " WHERE sc.session_id = ? AND c.backchannel_logout_uri IS NOT NULL",
                    (now, now, row["id"]),
                )
        return len(ended)

    def live_for_user(
        self, organization_id: str, email: str | None, directory_user_id: str | None, now: float
    ) -> list[BrokerSession]:
        rows = self.db.all(
            "SELECT * FROM broker_sessions WHERE organization_id = ? AND ended_at IS NULL"
            " AND expires_at > ? AND ((? IS NOT NULL AND email = ? COLLATE NOCASE)"
            " OR (? IS NOT NULL AND directory_user_id = ?))",
            (organization_id, now, email, email, directory_user_id, directory_user_id),
        )
        return [_session(r) for r in rows]

    def unended_for_connection(self, connection_id: str) -> list[str]:
        rows = self.db.all(
            "SELECT id FROM broker_sessions WHERE connection_id = ? AND ended_at IS NULL"
            " ORDER BY created_at",
            (connection_id,),
        )
        return [r["id"] for r in rows]

    def add_client(self, session_id: str, client_id: str, subject: str, now: float) -> None:
        self.db.execute(
            "INSERT OR IGNORE INTO session_clients (session_id, client_id, subject, created_at)"
            " VALUES (?, ?, ?, ?)",
            (session_id, client_id, subject, now),
        )

    def clients(self, session_id: str) -> list[tuple[str, str]]:
        rows = self.db.all(
            "SELECT client_id, subject FROM session_clients WHERE session_id = ?"
            " ORDER BY client_id",
            (session_id,),
        )
        return [(r["client_id"], r["subject"]) for r in rows]


def _delivery(row: sqlite3.Row) -> LogoutDelivery:
    return LogoutDelivery(
        id=row["id"],
        client_id=row["client_id"],
        session_id=row["session_id"],
        subject=row["subject"],
        reason=row["reason"],
        attempts=row["attempts"],
        created_at=row["created_at"],
    )


class LogoutOutboxRepo:
    """Back-channel logouts waiting to be POSTed; a lease (next_attempt_at) keeps two
    workers from sending the same one at once."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def enqueue(
        self, client_id: str, session_id: str, subject: str, reason: str, now: float
    ) -> bool:
        return bool(
            self.db.execute(
                "INSERT OR IGNORE INTO backchannel_logouts (client_id, session_id, subject, reason,"
                " created_at, next_attempt_at) VALUES (?, ?, ?, ?, ?, ?)",
                (client_id, session_id, subject, reason, now, now),
            ).rowcount
        )

    def due(self, now: float, limit: int) -> list[LogoutDelivery]:
        rows = self.db.all(
            "SELECT * FROM backchannel_logouts WHERE delivered_at IS NULL AND failed_at IS NULL"
            " AND next_attempt_at <= ? ORDER BY next_attempt_at LIMIT ?",
            (now, limit),
        )
        return [_delivery(r) for r in rows]

    def claim(self, delivery_id: int, now: float, lease_until: float) -> bool:
        return bool(
            self.db.execute(
                "UPDATE backchannel_logouts SET next_attempt_at = ? WHERE id = ?"
                " AND delivered_at IS NULL AND failed_at IS NULL AND next_attempt_at <= ?",
                (lease_until, delivery_id, now),
            ).rowcount
        )

    def delivered(self, delivery_id: int, now: float) -> None:
        self.db.execute(
            "UPDATE backchannel_logouts SET delivered_at = ?, attempts = attempts + 1 WHERE id = ?",
            (now, delivery_id),
        )

    def retry(
        self,
        delivery_id: int,
        attempts: int,
        next_attempt_at: float,
        error: str,
        failed: bool,
        now: float,
    ) -> None:
        self.db.execute(
            "UPDATE backchannel_logouts SET attempts = ?, next_attempt_at = ?, last_error = ?,"
            " failed_at = ? WHERE id = ?",
            (attempts, next_attempt_at, error[:500], now if failed else None, delivery_id),
        )

    def pending(self) -> list[LogoutDelivery]:
        rows = self.db.all(
            "SELECT * FROM backchannel_logouts WHERE delivered_at IS NULL"
            " AND failed_at IS NULL ORDER BY id"
        )
        return [_delivery(r) for r in rows]
