"""The closed list of event types Exec learns, and how they are recorded.

Events are written in the same transaction as the change they describe (an outbox)
and delivered after commit by the webhook worker and the events API. Each carries
the full current object so that a receiver never needs to call back (DESIGN §7).
Names follow WorkOS: `area.noun.verb_past` or `area.verb_past`.
"""

from __future__ import annotations

from typing import Any

from broker.core.models import Event
from broker.core.ports import Store
from broker.ids import new_id

EVENT_TYPES: dict[str, str] = {
    "organization.created": "An organization was created.",
    "organization.updated": (
        "Policy changed: SSO or Directory Sync switched, default seat or role changed."
    ),
    "organization_domain.created": "A domain was added and awaits DNS verification.",
    "organization_domain.verified": "A domain's TXT record was found: the organization owns it.",
    "organization_domain.verification_failed": "A domain could not be verified within 30 days.",
    "organization_domain.deleted": "A domain was removed from the organization.",
    "connection.created": "A connection to an IdP was created (draft).",
    "connection.activated": "A connection became active: its users may sign in.",
    "connection.deactivated": "A connection was switched off.",
    "connection.deleted": "A connection was deleted.",
    "dsync.activated": "Directory Sync was enabled: a SCIM directory exists for the organization.",
    "dsync.deleted": "Directory Sync was disabled: users and groups were unlinked.",
    "dsync.user.created": "A directory user was provisioned.",
    "dsync.user.updated": "A directory user changed (attributes, state, role or seat).",
    "dsync.user.deleted": "A directory user was deleted.",
    "dsync.group.created": "A directory group was created.",
    "dsync.group.updated": "A directory group changed.",
    "dsync.group.deleted": "A directory group was deleted.",
    "dsync.group.user_added": "A user joined a directory group.",
    "dsync.group.user_removed": "A user left a directory group.",
    "authentication.sso_succeeded": "A user signed in through a connection.",
    "authentication.sso_failed": "A sign-in through a connection was refused.",
    "webhook_endpoint.failing": "Webhook deliveries to an endpoint kept failing for 3 days.",
}


def record(
    store: Store, type: str, organization_id: str | None, data: dict[str, Any], now: float
) -> Event:
    """Append an event; call inside the transaction that makes the change."""
    if type not in EVENT_TYPES:
        raise ValueError(f"unknown event type {type!r}")
    return store.events.append(new_id("evt"), type, organization_id, data, now)
