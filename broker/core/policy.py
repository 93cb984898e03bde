"""The product's rules for switching SSO and Directory Sync (DESIGN §4, the seed's rules).

- Enabling SSO needs a verified domain and an active connection that passed a test login.
  Once on, SSO is the only way in (Exec disables password sign-in on `organization.updated`).
- Enabling Directory Sync needs SSO on; it creates the organization's SCIM directory.
- Disabling Directory Sync stops SCIM and unlinks users and groups; SSO stays on.
- Disabling SSO disables both and unlinks everyone (broker sessions end).
- Verified domains survive all of it.
"""

from __future__ import annotations

from dataclasses import dataclass

from broker.clock import Clock
from broker.core import audit, events
from broker.core.models import Connection, Organization
from broker.core.organizations import describe
from broker.core.ports import Store
from broker.errors import PolicyError


def usable_connections(store: Store, org_id: str) -> list[Connection]:
    """Active connections that passed a test login (or were activated without one, audited)."""
    return [
        c
        for c in store.connections.list(org_id)
        if c.state == "active"
        and (c.tested_at is not None or c.config.get("activated_without_test"))
    ]


def sso_blockers(store: Store, org_id: str) -> list[str]:
    """Why SSO cannot be enabled yet, in plain words (empty: it can)."""
    reasons = []
    if not any(d.state == "verified" for d in store.domains.list(org_id)):
        reasons.append("verify at least one email domain first")
    if not usable_connections(store, org_id):
        reasons.append("activate a connection that passed a test login first")
    return reasons


def enable_sso(store: Store, clock: Clock, actor: audit.Actor, org_id: str) -> Organization:
    now = clock.now()
    with store.transaction():
        org = store.organizations.get(org_id)
        if org.sso_enabled:
            return org
        blockers = sso_blockers(store, org_id)
        if blockers:
            raise PolicyError("SSO cannot be enabled: " + "; ".join(blockers))
        org = store.organizations.update(org_id, sso_enabled=True, updated_at=now)
        events.record(store, "organization.updated", org_id, describe(store, org), now)
        audit.record(store, actor, "sso.enabled", now, organization_id=org_id)
    return org


def disable_sso(store: Store, clock: Clock, actor: audit.Actor, org_id: str) -> Organization:
    now = clock.now()
    with store.transaction():
        org = store.organizations.get(org_id)
        if org.dsync_enabled:
            disable_directory_sync(store, clock, actor, org_id)
        ended = store.sessions.end_for_organization(org_id, now)
        org = store.organizations.update(org_id, sso_enabled=False, updated_at=now)
        events.record(store, "organization.updated", org_id, describe(store, org), now)
        audit.record(
            store, actor, "sso.disabled", now, organization_id=org_id, sessions_ended=ended
        )
    return org


@dataclass(frozen=True)
class DirectoryEnabled:
    organization: Organization
    directory_id: str
    token: str  # shown once


def enable_directory_sync(
    store: Store, clock: Clock, actor: audit.Actor, org_id: str
) -> DirectoryEnabled:
    from broker.core import directories  # the directory aggregate lives there

    now = clock.now()
    with store.transaction():
        org = store.organizations.get(org_id)
        if not org.sso_enabled:
            raise PolicyError("Directory Sync needs SSO on: enable SSO first")
        if org.dsync_enabled:
            raise PolicyError("Directory Sync is already on; rotate the token to get a new one")
        directory_id, token = directories.activate(store, org_id, now)
        org = store.organizations.update(org_id, dsync_enabled=True, updated_at=now)
        events.record(store, "organization.updated", org_id, describe(store, org), now)
        audit.record(
            store, actor, "dsync.enabled", now, organization_id=org_id, target=directory_id
        )
    return DirectoryEnabled(org, directory_id, token)


def disable_directory_sync(
    store: Store, clock: Clock, actor: audit.Actor, org_id: str
) -> Organization:
    from broker.core import directories

    now = clock.now()
    with store.transaction():
        org = store.organizations.get(org_id)
        if not org.dsync_enabled:
            return org
        unlinked = directories.deactivate(store, org_id, now)
        org = store.organizations.update(org_id, dsync_enabled=False, updated_at=now)
        events.record(store, "organization.updated", org_id, describe(store, org), now)
        audit.record(store, actor, "dsync.disabled", now, organization_id=org_id, **unlinked)
    return org
