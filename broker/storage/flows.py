"""Login flows (table `flows`): one row drives a login (DESIGN §4, dex auth requests).

Status changes that must happen once (an authenticated flow answered, a flow handed
to the IdP) go through `transition`, a compare-and-set on the status column, so two
workers cannot both act on the same flow.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from broker.core.ports import Flow
from broker.errors import NotFound
from broker.storage.db import Database
from broker.storage.rows import dumps, insert, loads, update_columns

_COLUMNS = (
    "status",
    "organization_id",
    "connection_id",
    "request",
    "upstream",
    "result",
    "error",
    "updated_at",
    "expires_at",
)
_JSON = ("request", "upstream", "result")


def _flow(row: sqlite3.Row) -> Flow:
    return Flow(
        id=row["id"],
        kind=row["kind"],
        status=row["status"],
        client_id=row["client_id"],
        organization_id=row["organization_id"],
        connection_id=row["connection_id"],
        request=loads(row["request"], {}),
        upstream=loads(row["upstream"], {}),
        result=loads(row["result"]),
        error=row["error"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        expires_at=row["expires_at"],
    )


class FlowRepo:
    def __init__(self, db: Database) -> None:
        self.db = db

    def create(self, flow: Flow) -> None:
        insert(
            self.db,
            "flows",
            {
                "id": flow.id,
                "kind": flow.kind,
                "status": flow.status,
                "client_id": flow.client_id,
                "organization_id": flow.organization_id,
                "connection_id": flow.connection_id,
                "request": dumps(flow.request),
                "upstream": dumps(flow.upstream),
                "result": None if flow.result is None else dumps(flow.result),
                "error": flow.error,
                "created_at": flow.created_at,
                "updated_at": flow.updated_at,
                "expires_at": flow.expires_at,
            },
            f"flow {flow.id}",
        )

    def get(self, flow_id: str) -> Flow:
        row = self.db.one("SELECT * FROM flows WHERE id = ?", (flow_id,))
        if row is None:
            raise NotFound(f"flow {flow_id} not found")
        return _flow(row)

    def update(self, flow_id: str, **fields: Any) -> Flow:
        update_columns(self.db, "flows", ("id", flow_id), fields, _COLUMNS, _JSON)
        return self.get(flow_id)

    def transition(
        self, flow_id: str, from_status: str, to_status: str, now: float, **fields: Any
    ) -> bool:
        with self.db.transaction():
            changed = self.db.execute(
                "UPDATE flows SET status = ?, updated_at = ? WHERE id = ? AND status = ?",
                (to_status, now, flow_id, from_status),
            ).rowcount
            if changed and fields:
                update_columns(self.db, "flows", ("id", flow_id), fields, _COLUMNS, _JSON)
        return bool(changed)

    def purge_expired(self, now: float, keep_seconds: float) -> int:
        """Drop flows that expired more than `keep_seconds` ago (kept a while for admins)."""
        return int(
            self.db.execute(
                "DELETE FROM flows WHERE expires_at < ?", (now - keep_seconds,)
            ).rowcount
        )
