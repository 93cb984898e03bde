"""The organization's SCIM directory: activation, token, authentication, throttling.

- One directory per organization, made when Directory Sync is enabled (DESIGN §4) and
  kept (same id, same base URL) across disable/enable.
- The bearer token (`brk_scim_…`) is generated here, shown once and stored as a SHA-256
  hash; rotation keeps the previous token valid for `scim.token_overlap_seconds`.
- Authentication compares hashes in constant time against both slots, whether or not
  the directory exists, so a caller learns nothing from timing.
- Disabling unlinks users and groups (they stay known, `directory_id` NULL) and stops
  the endpoint: an inactive directory has no token hash and answers 401.
"""

from __future__ import annotations

from typing import Any

from broker.core import events
from broker.core.directory_types import Directory
from broker.core.ports import Store
from broker.errors import NotFound, PolicyError
from broker.ids import hash_token, new_id, new_secret, tokens_equal

_NO_MATCH = hash_token("no directory")  # compared against when a slot is empty


def base_path(directory_id: str) -> str:
    return f"/scim/v2/{directory_id}"


def describe(directory: Directory, public_url: str | None = None) -> dict[str, Any]:
    shown: dict[str, Any] = {
        "object": "directory",
        "id": directory.id,
        "organization_id": directory.organization_id,
        "state": directory.state,
        "type": "scim_v2",
        "base_path": base_path(directory.id),
        "previous_token_valid_until": directory.previous_token_expires_at,
    }
    if public_url:
        shown["scim_base_url"] = public_url.rstrip("/") + base_path(directory.id)
    return shown


def activate(store: Store, org_id: str, now: float) -> tuple[str, str]:
    """Create (or re-open) the organization's directory with a fresh token; inside the
    caller's transaction (policy.enable_directory_sync)."""
    token = new_secret("scim")
    existing = store.directories.for_organization(org_id)
    if existing is None:
        directory = Directory(
            id=new_id("dir"),
            organization_id=org_id,
            state="active",
            token_hash=hash_token(token),
            created_at=now,
            updated_at=now,
            token_rotated_at=now,
        )
        store.directories.create(directory)
    else:
        directory = store.directories.update(
            existing.id,
            state="active",
            token_hash=hash_token(token),
            previous_token_hash=None,
            previous_token_expires_at=None,
            updated_at=now,
            token_rotated_at=now,
        )
    events.record(store, "dsync.activated", org_id, describe(directory), now)
    return directory.id, token


def deactivate(store: Store, org_id: str, now: float) -> dict[str, Any]:
    """Stop the endpoint and unlink users and groups; returns counts for the audit log."""
    directory = store.directories.for_organization(org_id)
    if directory is None:
        return {"users_unlinked": 0, "groups_unlinked": 0}
    users = store.users.unlink_all(directory.id, now)
    groups = store.groups.unlink_all(directory.id, now)
    directory = store.directories.update(
        directory.id,
        state="inactive",
        token_hash=None,
        previous_token_hash=None,
        previous_token_expires_at=None,
        updated_at=now,
    )
    data = describe(directory) | {"users_unlinked": users, "groups_unlinked": groups}
    events.record(store, "dsync.deleted", org_id, data, now)
    return {"directory_id": directory.id, "users_unlinked": users, "groups_unlinked": groups}


def rotate_token(store: Store, org_id: str, now: float, overlap_seconds: float) -> str:
    """A new token; the current one keeps working for `overlap_seconds`."""
    with store.transaction():
        directory = store.directories.for_organization(org_id)
        if directory is None or directory.state != "active":
            raise PolicyError("Directory Sync is off for this organization: enable it first")
        token = new_secret("scim")
        store.directories.update(
            directory.id,
            token_hash=hash_token(token),
            previous_token_hash=directory.token_hash if overlap_seconds > 0 else None,
            previous_token_expires_at=now + overlap_seconds if overlap_seconds > 0 else None,
            updated_at=now,
            token_rotated_at=now,
        )
    return token


def authenticate(store: Store, directory_id: str, token: str | None, now: float) -> Directory:
    """The active directory `token` opens, else NotFound (the edge answers 401 either way)."""
    try:
        directory: Directory | None = store.directories.get(directory_id)
    except NotFound:
        directory = None
    presented = hash_token(token or "")
    current = directory.token_hash if directory and directory.token_hash else _NO_MATCH
    previous = _NO_MATCH
    if (
        directory
        and directory.previous_token_hash
        and directory.previous_token_expires_at
        and directory.previous_token_expires_at > now
    ):
        previous = directory.previous_token_hash
    # Both comparisons always run: no early exit that timing could reveal.
    ok_current = tokens_equal(presented, current)
    ok_previous = tokens_equal(presented, previous)
    if (
        directory is None
        or directory.state != "active"
        or not token
        or not (ok_current or ok_previous)
    ):
        raise NotFound("unknown directory or token")
    return directory


def throttle(store: Store, directory_id: str, now: float, rate_per_second: float) -> float:
    """Take one request from the directory's bucket (burst 4x the rate, settings.scim);
    0 when allowed, else the seconds a client should wait (Retry-After)."""
    return store.directories.take_request(
        directory_id, now, float(rate_per_second), 4.0 * rate_per_second
    )
