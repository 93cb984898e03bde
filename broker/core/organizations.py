"""Organizations: create, read, and the JSON shape Exec sees."""

from __future__ import annotations

from typing import Any

from broker.clock import Clock, iso
from broker.core import audit, events
from broker.core.models import Organization, Seat
from broker.core.ports import Store
from broker.errors import InvalidInput
from broker.ids import new_id

SEATS = ("full", "basic")


def create_organization(
    store: Store,
    clock: Clock,
    actor: audit.Actor,
    name: str,
    external_id: str | None = None,
    default_seat: Seat = "basic",
    default_role: str = "member",
) -> Organization:
    name = name.strip()
    if not name:
        raise InvalidInput("an organization needs a name")
    if default_seat not in SEATS:
        raise InvalidInput("default seat must be full or basic")
    now = clock.now()
    org = Organization(
        id=new_id("org"),
        name=name,
        sso_enabled=False,
        dsync_enabled=False,
        default_seat=default_seat,
        default_role=default_role,
        created_at=now,
        updated_at=now,
        external_id=external_id,
    )
    with store.transaction():
        store.organizations.create(org)
        events.record(store, "organization.created", org.id, describe(store, org), now)
        audit.record(store, actor, "organization.created", now, organization_id=org.id, name=name)
    return org


def set_default_seat(
    store: Store, clock: Clock, actor: audit.Actor, org_id: str, seat: Seat
) -> Organization:
    if seat not in SEATS:
        raise InvalidInput("default seat must be full or basic")
    now = clock.now()
    with store.transaction():
        org = store.organizations.update(org_id, default_seat=seat, updated_at=now)
        events.record(store, "organization.updated", org.id, describe(store, org), now)
        audit.record(
            store, actor, "organization.default_seat_set", now, organization_id=org_id, seat=seat
        )
    return org


def describe(store: Store, org: Organization) -> dict[str, Any]:
    """The organization as events and the API show it: domains, connections, policy."""
    return {
        "object": "organization",
        "id": org.id,
        "name": org.name,
        "external_id": org.external_id,
        "sso_enabled": org.sso_enabled,
        "directory_sync_enabled": org.dsync_enabled,
        "default_seat": org.default_seat,
        "default_role": org.default_role,
        "domains": [
            {
                "id": d.id,
                "domain": d.domain,
                "state": d.state,
                "verified_at": iso(d.verified_at) if d.verified_at else None,
            }
            for d in store.domains.list(org.id)
        ],
        "connections": [
            {"id": c.id, "type": c.type, "preset": c.preset, "name": c.name, "state": c.state}
            for c in store.connections.list(org.id)
        ],
        "created_at": iso(org.created_at),
        "updated_at": iso(org.updated_at),
    }
