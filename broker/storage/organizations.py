"""Organizations and their domains."""

from __future__ import annotations

import builtins
import sqlite3
from typing import Any

from broker.core.models import Domain, Organization
from broker.errors import Conflict, NotFound
from broker.storage.db import Database
from broker.storage.rows import insert, update_columns

_ORG_COLUMNS = (
    "name",
    "external_id",
    "sso_enabled",
    "dsync_enabled",
    "default_seat",
    "default_role",
    "updated_at",
)


def _org(row: sqlite3.Row) -> Organization:
    return Organization(
        id=row["id"],
        name=row["name"],
        sso_enabled=bool(row["sso_enabled"]),
        dsync_enabled=bool(row["dsync_enabled"]),
        default_seat=row["default_seat"],
        default_role=row["default_role"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        external_id=row["external_id"],
    )


class OrganizationRepo:
    def __init__(self, db: Database) -> None:
        self.db = db

    def create(self, org: Organization) -> None:
        insert(
            self.db,
            "organizations",
            {
                "id": org.id,
                "name": org.name,
                "external_id": org.external_id,
                "sso_enabled": org.sso_enabled,
                "dsync_enabled": org.dsync_enabled,
                "default_seat": org.default_seat,
                "default_role": org.default_role,
                "created_at": org.created_at,
                "updated_at": org.updated_at,
            },
            f"organization {org.external_id or org.id}",
        )

    def get(self, org_id: str) -> Organization:
        row = self.db.one("SELECT * FROM organizations WHERE id = ?", (org_id,))
        if row is None:
            raise NotFound(f"organization {org_id} not found")
        return _org(row)

    def list(self) -> builtins.list[Organization]:
        return [_org(r) for r in self.db.all("SELECT * FROM organizations ORDER BY id")]

    def update(self, org_id: str, **fields: Any) -> Organization:
        update_columns(self.db, "organizations", ("id", org_id), fields, _ORG_COLUMNS)
        return self.get(org_id)


_DOMAIN_COLUMNS = (
    "state",
    "verified_at",
    "last_checked_at",
    "next_check_at",
    "check_count",
    "last_error",
)


def _domain(row: sqlite3.Row) -> Domain:
    return Domain(
        id=row["id"],
        organization_id=row["organization_id"],
        domain=row["domain"],
        state=row["state"],
        verification_token=row["verification_token"],
        created_at=row["created_at"],
        verified_at=row["verified_at"],
        last_checked_at=row["last_checked_at"],
        next_check_at=row["next_check_at"],
        check_count=row["check_count"],
        last_error=row["last_error"],
    )


class DomainRepo:
    def __init__(self, db: Database) -> None:
        self.db = db

    def create(self, domain: Domain) -> None:
        insert(
            self.db,
            "domains",
            {
                "id": domain.id,
                "organization_id": domain.organization_id,
                "domain": domain.domain,
                "state": domain.state,
                "verification_token": domain.verification_token,
                "next_check_at": domain.next_check_at,
                "created_at": domain.created_at,
            },
            f"domain {domain.domain}",
        )

    def get(self, domain_id: str) -> Domain:
        row = self.db.one("SELECT * FROM domains WHERE id = ?", (domain_id,))
        if row is None:
            raise NotFound(f"domain {domain_id} not found")
        return _domain(row)

    def find(self, organization_id: str, domain: str) -> Domain:
        row = self.db.one(
            "SELECT * FROM domains WHERE organization_id = ? AND domain = ?",
            (organization_id, domain),
        )
        if row is None:
            raise NotFound(f"domain {domain} is not registered for {organization_id}")
        return _domain(row)

    def list(self, organization_id: str) -> builtins.list[Domain]:
        rows = self.db.all(
            "SELECT * FROM domains WHERE organization_id = ? ORDER BY domain", (organization_id,)
        )
        return [_domain(r) for r in rows]

    def verified_owner(self, domain: str) -> Domain | None:
        row = self.db.one(
            "SELECT * FROM domains WHERE domain = ? AND state = 'verified'", (domain,)
        )
        return None if row is None else _domain(row)

    def due_for_check(self, now: float, limit: int) -> builtins.list[Domain]:
        rows = self.db.all(
            "SELECT * FROM domains WHERE state = 'pending' AND next_check_at <= ?"
            " ORDER BY next_check_at LIMIT ?",
            (now, limit),
        )
        return [_domain(r) for r in rows]

    def update(self, domain_id: str, **fields: Any) -> Domain:
        try:
            update_columns(self.db, "domains", ("id", domain_id), fields, _DOMAIN_COLUMNS)
        except sqlite3.IntegrityError:
            raise Conflict("this domain is already verified by another organization") from None
        return self.get(domain_id)

    def delete(self, domain_id: str) -> None:
        if self.db.execute("DELETE FROM domains WHERE id = ?", (domain_id,)).rowcount == 0:
            raise NotFound(f"domain {domain_id} not found")
