"""Connections to the organizations' IdPs (type-specific settings as JSON)."""

from __future__ import annotations

import builtins
import sqlite3
from typing import Any

from broker.core.models import Connection
from broker.errors import NotFound
from broker.storage.db import Database
from broker.storage.rows import insert, loads, update_columns

_COLUMNS = ("preset", "name", "state", "tested_at", "config", "updated_at")


def _connection(row: sqlite3.Row) -> Connection:
    return Connection(
        id=row["id"],
        organization_id=row["organization_id"],
        type=row["type"],
        preset=row["preset"],
        name=row["name"],
        state=row["state"],
        config=loads(row["config"], {}),
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        tested_at=row["tested_at"],
    )


class ConnectionRepo:
    def __init__(self, db: Database) -> None:
        self.db = db

    def create(self, connection: Connection) -> None:
        insert(
            self.db,
            "connections",
            {
                "id": connection.id,
                "organization_id": connection.organization_id,
                "type": connection.type,
                "preset": connection.preset,
                "name": connection.name,
                "state": connection.state,
                "config": connection.config,
                "tested_at": connection.tested_at,
                "created_at": connection.created_at,
                "updated_at": connection.updated_at,
            },
            f"connection {connection.id}",
        )

    def get(self, connection_id: str) -> Connection:
        row = self.db.one("SELECT * FROM connections WHERE id = ?", (connection_id,))
        if row is None:
            raise NotFound(f"connection {connection_id} not found")
        return _connection(row)

    def list(self, organization_id: str | None = None) -> builtins.list[Connection]:
        if organization_id is None:
            rows = self.db.all("SELECT * FROM connections ORDER BY id")
        else:
            rows = self.db.all(
                "SELECT * FROM connections WHERE organization_id = ? ORDER BY id",
                (organization_id,),
            )
        return [_connection(r) for r in rows]

    def update(self, connection_id: str, **fields: Any) -> Connection:
        update_columns(
            self.db,
            "connections",
            ("id", connection_id),
            fields,
            _COLUMNS,
            json_columns=("config",),
        )
        return self.get(connection_id)

    def delete(self, connection_id: str) -> None:
        if self.db.execute("DELETE FROM connections WHERE id = ?", (connection_id,)).rowcount == 0:
            raise NotFound(f"connection {connection_id} not found")
