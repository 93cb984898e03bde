"""The event log (outbox). `seq` is the cursor.

SQLite admits one writer at a time and every write runs under BEGIN IMMEDIATE, so a
row's AUTOINCREMENT seq is assigned while holding the write lock and rows become
visible in seq order: a reader that has seen seq N can never later find a new row
with a smaller seq (docs/adr/0004). A PostgreSQL backend would need a commit-ordered
cursor instead (e.g. a single-writer sequence table).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any

from broker.core.models import Event
from broker.storage.db import Database
from broker.storage.rows import dumps, loads


def _event(row: sqlite3.Row) -> Event:
    return Event(
        seq=row["seq"],
        id=row["id"],
        type=row["type"],
        organization_id=row["organization_id"],
        data=loads(row["data"], {}),
        created_at=row["created_at"],
    )


class EventRepo:
    def __init__(self, db: Database) -> None:
        self.db = db

    def append(
        self, event_id: str, type: str, organization_id: str | None, data: dict[str, Any], at: float
    ) -> Event:
        cur = self.db.execute(
            "INSERT INTO events (id, type, organization_id, data, created_at)"
            " VALUES (?, ?, ?, ?, ?)",
            (event_id, type, organization_id, dumps(data), at),
        )
        return Event(int(cur.lastrowid or 0), event_id, type, organization_id, data, at)

    def after(
        self,
        seq: int,
        limit: int,
        types: Sequence[str] = (),
        organization_ids: Sequence[str] | None = None,
    ) -> list[Event]:
        sql = "SELECT * FROM events WHERE seq > ?"
        params: list[Any] = [seq]
        if types:
            sql += f" AND type IN ({', '.join('?' for _ in types)})"
            params += list(types)
        if organization_ids is not None:
            sql += f" AND organization_id IN ({', '.join('?' for _ in organization_ids)})"
            params += list(organization_ids)
        sql += " ORDER BY seq LIMIT ?"
        params.append(limit)
        return [_event(r) for r in self.db.all(sql, params)]

    def purge_before(self, at: float) -> int:
        return self.db.execute("DELETE FROM events WHERE created_at < ?", (at,)).rowcount
