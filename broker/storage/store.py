"""SQLiteStore: the core's Store port on one SQLite file."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from broker.storage import migrations
from broker.storage.admins import AdminRepo
from broker.storage.audit import AuditRepo
from broker.storage.clients import ClientRepo
from broker.storage.connections import ConnectionRepo
from broker.storage.db import Database
from broker.storage.events import EventRepo
from broker.storage.keys import SigningKeyRepo
from broker.storage.organizations import DomainRepo, OrganizationRepo


class SQLiteStore:
    def __init__(self, db: Database) -> None:
        self.db = db
        self.organizations = OrganizationRepo(db)
        self.domains = DomainRepo(db)
        self.connections = ConnectionRepo(db)
        self.clients = ClientRepo(db)
        self.admins = AdminRepo(db)
        self.events = EventRepo(db)
        self.audit = AuditRepo(db)
        self.signing_keys = SigningKeyRepo(db)

    @classmethod
    def open(cls, path: Path | str, busy_timeout_ms: int = 5000, *, migrate: bool = False,
             check: bool = True) -> SQLiteStore:
        db = Database(path, busy_timeout_ms)
        if migrate:
            migrations.migrate(db)
        elif check:
            migrations.check_current(db)
        return cls(db)

    @contextmanager
    def transaction(self) -> Iterator[Any]:
        with self.db.transaction() as conn:
            yield conn

    def check(self) -> None:
        """Raise StoreUnavailable unless the file answers and its schema is current."""
        migrations.check_current(self.db)

    def close(self) -> None:
        self.db.close()
