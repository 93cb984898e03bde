"""Append-only, numbered SQL migrations (NNNN_name.sql) and the code that applies them.

The `schema_migrations` table records what was applied. A database that has a
version newer than this code knows is refused, never touched (a downgrade would
lose data).
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from importlib import resources

from broker.errors import StoreUnavailable
from broker.storage.db import Database

_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str


def available() -> list[Migration]:
    found = []
    for entry in resources.files(__package__).iterdir():
        match = _NAME.match(entry.name)
        if match:
            found.append(Migration(int(match[1]), match[2], entry.read_text(encoding="utf-8")))
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise RuntimeError(f"two migrations share a number: {versions}")
    return found


def latest_version() -> int:
    return available()[-1].version


def applied_versions(db: Database) -> set[int]:
    if not db.one("SELECT name FROM sqlite_master WHERE type='table' AND name='schema_migrations'"):
        return set()
    return {int(r[0]) for r in db.all("SELECT version FROM schema_migrations")}


def current_version(db: Database) -> int:
    return max(applied_versions(db), default=0)


def check_current(db: Database) -> None:
    """Raise StoreUnavailable unless the schema is exactly the one this code expects."""
    have, want = current_version(db), latest_version()
    if have > want:
        raise StoreUnavailable(
            f"{db.path}: schema version {have} is newer than this broker knows ({want}); "
            "upgrade the broker or restore a backup made by this version"
        )
    if have < want or applied_versions(db) != {m.version for m in available()}:
        raise StoreUnavailable(
            f"{db.path}: schema version {have}, needs {want}; run `exec-broker migrate`"
        )


def migrate(db: Database, target: int | None = None) -> list[int]:
    """Apply pending migrations (each in its own transaction); return the versions applied."""
    migrations = available()
    done = applied_versions(db)
    newest = migrations[-1].version
    if max(done, default=0) > newest:
        check_current(db)
    target = newest if target is None else target
    applied = []
    with db.transaction() as conn:
        conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at REAL NOT NULL)"
        )
    for migration in migrations:
        if migration.version in done or migration.version > target:
            continue
        with db.transaction() as conn:
            for statement in _statements(migration.sql):
                conn.execute(statement)
            conn.execute(
                "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
                (migration.version, migration.name, time.time()),
            )
        applied.append(migration.version)
    return applied


def _statements(sql: str) -> list[str]:
    """Split a script on semicolons that end a complete statement (triggers included)."""
    import sqlite3

    statements, buffer = [], ""
    for line in sql.splitlines(keepends=True):
        buffer += line
        if sqlite3.complete_statement(buffer):
            if buffer.strip():
                statements.append(buffer.strip())
            buffer = ""
    if buffer.strip() and not buffer.strip().startswith("--"):
        statements.append(buffer.strip())
    return statements
