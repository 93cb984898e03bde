"""What the organization page shows: one read of the store, on the store thread.

Read-only: every decision shown here (can SSO be enabled, which connections count)
comes from the core's own functions (policy.sso_blockers, policy.usable_connections).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from broker.core import domains, policy
from broker.core.directory_types import Directory, JournalEntry
from broker.core.models import AuditEntry, Connection, Domain, Organization
from broker.core.ports import Store

LOGIN_ACTIONS = ("login.", "connection.test_")


@dataclass(frozen=True)
class DomainRow:
    domain: Domain
    record_name: str
    record_value: str


@dataclass(frozen=True)
class Overview:
    org: Organization
    domains: list[DomainRow]
    connections: list[Connection]
    usable_connection_ids: set[str]
    sso_blockers: list[str]
    directory: Directory | None
    scim_base_url: str | None
    user_count: int
    group_count: int
    recent_logins: list[AuditEntry]
    scim_activity: list[JournalEntry] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)


def overview(store: Store, org_id: str, public_url: str) -> Overview:
    org = store.organizations.get(org_id)
    rows = []
    for record in store.domains.list(org_id):
        name, value = domains.txt_record(record)
        rows.append(DomainRow(record, name, value))
    directory = store.directories.for_organization(org_id)
    users = groups = 0
    activity: list[JournalEntry] = []
    base_url = None
    if directory is not None:
        base_url = public_url.rstrip("/") + f"/scim/v2/{directory.id}"
        if directory.state == "active":
            users = len(store.users.list(directory.id))
            groups = len(store.groups.list(directory.id))
        activity = store.scim_journal.list(directory.id, limit=10)
    audit_entries = store.audit.list(organization_id=org_id, limit=300)
    logins = [e for e in audit_entries if e.action.startswith(LOGIN_ACTIONS)][:10]
    return Overview(
        org=org,
        domains=rows,
        connections=store.connections.list(org_id),
        usable_connection_ids={c.id for c in policy.usable_connections(store, org_id)},
        sso_blockers=policy.sso_blockers(store, org_id),
        directory=directory,
        scim_base_url=base_url,
        user_count=users,
        group_count=groups,
        recent_logins=logins,
        scim_activity=activity,
    )
