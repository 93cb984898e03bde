"""Group → role (and seat) mappings, and what role and seat a directory user ends up with.

A user's role is the role of the highest-priority mapping whose group the user is in
(a mapping names a group by id or by display name, case-insensitively); with none, the
organization's default role. A mapping may also grant a seat; a user without such a
mapping keeps the seat given at provisioning (the organization's default seat then).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from broker.clock import Clock
from broker.core import audit
from broker.core.directory_types import RoleMapping
from broker.core.models import Seat
from broker.core.ports import Store
from broker.errors import InvalidInput
from broker.ids import new_id

# Group names match as SQLite's NOCASE collation does (the column's): ASCII letters only.
_ASCII_FOLD = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def fold(name: str) -> str:
    return name.translate(_ASCII_FOLD)


def choose(
    mappings: Sequence[RoleMapping], groups: Iterable[tuple[str, str]], default_role: str
) -> tuple[str, Seat | None]:
    """The role, and the mapped seat (None: keep the base seat), of a user in `groups`
    (id, display name), given all of the organization's mappings in their order of
    precedence (priority descending, then id: RoleMappingRepo.list). Pure, so that a
    write touching many users reads the mappings once."""
    ids: set[str] = set()
    names: set[str] = set()
    for group_id, name in groups:
        ids.add(group_id)
        names.add(fold(name))
    matched = [
        m
        for m in mappings
        if (m.group_id is not None and m.group_id in ids)
        or (m.group_name is not None and fold(m.group_name) in names)
    ]
    role = matched[0].role if matched else default_role
    seat = next((m.seat for m in matched if m.seat), None)
    return role, None if seat is None else ("full" if seat == "full" else "basic")


def resolve(
    store: Store, organization_id: str, user_id: str, default_role: str, base_seat: str
) -> tuple[str, Seat]:
    role, seat = choose(
        store.role_mappings.list(organization_id), store.groups.groups_of(user_id), default_role
    )
    if seat is None:
        seat = "full" if base_seat == "full" else "basic"
    return role, seat


def add_mapping(
    store: Store,
    clock: Clock,
    actor: audit.Actor,
    organization_id: str,
    *,
    role: str,
    group_id: str | None = None,
    group_name: str | None = None,
    priority: int = 0,
    seat: Seat | None = None,
) -> RoleMapping:
    role = role.strip()
    if not role:
        raise InvalidInput("a role mapping needs a role")
    if (group_id is None) == (group_name is None):
        raise InvalidInput("name the group either by id or by display name")
    if seat not in (None, "full", "basic"):
        raise InvalidInput("seat must be full or basic")
    now = clock.now()
    mapping = RoleMapping(
        id=new_id("rmap"),
        organization_id=organization_id,
        role=role,
        priority=priority,
        created_at=now,
        group_id=group_id,
        group_name=group_name.strip() if group_name else None,
        seat=seat,
    )
    with store.transaction():
        store.organizations.get(organization_id)
        store.role_mappings.create(mapping)
        audit.record(
            store,
            actor,
            "role_mapping.added",
            now,
            organization_id=organization_id,
            target=mapping.id,
            role=role,
            group_id=group_id,
            group_name=group_name,
            priority=priority,
            seat=seat,
        )
        _reassign(store, clock, organization_id)
    return mapping


def remove_mapping(
    store: Store, clock: Clock, actor: audit.Actor, organization_id: str, mapping_id: str
) -> None:
    now = clock.now()
    with store.transaction():
        store.role_mappings.delete(organization_id, mapping_id)
        audit.record(
            store,
            actor,
            "role_mapping.removed",
            now,
            organization_id=organization_id,
            target=mapping_id,
        )
        _reassign(store, clock, organization_id)


def _reassign(store: Store, clock: Clock, organization_id: str) -> None:
    from broker.core import provisioning  # provisioning uses resolve(); import late

    provisioning.reassign_organization(store, clock, organization_id)
