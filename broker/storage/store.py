"""SQLiteStore: the core's Store port on one SQLite file."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from broker.storage import migrations
from broker.storage.admin_sessions import AdminSessionRepo
from broker.storage.admins import AdminRepo
from broker.storage.audit import AuditRepo
from broker.storage.clients import ClientRepo
from broker.storage.connections import ConnectionRepo
from broker.storage.db import Database
from broker.storage.dir_groups import DirectoryGroupRepo
from broker.storage.dir_users import DirectoryUserRepo
from broker.storage.directories import DirectoryRepo, RoleMappingRepo, ScimJournalRepo
from broker.storage.events import EventRepo
from broker.storage.flows import FlowRepo
from broker.storage.grants import GrantRepo
from broker.storage.keys import SigningKeyRepo
from broker.storage.organizations import DomainRepo, OrganizationRepo
from broker.storage.saml import NetworkAllowlistRepo, SamlRepo
from broker.storage.sessions import LogoutOutboxRepo, SessionRepo
from broker.storage.webhooks import WebhookRepo


class SQLiteStore:
    def __init__(self, db: Database) -> None:
        self.db = db
        self.organizations = OrganizationRepo(db)
        self.domains = DomainRepo(db)
        self.connections = ConnectionRepo(db)
        self.clients = ClientRepo(db)
        self.admins = AdminRepo(db)
        self.admin_sessions = AdminSessionRepo(db)
        self.events = EventRepo(db)
        self.audit = AuditRepo(db)
        self.signing_keys = SigningKeyRepo(db)
        self.flows = FlowRepo(db)
        self.sessions = SessionRepo(db)
        self.grants = GrantRepo(db)
        self.logout_outbox = LogoutOutboxRepo(db)
        self.directories = DirectoryRepo(db)
        self.users = DirectoryUserRepo(db)
        self.groups = DirectoryGroupRepo(db)
        self.role_mappings = RoleMappingRepo(db)
        self.scim_journal = ScimJournalRepo(db)
        self.webhooks = WebhookRepo(db)
        self.saml = SamlRepo(db)
        self.network_hosts = NetworkAllowlistRepo(db)

    @classmethod
    def open(
        cls,
        path: Path | str,
        busy_timeout_ms: int = 5000,
        *,
        migrate: bool = False,
        check: bool = True,
    ) -> SQLiteStore:
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

    def checkpoint(self) -> None:
        self.db.checkpoint()

    def check(self) -> None:
        """Raise StoreUnavailable unless the file answers and its schema is current."""
        migrations.check_current(self.db)

    def close(self) -> None:
        self.db.close()
