"""Setup-UI sessions, sign-in throttle counters and first-run setup tokens (0007_admin.sql).

Only hashes of the session cookie and of setup tokens are stored; consuming a setup
token is one conditional UPDATE, so two requests can never both use it. The throttle
table holds one row per (username, address) and, under the address "" (never a real one),
the username's count across every address (broker.core.admin_sessions.USER_WIDE).
"""

from __future__ import annotations

from broker.core.ports import AdminSession, LoginThrottle
from broker.storage.db import Database


class AdminSessionRepo:
    def __init__(self, db: Database) -> None:
        self.db = db

    # -- sessions -----------------------------------------------------------------

    def create(
        self,
        session_hash: str,
        admin_id: str,
        csrf_token: str,
        remote_addr: str | None,
        user_agent: str | None,
        now: float,
    ) -> None:
        self.db.execute(
            "INSERT INTO admin_sessions (id, admin_id, csrf_token, remote_addr, user_agent,"
            " created_at, last_seen_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (session_hash, admin_id, csrf_token, remote_addr, (user_agent or "")[:300], now, now),
        )

    def live(self, session_hash: str) -> AdminSession | None:
        row = self.db.one(
            "SELECT s.*, a.username FROM admin_sessions s JOIN admins a ON a.id = s.admin_id"
            " WHERE s.id = ? AND s.ended_at IS NULL",
            (session_hash,),
        )
        if row is None:
            return None
        return AdminSession(
            id=row["id"],
            admin_id=row["admin_id"],
            username=row["username"],
            csrf_token=row["csrf_token"],
            remote_addr=row["remote_addr"],
            created_at=row["created_at"],
            last_seen_at=row["last_seen_at"],
        )

    def touch(self, session_hash: str, now: float) -> None:
        self.db.execute(
            "UPDATE admin_sessions SET last_seen_at = ? WHERE id = ?", (now, session_hash)
        )

    def end(self, session_hash: str, now: float) -> None:
        self.db.execute(
            "UPDATE admin_sessions SET ended_at = ? WHERE id = ? AND ended_at IS NULL",
            (now, session_hash),
        )

    # -- throttle -----------------------------------------------------------------

    def throttle(self, username: str, remote_addr: str) -> LoginThrottle | None:
        row = self.db.one(
            "SELECT failures, window_start, locked_until FROM admin_login_throttle"
            " WHERE username = ? AND remote_addr = ?",
            (username, remote_addr),
        )
        if row is None:
            return None
        return LoginThrottle(row["failures"], row["window_start"], row["locked_until"])

    def set_throttle(self, username: str, remote_addr: str, state: LoginThrottle) -> None:
        self.db.execute(
            "INSERT INTO admin_login_throttle (username, remote_addr, failures, window_start,"
            " locked_until) VALUES (?, ?, ?, ?, ?) ON CONFLICT (username, remote_addr) DO UPDATE"
            " SET failures = excluded.failures, window_start = excluded.window_start,"
            " locked_until = excluded.locked_until",
            (username, remote_addr, state.failures, state.window_start, state.locked_until),
        )

    def clear_throttle(self, username: str, remote_addr: str) -> None:
        self.db.execute(
            "DELETE FROM admin_login_throttle WHERE username = ? AND remote_addr = ?",
            (username, remote_addr),
        )

    # -- setup tokens ---------------------------------------------------------------

    def add_setup_token(self, token_hash: str, now: float, expires_at: float) -> None:
        self.db.execute(
            "INSERT INTO admin_setup_tokens (token_hash, created_at, expires_at) VALUES (?, ?, ?)",
            (token_hash, now, expires_at),
        )

    def setup_token_valid(self, token_hash: str, now: float) -> bool:
        row = self.db.one(
            "SELECT 1 FROM admin_setup_tokens WHERE token_hash = ? AND used_at IS NULL"
            " AND expires_at > ?",
            (token_hash, now),
        )
        return row is not None

    def consume_setup_token(self, token_hash: str, now: float) -> bool:
        cursor = self.db.execute(
            "UPDATE admin_setup_tokens SET used_at = ? WHERE token_hash = ? AND used_at IS NULL"
            " AND expires_at > ?",
            (now, token_hash, now),
        )
        return cursor.rowcount == 1
