"""Drift between the directory and what Exec was told (the dsync.* events).

Entra cannot be forced into a full resync, so when Exec missed or lost events the admin
re-drives them from here: every linked user or group whose current version differs from
the version in its latest event (or that has no event left within the events'
retention) is listed, and `redrive` emits its current state again.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from broker.clock import Clock
from broker.core import events
from broker.core.directory_shapes import describe_group, describe_user
from broker.core.ports import Store
from broker.errors import PolicyError

_USER_TYPES = ("dsync.user.created", "dsync.user.updated", "dsync.user.deleted")
_GROUP_TYPES = ("dsync.group.created", "dsync.group.updated", "dsync.group.deleted")


@dataclass
class Drift:
    directory_id: str
    users: list[dict[str, Any]] = field(default_factory=list)
    groups: list[dict[str, Any]] = field(default_factory=list)


def _last_versions(store: Store, org_id: str, types: tuple[str, ...]) -> dict[str, int]:
    seen: dict[str, int] = {}
    cursor = 0
    while True:
        batch = store.events.after(cursor, 5000, types, [org_id])
        if not batch:
            return seen
        for event in batch:
            data = event.data
            if isinstance(data.get("id"), str):
                seen[data["id"]] = int(data.get("version") or 0)
        cursor = batch[-1].seq


def report(store: Store, org_id: str) -> Drift:
    directory = store.directories.for_organization(org_id)
    if directory is None or directory.state != "active":
        raise PolicyError("Directory Sync is off for this organization")
    drift = Drift(directory.id)
    told = _last_versions(store, org_id, _USER_TYPES)
    for user in store.users.list(directory.id):
        if told.get(user.id) != user.version:
            drift.users.append(
                {
                    "id": user.id,
                    "user_name": user.user_name,
                    "version": user.version,
                    "told": told.get(user.id),
                }
            )
    told = _last_versions(store, org_id, _GROUP_TYPES)
    for group in store.groups.list(directory.id):
        if told.get(group.id) != group.version:
            drift.groups.append(
                {
                    "id": group.id,
                    "name": group.display_name,
                    "version": group.version,
                    "told": told.get(group.id),
                }
            )
    return drift


def redrive(store: Store, clock: Clock, org_id: str) -> Drift:
    """Emit the current state of everything that drifted; returns what was re-sent."""
    now = clock.now()
    with store.transaction():
        drift = report(store, org_id)
        for item in drift.users:
            user = store.users.get(drift.directory_id, item["id"])
            events.record(store, "dsync.user.updated", org_id, describe_user(store, user), now)
        for item in drift.groups:
            group = store.groups.get(drift.directory_id, item["id"])
            events.record(store, "dsync.group.updated", org_id, describe_group(store, group), now)
    return drift
