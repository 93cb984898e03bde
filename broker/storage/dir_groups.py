"""Directory groups and memberships. A membership is one row, indexed both ways, and the
group's member count is kept on the group row, so that patching one member of a
10,000-member group costs the same as patching a group of two."""

from __future__ import annotations

import builtins
import sqlite3
from collections.abc import Sequence
from typing import Any

from broker.core.directory_types import Page
from broker.core.models import DirectoryGroup
from broker.core.query import Query
from broker.errors import NotFound
from broker.storage import scim_sql
from broker.storage.db import Database
from broker.storage.rows import dumps, loads, update_columns

_COLUMNS = ("directory_id", "external_id", "display_name", "raw", "version", "updated_at")


def _group(row: sqlite3.Row) -> DirectoryGroup:
    return DirectoryGroup(
        id=row["id"],
        organization_id=row["organization_id"],
        directory_id=row["directory_id"],
        display_name=row["display_name"],
        external_id=row["external_id"],
        raw=loads(row["raw"], {}),
        version=row["version"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


class DirectoryGroupRepo:
    def __init__(self, db: Database) -> None:
        self.db = db

    def create(self, group: DirectoryGroup) -> None:
        self.db.execute(
            "INSERT INTO directory_groups (id, organization_id, directory_id, external_id,"
            " display_name, raw, version, created_at, updated_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                group.id,
                group.organization_id,
                group.directory_id,
                group.external_id,
                group.display_name,
                dumps(group.raw),
                group.version,
                group.created_at,
                group.updated_at,
            ),
        )

    def get(self, directory_id: str, group_id: str) -> DirectoryGroup:
        row = self.db.one(
            "SELECT * FROM directory_groups WHERE id = ? AND directory_id = ?",
            (group_id, directory_id),
        )
        if row is None:
            raise NotFound(f"group {group_id} not found")
        return _group(row)

    def update(self, group_id: str, **fields: Any) -> None:
        update_columns(
            self.db, "directory_groups", ("id", group_id), fields, _COLUMNS, json_columns=("raw",)
        )

    def delete(self, group_id: str) -> None:
        self.db.execute("DELETE FROM directory_memberships WHERE group_id = ?", (group_id,))
        if self.db.execute("DELETE FROM directory_groups WHERE id = ?", (group_id,)).rowcount == 0:
            raise NotFound(f"group {group_id} not found")

    def query(self, directory_id: str, query: Query) -> Page[DirectoryGroup]:
        page_sql, page_params, count_sql, count_params = scim_sql.select(
            scim_sql.GROUPS, "directory_groups", "g.directory_id = ?", [directory_id], query
        )
        with scim_sql.too_complex_is_invalid():
            total = int(self.db.scalar(count_sql, count_params) or 0)
            rows = self.db.all(page_sql, page_params) if query.count > 0 else []
        return Page([_group(r) for r in rows], total)

    def list(self, directory_id: str) -> builtins.list[DirectoryGroup]:
        rows = self.db.all(
            "SELECT * FROM directory_groups WHERE directory_id = ? ORDER BY id", (directory_id,)
        )
        return [_group(r) for r in rows]

    def member_count(self, group_id: str) -> int:
        return int(
            self.db.scalar("SELECT member_count FROM directory_groups WHERE id = ?", (group_id,))
            or 0
        )

    def members(self, group_id: str) -> builtins.list[tuple[str, str]]:
        rows = self.db.all(
            "SELECT u.id, u.user_name FROM directory_memberships m"
            " JOIN directory_users u ON u.id = m.user_id WHERE m.group_id = ? ORDER BY u.id",
            (group_id,),
        )
        return [(r[0], r[1]) for r in rows]

    def member_ids(self, group_id: str) -> set[str]:
        return {
            r[0]
            for r in self.db.all(
                "SELECT user_id FROM directory_memberships WHERE group_id = ?", (group_id,)
            )
        }

    def add_member(self, group_id: str, user_id: str) -> bool:
        added = (
            self.db.execute(
                "INSERT OR IGNORE INTO directory_memberships (group_id, user_id) VALUES (?, ?)",
                (group_id, user_id),
            ).rowcount
            > 0
        )
        if added:
            self.db.execute(
                "UPDATE directory_groups SET member_count = member_count + 1 WHERE id = ?",
                (group_id,),
            )
        return added

    def remove_member(self, group_id: str, user_id: str) -> bool:
        removed = (
            self.db.execute(
                "DELETE FROM directory_memberships WHERE group_id = ? AND user_id = ?",
                (group_id, user_id),
            ).rowcount
            > 0
        )
        if removed:
            self.db.execute(
                "UPDATE directory_groups SET member_count = member_count - 1 WHERE id = ?",
                (group_id,),
            )
        return removed

    def groups_of(self, user_id: str) -> builtins.list[tuple[str, str]]:
        rows = self.db.all(
            "SELECT g.id, g.display_name FROM directory_memberships m"
            " JOIN directory_groups g ON g.id = m.group_id WHERE m.user_id = ?"
            " ORDER BY g.display_name",
            (user_id,),
        )
        return [(r[0], r[1]) for r in rows]

    def groups_of_many(self, user_ids: Sequence[str]) -> dict[str, builtins.list[tuple[str, str]]]:
        found: dict[str, builtins.list[tuple[str, str]]] = {}
        for start in range(0, len(user_ids), 500):
            chunk = list(user_ids[start : start + 500])
            marks = ", ".join("?" for _ in chunk)
            for r in self.db.all(
                "SELECT m.user_id, g.id, g.display_name FROM directory_memberships m"
                " JOIN directory_groups g ON g.id = m.group_id"
                f" WHERE m.user_id IN ({marks}) ORDER BY g.display_name",
                chunk,
            ):
                found.setdefault(r[0], []).append((r[1], r[2]))
        return found

    def unlink_all(self, directory_id: str, now: float) -> int:
        return self.db.execute(
            "UPDATE directory_groups SET directory_id = NULL, updated_at = ?"
            " WHERE directory_id = ?",
            (now, directory_id),
        ).rowcount
