"""SAML SP state in SQLite (migration 0003): issued AuthnRequests, the assertion replay
cache, recent login attempts, the metadata refresh schedule and the private-host allow-list.

Single-use things are consumed atomically (DESIGN §9 "SQLite writes"): the replay cache
relies on the primary key, so that two workers inserting the same assertion ID can never
both succeed; a request is consumed with `UPDATE ... WHERE consumed_at IS NULL`.
"""

from __future__ import annotations

import builtins
import sqlite3

from broker.core.ports import MetadataRefreshState, SamlLoginAttempt, SamlRequestRecord
from broker.errors import NotFound
from broker.storage.db import Database
from broker.storage.rows import dumps, insert, loads


def _attempt(row: sqlite3.Row) -> SamlLoginAttempt:
    return SamlLoginAttempt(
        id=row["id"],
        connection_id=row["connection_id"],
        at=row["at"],
        kind=row["kind"],
        outcome=row["outcome"],
        flow_id=row["flow_id"],
        check=row["check_name"],
        expected=row["expected"],
        got=row["got"],
        subject=row["subject"],
        correlation_id=row["correlation_id"],
        detail=loads(row["detail"], {}),
    )


class SamlRepo:
    def __init__(self, db: Database) -> None:
        self.db = db

    # -- issued AuthnRequests ----------------------------------------------------------

    def add_request(self, record: SamlRequestRecord) -> None:
        insert(
            self.db,
            "saml_requests",
            {
                "request_id": record.request_id,
                "connection_id": record.connection_id,
                "flow_id": record.flow_id,
                "created_at": record.created_at,
                "expires_at": record.expires_at,
                "consumed_at": record.consumed_at,
            },
            f"SAML request {record.request_id}",
        )

    def find_request(self, request_id: str) -> SamlRequestRecord | None:
        row = self.db.one("SELECT * FROM saml_requests WHERE request_id = ?", (request_id,))
        if row is None:
            return None
        return SamlRequestRecord(
            request_id=row["request_id"],
            connection_id=row["connection_id"],
            flow_id=row["flow_id"],
            created_at=row["created_at"],
            expires_at=row["expires_at"],
            consumed_at=row["consumed_at"],
        )

    def consume_request(self, request_id: str, connection_id: str, now: float) -> bool:
        cur = self.db.execute(
            "UPDATE saml_requests SET consumed_at = ? WHERE request_id = ? AND connection_id = ?"
            " AND consumed_at IS NULL AND expires_at > ?",
            (now, request_id, connection_id, now),
        )
        return cur.rowcount == 1

    # -- replay cache ------------------------------------------------------------------

    def remember_assertion(
        self, assertion_id: str, connection_id: str, now: float, expires_at: float
    ) -> bool:
        try:
            self.db.execute(
                "INSERT INTO saml_replay_cache (assertion_id, connection_id, seen_at, expires_at)"
                " VALUES (?, ?, ?, ?)",
                (assertion_id, connection_id, now, expires_at),
            )
        except sqlite3.IntegrityError:
            return False
        return True

    def purge_expired(self, now: float) -> int:
        """Drop replay-cache rows whose assertions can no longer be accepted anyway, and
        AuthnRequests that expired (kept a day for the admin's view)."""
        with self.db.transaction():
            dropped = self.db.execute(
                "DELETE FROM saml_replay_cache WHERE expires_at < ?", (now,)
            ).rowcount
            dropped += self.db.execute(
                "DELETE FROM saml_requests WHERE expires_at < ?", (now - 86400,)
            ).rowcount
        return int(dropped)

    # -- recent login attempts -----------------------------------------------------------

    def record_attempt(self, attempt: SamlLoginAttempt, keep: int) -> None:
        with self.db.transaction():
            self.db.execute(
                "INSERT INTO saml_login_attempts (connection_id, at, flow_id, kind, outcome,"
                " check_name, expected, got, subject, correlation_id, detail)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    attempt.connection_id,
                    attempt.at,
                    attempt.flow_id,
                    attempt.kind,
                    attempt.outcome,
                    attempt.check,
                    _clip(attempt.expected),
                    _clip(attempt.got),
                    attempt.subject,
                    attempt.correlation_id,
                    dumps(attempt.detail),
                ),
            )
            self.db.execute(
                "DELETE FROM saml_login_attempts WHERE connection_id = ? AND id NOT IN"
                " (SELECT id FROM saml_login_attempts WHERE connection_id = ?"
                "  ORDER BY id DESC LIMIT ?)",
                (attempt.connection_id, attempt.connection_id, keep),
            )

    def attempts(self, connection_id: str, limit: int = 50) -> builtins.list[SamlLoginAttempt]:
        rows = self.db.all(
            "SELECT * FROM saml_login_attempts WHERE connection_id = ? ORDER BY id DESC LIMIT ?",
            (connection_id, limit),
        )
        return [_attempt(r) for r in rows]

    # -- metadata refresh schedule ---------------------------------------------------------

    def schedule_refresh(self, connection_id: str, next_at: float) -> None:
        self.db.execute(
            "INSERT INTO saml_metadata_refresh (connection_id, next_at) VALUES (?, ?)"
            " ON CONFLICT (connection_id) DO UPDATE SET next_at = excluded.next_at",
            (connection_id, next_at),
        )

    def cancel_refresh(self, connection_id: str) -> None:
        self.db.execute(
            "DELETE FROM saml_metadata_refresh WHERE connection_id = ?", (connection_id,)
        )

    def refresh_state(self, connection_id: str) -> MetadataRefreshState | None:
        row = self.db.one(
            "SELECT * FROM saml_metadata_refresh WHERE connection_id = ?", (connection_id,)
        )
        if row is None:
            return None
        return MetadataRefreshState(
            connection_id=row["connection_id"],
            next_at=row["next_at"],
            lease_owner=row["lease_owner"],
            lease_until=row["lease_until"],
            last_attempt_at=row["last_attempt_at"],
            last_success_at=row["last_success_at"],
            last_error=row["last_error"],
            failures=row["failures"],
        )

    def due_refreshes(self, now: float, limit: int) -> builtins.list[str]:
        rows = self.db.all(
            "SELECT connection_id FROM saml_metadata_refresh WHERE next_at <= ?"
            " AND lease_until <= ? ORDER BY next_at LIMIT ?",
            (now, now, limit),
        )
        return [r["connection_id"] for r in rows]

    def take_refresh_lease(self, connection_id: str, owner: str, now: float, until: float) -> bool:
        cur = self.db.execute(
            "UPDATE saml_metadata_refresh SET lease_owner = ?, lease_until = ?,"
            " last_attempt_at = ? WHERE connection_id = ?"
            " AND (lease_until <= ? OR lease_owner = ?)",
            (owner, until, now, connection_id, now, owner),
        )
        return cur.rowcount == 1

    def finish_refresh(
        self, connection_id: str, owner: str, *, now: float, next_at: float, error: str | None
    ) -> None:
        if error is None:
            self.db.execute(
                "UPDATE saml_metadata_refresh SET next_at = ?, lease_owner = NULL,"
                " lease_until = 0, last_success_at = ?, last_error = NULL, failures = 0"
                " WHERE connection_id = ? AND lease_owner = ?",
                (next_at, now, connection_id, owner),
            )
        else:
            self.db.execute(
                "UPDATE saml_metadata_refresh SET next_at = ?, lease_owner = NULL,"
                " lease_until = 0, last_error = ?, failures = failures + 1"
                " WHERE connection_id = ? AND lease_owner = ?",
                (next_at, error[:500], connection_id, owner),
            )


class NetworkAllowlistRepo:
    def __init__(self, db: Database) -> None:
        self.db = db

    def add(self, host: str, now: float, added_by: str, note: str | None = None) -> None:
        insert(
            self.db,
            "network_allowed_hosts",
            {"host": host, "added_at": now, "added_by": added_by, "note": note},
            f"allowed host {host}",
        )

    def remove(self, host: str) -> None:
        if self.db.execute("DELETE FROM network_allowed_hosts WHERE host = ?", (host,)).rowcount:
            return
        raise NotFound(f"host {host} is not on the allow-list")

    def list(self) -> builtins.list[str]:
        return [
            r["host"] for r in self.db.all("SELECT host FROM network_allowed_hosts ORDER BY host")
        ]


def _clip(value: str | None, limit: int = 1000) -> str | None:
    return None if value is None else value[:limit]
