"""Directories (one per organization), group → role mappings and the SCIM request journal.

Users and groups live in broker.storage.dir_users / dir_groups. The token bucket that
throttles each directory is a pair of columns on its row, updated inside the request's
write transaction, so that every worker process shares one limit (SQLite serialises
writers with BEGIN IMMEDIATE).
"""

from __future__ import annotations

import builtins
import sqlite3
from typing import Any

from broker.core.directory_types import Directory, JournalEntry, RoleMapping
from broker.errors import NotFound
from broker.storage.db import Database
from broker.storage.rows import dumps, insert, loads, update_columns

_COLUMNS = (
    "state",
    "token_hash",
    "previous_token_hash",
    "previous_token_expires_at",
    "updated_at",
    "token_rotated_at",
)


def _directory(row: sqlite3.Row) -> Directory:
    return Directory(
        id=row["id"],
        organization_id=row["organization_id"],
        state=row["state"],
        token_hash=row["token_hash"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        previous_token_hash=row["previous_token_hash"],
        previous_token_expires_at=row["previous_token_expires_at"],
        token_rotated_at=row["token_rotated_at"],
    )


class DirectoryRepo:
    def __init__(self, db: Database) -> None:
        self.db = db

    def create(self, directory: Directory) -> None:
        insert(
            self.db,
            "directories",
            {
                "id": directory.id,
                "organization_id": directory.organization_id,
                "state": directory.state,
                "token_hash": directory.token_hash,
                "created_at": directory.created_at,
                "updated_at": directory.updated_at,
                "token_rotated_at": directory.token_rotated_at,
            },
            f"directory of {directory.organization_id}",
        )

    def get(self, directory_id: str) -> Directory:
        row = self.db.one("SELECT * FROM directories WHERE id = ?", (directory_id,))
        if row is None:
            raise NotFound(f"directory {directory_id} not found")
        return _directory(row)

    def for_organization(self, organization_id: str) -> Directory | None:
        row = self.db.one("SELECT * FROM directories WHERE organization_id = ?", (organization_id,))
        return None if row is None else _directory(row)

    def update(self, directory_id: str, **fields: Any) -> Directory:
        update_columns(self.db, "directories", ("id", directory_id), fields, _COLUMNS)
        return self.get(directory_id)

    def take_request(self, directory_id: str, now: float, rate: float, burst: float) -> float:
        # The common case, a token to take, is one statement: refill by the time elapsed
        # (capped at `burst`), take one, only when at least one is there. A refused
        # request leaves the row alone (refilling later from the old time gives the same
        # tokens as refilling now) and reads it to say how long to wait.
        refilled = (
            "min(:burst, CASE WHEN bucket_tokens IS NULL OR bucket_at IS NULL THEN :burst"
            " ELSE bucket_tokens + max(0.0, :now - bucket_at) * :rate END)"
        )
        params = {"id": directory_id, "now": now, "rate": rate, "burst": burst}
        taken = self.db.all(  # all(): a RETURNING statement must run to its end
            f"UPDATE directories SET bucket_tokens = {refilled} - 1.0, bucket_at = :now"
            f" WHERE id = :id AND {refilled} >= 1.0 RETURNING 1",
            params,
        )
        if taken:
            return 0.0
        row = self.db.one(f"SELECT {refilled} FROM directories WHERE id = :id", params)
        if row is None:
            raise NotFound(f"directory {directory_id} not found")
        return (1.0 - float(row[0])) / rate


def _mapping(row: sqlite3.Row) -> RoleMapping:
    return RoleMapping(
        id=row["id"],
        organization_id=row["organization_id"],
        role=row["role"],
        priority=row["priority"],
        created_at=row["created_at"],
        group_id=row["group_id"],
        group_name=row["group_name"],
        seat=row["seat"],
    )


class RoleMappingRepo:
    def __init__(self, db: Database) -> None:
        self.db = db

    def create(self, mapping: RoleMapping) -> None:
        insert(
            self.db,
            "role_mappings",
            {
                "id": mapping.id,
                "organization_id": mapping.organization_id,
                "group_id": mapping.group_id,
                "group_name": mapping.group_name,
                "role": mapping.role,
                "seat": mapping.seat,
                "priority": mapping.priority,
                "created_at": mapping.created_at,
            },
            "role mapping",
        )

    def list(self, organization_id: str) -> builtins.list[RoleMapping]:
        rows = self.db.all(
            "SELECT * FROM role_mappings WHERE organization_id = ? ORDER BY priority DESC, id",
            (organization_id,),
        )
        return [_mapping(r) for r in rows]

    def delete(self, organization_id: str, mapping_id: str) -> None:
        cur = self.db.execute(
            "DELETE FROM role_mappings WHERE organization_id = ? AND id = ?",
            (organization_id, mapping_id),
        )
        if cur.rowcount == 0:
            raise NotFound(f"role mapping {mapping_id} not found")

    def matching(self, organization_id: str, user_id: str) -> builtins.list[RoleMapping]:
        rows = self.db.all(
            "SELECT DISTINCT r.* FROM directory_memberships m"
            " JOIN directory_groups g ON g.id = m.group_id"
            " JOIN role_mappings r ON r.organization_id = ?"
            "  AND (r.group_id = g.id OR r.group_name = g.display_name)"
            " WHERE m.user_id = ? ORDER BY r.priority DESC, r.id",
            (organization_id, user_id),
        )
        return [_mapping(r) for r in rows]


def _entry(row: sqlite3.Row) -> JournalEntry:
    return JournalEntry(
        id=row["id"],
        directory_id=row["directory_id"],
        organization_id=row["organization_id"],
        at=row["at"],
        method=row["method"],
        path=row["path"],
        status=row["status"],
        request_body=row["request_body"],
        response_body=row["response_body"],
        change=loads(row["change"], {}),
        user_agent=row["user_agent"],
        remote_addr=row["remote_addr"],
        request_id=row["request_id"],
        ms=row["ms"],
    )


class ScimJournalRepo:
    def __init__(self, db: Database) -> None:
        self.db = db

    def append(self, entry: JournalEntry) -> None:
        self.db.execute(
            "INSERT INTO scim_requests (directory_id, organization_id, at, method, path, status,"
            " request_body, response_body, change, user_agent, remote_addr, request_id, ms)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                entry.directory_id,
                entry.organization_id,
                entry.at,
                entry.method,
                entry.path,
                entry.status,
                entry.request_body,
                entry.response_body,
                dumps(entry.change) if entry.change else None,
                entry.user_agent,
                entry.remote_addr,
                entry.request_id,
                entry.ms,
            ),
        )

    def list(
        self, directory_id: str, limit: int = 100, before_id: int | None = None
    ) -> builtins.list[JournalEntry]:
        rows = self.db.all(
            "SELECT * FROM scim_requests WHERE directory_id = ? AND id < ?"
            " ORDER BY id DESC LIMIT ?",
            (directory_id, before_id if before_id is not None else 2**62, limit),
        )
        return [_entry(r) for r in rows]

    def purge_before(self, at: float) -> int:
        return self.db.execute("DELETE FROM scim_requests WHERE at < ?", (at,)).rowcount
