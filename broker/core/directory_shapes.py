"""The JSON shapes Exec sees for directory users and groups (WorkOS's directory_user and
directory_group objects), carried whole by every dsync.* event so that a receiver never
needs to call back (DESIGN §7)."""

from __future__ import annotations

from typing import Any

from broker.clock import iso
from broker.core.models import DirectoryGroup, DirectoryUser
from broker.core.ports import Store

ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"


def describe_user(
    store: Store, user: DirectoryUser, groups: list[tuple[str, str]] | None = None
) -> dict[str, Any]:
    if groups is None:
        groups = store.groups.groups_of(user.id)
    raw = user.raw
    enterprise: dict[str, Any] = raw[ENTERPRISE] if isinstance(raw.get(ENTERPRISE), dict) else {}
    return {
        "object": "directory_user",
        "id": user.id,
        "directory_id": user.directory_id,
        "organization_id": user.organization_id,
        "idp_id": user.idp_id,
        "external_id": user.external_id,
        "user_name": user.user_name,
        "email": user.email,
        "emails": raw.get("emails") or [],
        "first_name": user.given_name,
        "last_name": user.family_name,
        "state": user.state,
        "role": {"slug": user.role},
        "seat": user.seat,
        "groups": [{"id": gid, "name": name} for gid, name in groups],
        "custom_attributes": {k: enterprise[k] for k in sorted(enterprise)},
        "raw_attributes": raw,
        "version": user.version,
        "created_at": iso(user.created_at),
        "updated_at": iso(user.updated_at),
    }


def describe_group(
    store: Store, group: DirectoryGroup, member_count: int | None = None
) -> dict[str, Any]:
    return {
        "object": "directory_group",
        "id": group.id,
        "directory_id": group.directory_id,
        "organization_id": group.organization_id,
        "external_id": group.external_id,
        "name": group.display_name,
        "member_count": store.groups.member_count(group.id)
        if member_count is None
        else member_count,
        "raw_attributes": group.raw,
        "version": group.version,
        "created_at": iso(group.created_at),
        "updated_at": iso(group.updated_at),
    }
