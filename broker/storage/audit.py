"""The audit log: who did what, when, from where. Never secrets."""

from __future__ import annotations

import builtins
from typing import Any

from broker.core.models import AuditEntry
from broker.storage.db import Database
from broker.storage.rows import dumps, loads


class AuditRepo:
    def __init__(self, db: Database) -> None:
        self.db = db

    def append(self, entry: AuditEntry) -> None:
        self.db.execute(
            "INSERT INTO audit_log (at, actor, action, organization_id, target, correlation_id,"
            " remote_addr, detail) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                entry.at,
                entry.actor,
                entry.action,
                entry.organization_id,
                entry.target,
                entry.correlation_id,
                entry.remote_addr,
                dumps(entry.detail),
            ),
        )

    def list(
        self,
        organization_id: str | None = None,
        limit: int = 100,
        correlation_id: str | None = None,
    ) -> builtins.list[AuditEntry]:
        sql = "SELECT * FROM audit_log WHERE 1=1"
        params: builtins.list[Any] = []
        if organization_id is not None:
            sql += " AND organization_id = ?"
            params.append(organization_id)
        if correlation_id is not None:
            sql += " AND correlation_id = ?"
            params.append(correlation_id)
        sql += " ORDER BY id DESC LIMIT ?"
        params.append(limit)
        return [self._entry(r) for r in self.db.all(sql, params)]

    @staticmethod
    def _entry(row: Any) -> AuditEntry:
        return AuditEntry(
            actor=row["actor"],
            action=row["action"],
            organization_id=row["organization_id"],
            target=row["target"],
            correlation_id=row["correlation_id"],
            remote_addr=row["remote_addr"],
            detail=loads(row["detail"], {}),
            at=row["at"],
            id=row["id"],
        )
