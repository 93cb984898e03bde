"""Directory users: SCIM-provisioned people, scoped by directory (tenant isolation: every
read by id also checks the directory). Deleted users stay as tombstones (state
'deleted') so that their next login is refused; SCIM reads never return them."""

from __future__ import annotations

import builtins
import sqlite3
from collections.abc import Sequence
from typing import Any

from broker.core.directory_types import Page
from broker.core.models import DirectoryUser
from broker.core.query import Query
from broker.errors import AlreadyExists, NotFound
from broker.storage import scim_sql
from broker.storage.db import Database
from broker.storage.rows import dumps, loads, update_columns

_COLUMNS = (
    "directory_id",
    "external_id",
    "user_name",
    "email",
    "given_name",
    "family_name",
    "state",
    "role",
    "seat",
    "base_seat",
    "idp_id",
    "raw",
    "version",
    "updated_at",
)


def _user(row: sqlite3.Row, groups: Sequence[str] = ()) -> DirectoryUser:
    return DirectoryUser(
        id=row["id"],
        organization_id=row["organization_id"],
        directory_id=row["directory_id"],
        user_name=row["user_name"],
        email=row["email"],
        state=row["state"],
        role=row["role"],
        seat=row["seat"],
        external_id=row["external_id"],
        idp_id=row["idp_id"],
        given_name=row["given_name"],
        family_name=row["family_name"],
        groups=tuple(groups),
        raw=loads(row["raw"], {}),
        version=row["version"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


class DirectoryUserRepo:
    def __init__(self, db: Database) -> None:
        self.db = db

    def _with_groups(self, rows: builtins.list[sqlite3.Row]) -> builtins.list[DirectoryUser]:
        if not rows:
            return []
        names: dict[str, builtins.list[str]] = {}
        ids = [r["id"] for r in rows]
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            marks = ", ".join("?" for _ in chunk)
            for m in self.db.all(
                "SELECT m.user_id, g.display_name FROM directory_memberships m"
                " JOIN directory_groups g ON g.id = m.group_id"
                f" WHERE m.user_id IN ({marks}) ORDER BY g.display_name",
                chunk,
            ):
                names.setdefault(m[0], []).append(m[1])
        return [_user(r, names.get(r["id"], ())) for r in rows]

    def create(self, user: DirectoryUser, base_seat: str) -> None:
        try:
            self.db.execute(
                "INSERT INTO directory_users (id, organization_id, directory_id, external_id,"
                " user_name, email, given_name, family_name, state, role, seat, base_seat,"
                " idp_id, raw, version, created_at, updated_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    user.id,
                    user.organization_id,
                    user.directory_id,
                    user.external_id,
                    user.user_name,
                    user.email,
                    user.given_name,
                    user.family_name,
                    user.state,
                    user.role,
                    user.seat,
                    base_seat,
                    user.idp_id,
                    dumps(user.raw),
                    user.version,
                    user.created_at,
                    user.updated_at,
                ),
            )
        except sqlite3.IntegrityError as exc:
            raise AlreadyExists(f"userName {user.user_name!r} is already taken", str(exc)) from None

    def get(self, directory_id: str, user_id: str) -> DirectoryUser:
        row = self.db.one(
            "SELECT * FROM directory_users WHERE id = ? AND directory_id = ?"
            " AND state != 'deleted'",
            (user_id, directory_id),
        )
        if row is None:
            raise NotFound(f"user {user_id} not found")
        return self._with_groups([row])[0]

    def get_any(self, user_id: str) -> DirectoryUser:
        row = self.db.one("SELECT * FROM directory_users WHERE id = ?", (user_id,))
        if row is None:
            raise NotFound(f"user {user_id} not found")
        return self._with_groups([row])[0]

    def base_seat(self, user_id: str) -> str:
        value = self.db.scalar("SELECT base_seat FROM directory_users WHERE id = ?", (user_id,))
        if value is None:
            raise NotFound(f"user {user_id} not found")
        return str(value)

    def update(self, user_id: str, **fields: Any) -> None:
        try:
            update_columns(
                self.db, "directory_users", ("id", user_id), fields, _COLUMNS, json_columns=("raw",)
            )
        except sqlite3.IntegrityError as exc:
            raise AlreadyExists("userName is already taken", str(exc)) from None

    def query(self, directory_id: str, query: Query) -> Page[DirectoryUser]:
        page_sql, page_params, count_sql, count_params = scim_sql.select(
            scim_sql.USERS,
            "directory_users",
            "u.directory_id = ? AND u.state != 'deleted'",
            [directory_id],
            query,
        )
        with scim_sql.too_complex_is_invalid():
            total = int(self.db.scalar(count_sql, count_params) or 0)
            rows = self.db.all(page_sql, page_params) if query.count > 0 else []
        return Page(self._with_groups(rows), total)

    def find_unlinked(
        self, organization_id: str, user_name: str, external_id: str | None
    ) -> DirectoryUser | None:
        row = None
        if external_id is not None:
            row = self.db.one(
                "SELECT * FROM directory_users WHERE organization_id = ? AND external_id = ?"
                " AND directory_id IS NULL AND state != 'deleted'"
                " ORDER BY updated_at DESC LIMIT 1",
                (organization_id, external_id),
            )
        if row is None:
            row = self.db.one(
                "SELECT * FROM directory_users WHERE organization_id = ? AND user_name = ?"
                " AND directory_id IS NULL AND state != 'deleted'"
                " ORDER BY updated_at DESC LIMIT 1",
                (organization_id, user_name),
            )
        return None if row is None else self._with_groups([row])[0]

    def find_for_login(
        self, organization_id: str, idp_id: str | None, email: str | None
    ) -> DirectoryUser | None:
        """Link a login to a user of the organization's *active* directory by IdP id,
        externalId or email, preferring live users, then an IdP-id match, then the newest.

        Only users the directory holds now count (callers ask only while Directory Sync
        is on): rows unlinked when Directory Sync was turned off (directory_id NULL) say
        nothing about today's directory (a user deprovisioned at the IdP meanwhile stays
        'active' there forever), so they are not found and the login is refused until the
        IdP provisions the user again (provisioning.create_user re-links the same row).
        Tombstones ('deleted') of the directory are found, so their login is refused as
        deactivated."""
        row = self.db.one(
            "SELECT u.* FROM directory_users u JOIN directories d ON d.id = u.directory_id"
            " AND d.organization_id = u.organization_id AND d.state = 'active'"
            " WHERE u.organization_id = ? AND ("
            " (? IS NOT NULL AND (u.idp_id = ? OR u.external_id = ?))"
            " OR (? IS NOT NULL AND u.email = ?) OR (? IS NOT NULL AND u.user_name = ?))"
            " ORDER BY (u.state = 'deleted'),"
            " (u.idp_id IS NOT NULL AND u.idp_id = ?) DESC, u.updated_at DESC LIMIT 1",
            (organization_id, idp_id, idp_id, idp_id, email, email, email, email, idp_id),
        )
        return None if row is None else self._with_groups([row])[0]

    def list(self, directory_id: str) -> builtins.list[DirectoryUser]:
        rows = self.db.all(
            "SELECT * FROM directory_users WHERE directory_id = ?"
            " AND state != 'deleted' ORDER BY id",
            (directory_id,),
        )
        return self._with_groups(rows)

    def unlink_all(self, directory_id: str, now: float) -> int:
        return self.db.execute(
            "UPDATE directory_users SET directory_id = NULL, updated_at = ? WHERE directory_id = ?",
            (now, directory_id),
        ).rowcount
