"""Row ↔ model helpers shared by the repositories."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Mapping
from typing import Any

from broker.errors import AlreadyExists, InvalidInput
from broker.storage.db import Database


def dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


def loads(text: str | None, default: Any = None) -> Any:
    return default if text is None else json.loads(text)


def update_columns(
    db: Database,
    table: str,
    key: tuple[str, str],
    fields: Mapping[str, Any],
    allowed: Iterable[str],
    json_columns: Iterable[str] = (),
) -> None:
    """UPDATE only whitelisted columns (names never come from callers' strings)."""
    allowed, json_columns = set(allowed), set(json_columns)
    unknown = set(fields) - allowed
    if unknown:
        raise InvalidInput(f"cannot update {', '.join(sorted(unknown))} on {table}")
    if not fields:
        return
    values = [dumps(v) if k in json_columns else _plain(v) for k, v in fields.items()]
    assignments = ", ".join(f"{column} = ?" for column in fields)
    db.execute(f"UPDATE {table} SET {assignments} WHERE {key[0]} = ?", [*values, key[1]])


def insert(db: Database, table: str, values: Mapping[str, Any], what: str) -> None:
    columns = ", ".join(values)
    marks = ", ".join("?" for _ in values)
    try:
        db.execute(
            f"INSERT INTO {table} ({columns}) VALUES ({marks})",
            [_plain(v) for v in values.values()],
        )
    except sqlite3.IntegrityError as exc:
        if "UNIQUE" in str(exc) or "PRIMARY KEY" in str(exc):
            raise AlreadyExists(f"{what} already exists", str(exc)) from None
        raise


def _plain(value: Any) -> Any:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, (dict, list, tuple)):
        return dumps(value)
    return value
