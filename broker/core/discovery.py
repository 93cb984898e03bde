"""Home-realm discovery: which connection a login goes to (DESIGN §4).

Order: an explicit `connection` hint picks that connection directly (as WorkOS allows);
else the hint's email domain (login_hint) or `domain_hint` → the organization that
VERIFIED that domain → its active connection; else an explicit `organization`.
A pending or failed domain never routes anyone (DESIGN §6). Returns None when nothing
matches, and the caller shows the email-entry page.
"""

from __future__ import annotations

from broker.core.models import Connection
from broker.core.ports import Store
from broker.errors import NotFound


def email_domain(email: str | None) -> str | None:
    """The lower-cased domain of an address, or None when it is not an address."""
    if not email or "@" not in email:
        return None
    domain = email.rsplit("@", 1)[1].strip().lower().rstrip(".")
    return domain or None


def active_connection(store: Store, organization_id: str) -> Connection | None:
    """The organization's active connection (the oldest if several are active)."""
    active = [c for c in store.connections.list(organization_id) if c.state == "active"]
    return active[0] if active else None


def organization_for_domain(store: Store, domain: str) -> str | None:
    owner = store.domains.verified_owner(domain.lower())
    return None if owner is None else owner.organization_id


def resolve_connection(
    store: Store,
    *,
    connection_id: str | None = None,
    organization_id: str | None = None,
    email: str | None = None,
    domain: str | None = None,
) -> Connection | None:
    """hint's domain → verified domain → organization → its active connection."""
    if connection_id:
        try:
            connection = store.connections.get(connection_id)
        except NotFound:
            return None
        return connection if connection.state == "active" else None
    for candidate in (email_domain(email), (domain or "").strip().lower() or None):
        if candidate:
            org_id = organization_for_domain(store, candidate)
            if org_id is not None:
                return active_connection(store, org_id)
    if organization_id:
        try:
            store.organizations.get(organization_id)
        except NotFound:
            return None
        return active_connection(store, organization_id)
    return None
