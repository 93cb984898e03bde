"""Provisioning: what a SCIM write does to directory users and groups (DESIGN §4, SCIM write).

Every function runs in one store transaction (joining the caller's), writes the data and
its dsync.* events together, so a failed write leaves neither. Decisions made here:

- active=false → state inactive: the next login is refused at once, and the user's
  refresh tokens are revoked with a back-channel logout to Exec (core.access).
- DELETE → state deleted (a tombstone that still refuses logins); memberships end.
- A new user gets the organization's default seat and role; memberships then give the
  role of the highest-priority mapped group (core.roles).
- A user re-provisioned after Directory Sync was switched off and on again is re-linked
  (same usr_ id Exec already knows) instead of duplicated.
- Writes that change nothing emit nothing (IdPs resend unchanged users every cycle).

Cost: every write runs under the store's single write lock, so it reads what it needs
once (a membership PATCH of 50 users reads the 50 users, their groups and the role
mappings in a handful of queries) and never re-reads a row it has just written.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

from broker.clock import Clock
from broker.core import events, roles
from broker.core import query as q
from broker.core.directory_shapes import describe_group, describe_user
from broker.core.directory_types import (
    Directory,
    GroupAttributes,
    MemberChange,
    RoleMapping,
    UserAttributes,
)
from broker.core.models import DirectoryGroup, DirectoryUser, DirectoryUserState, Organization
from broker.core.ports import Store
from broker.errors import Conflict, InvalidInput, NotFound
from broker.ids import new_id


class PreconditionFailed(Conflict):
    """If-Match named a version that is not the current one (RFC 7644 §3.14)."""

    code = "precondition_failed"


def _check_version(version: int, if_match: int | None) -> None:
    if if_match is not None and if_match != version:
        raise PreconditionFailed(
            "the resource changed since it was read", f"If-Match {if_match}, current {version}"
        )


def _revoke(store: Store, clock: Clock, user: DirectoryUser, reason: str) -> None:
    """Deprovisioning reaches Exec at once: refresh tokens revoked, back-channel logout."""
    from broker.core import access

    access.revoke_user(
        store,
        clock,
        organization_id=user.organization_id,
        email=user.email,
        directory_user_id=user.id,
        reason=reason,
    )


# -- users ---------------------------------------------------------------------------


def create_user(
    store: Store, clock: Clock, directory: Directory, attrs: UserAttributes
) -> DirectoryUser:
    now = clock.now()
    with store.transaction():
        org = store.organizations.get(directory.organization_id)
        relinked = store.users.find_unlinked(org.id, attrs.user_name, attrs.external_id)
        if relinked is not None:
            store.users.update(relinked.id, directory_id=directory.id)
            relinked = dataclasses.replace(relinked, directory_id=directory.id)
            return _apply_user(store, clock, org.id, relinked, attrs, now, force_event=True)
        state: DirectoryUserState = "active" if attrs.active else "inactive"
        user = DirectoryUser(
            id=new_id("usr"),
            organization_id=org.id,
            directory_id=directory.id,
            user_name=attrs.user_name,
            email=attrs.email,
            state=state,
            role=org.default_role,
            seat=org.default_seat,
            external_id=attrs.external_id,
            given_name=attrs.given_name,
            family_name=attrs.family_name,
            raw=attrs.raw,
            version=1,
            created_at=now,
            updated_at=now,
        )
        store.users.create(user, base_seat=org.default_seat)
        events.record(store, "dsync.user.created", org.id, describe_user(store, user, []), now)
    return user


def update_user(
    store: Store,
    clock: Clock,
    directory: Directory,
    user_id: str,
    build: Callable[[DirectoryUser], UserAttributes],
    if_match: int | None = None,
) -> DirectoryUser:
    """Read, let the edge compute the new attributes (PUT or PATCH), write: all in one
    transaction, so concurrent writers never lose an update."""
    now = clock.now()
    with store.transaction():
        user = store.users.get(directory.id, user_id)
        _check_version(user.version, if_match)
        attrs = build(user)
        return _apply_user(store, clock, directory.organization_id, user, attrs, now)


def _apply_user(
    store: Store,
    clock: Clock,
    organization_id: str,
    user: DirectoryUser,
    attrs: UserAttributes,
    now: float,
    force_event: bool = False,
) -> DirectoryUser:
    fields: dict[str, Any] = {
        "user_name": attrs.user_name,
        "external_id": attrs.external_id,
        "email": attrs.email,
        "given_name": attrs.given_name,
        "family_name": attrs.family_name,
        "state": "active" if attrs.active else "inactive",
        "raw": attrs.raw,
    }
    changed = {k: v for k, v in fields.items() if getattr(user, k) != v}
    if not changed and not force_event:
        return user
    version = user.version + 1
    store.users.update(user.id, **changed, version=version, updated_at=now)
    updated = dataclasses.replace(user, **changed, version=version, updated_at=now)
    events.record(store, "dsync.user.updated", organization_id, describe_user(store, updated), now)
    if user.state == "active" and updated.state == "inactive":
        _revoke(store, clock, updated, "deactivated")
    return updated


def delete_user(
    store: Store, clock: Clock, directory: Directory, user_id: str, if_match: int | None = None
) -> None:
    now = clock.now()
    with store.transaction():
        user = store.users.get(directory.id, user_id)
        _check_version(user.version, if_match)
        remaining = store.groups.groups_of(user.id)
        for group_id, _name in list(remaining):
            group = store.groups.get(directory.id, group_id)
            store.groups.remove_member(group_id, user.id)
            _touch_group(store, group, now)
            remaining = [g for g in remaining if g[0] != group_id]
            count = store.groups.member_count(group_id)
            shown = describe_group(store, group, count)
            _membership_event(store, "dsync.group.user_removed", user, remaining, shown, count, now)
        store.users.update(user.id, state="deleted", version=user.version + 1, updated_at=now)
        deleted = dataclasses.replace(
            user, state="deleted", groups=(), version=user.version + 1, updated_at=now
        )
        events.record(
            store,
            "dsync.user.deleted",
            user.organization_id,
            describe_user(store, deleted, []),
            now,
        )
        if user.state == "active":
            _revoke(store, clock, deleted, "deleted")


# -- groups --------------------------------------------------------------------------


def create_group(
    store: Store,
    clock: Clock,
    directory: Directory,
    attrs: GroupAttributes,
    members: tuple[str, ...] = (),
) -> DirectoryGroup:
    now = clock.now()
    with store.transaction():
        group = DirectoryGroup(
            id=new_id("grp"),
            organization_id=directory.organization_id,
            directory_id=directory.id,
            display_name=attrs.display_name,
            external_id=attrs.external_id,
            raw=attrs.raw,
            version=1,
            created_at=now,
            updated_at=now,
        )
        store.groups.create(group)
        events.record(
            store,
            "dsync.group.created",
            group.organization_id,
            describe_group(store, group, 0),
            now,
        )
        if members:
            _change_members(store, clock, directory, group, MemberChange(add=members), now)
            group = store.groups.get(directory.id, group.id)
    return group


GroupBuild = Callable[[DirectoryGroup], tuple[GroupAttributes | None, MemberChange]]


def update_group(
    store: Store,
    clock: Clock,
    directory: Directory,
    group_id: str,
    build: GroupBuild,
    if_match: int | None = None,
) -> DirectoryGroup:
    now = clock.now()
    with store.transaction():
        group = store.groups.get(directory.id, group_id)
        _check_version(group.version, if_match)
        attrs, members = build(group)
        renamed = False
        if attrs is not None and (attrs.display_name, attrs.external_id, attrs.raw) != (
            group.display_name,
            group.external_id,
            group.raw,
        ):
            renamed = attrs.display_name != group.display_name
            store.groups.update(
                group.id,
                display_name=attrs.display_name,
                external_id=attrs.external_id,
                raw=attrs.raw,
                version=group.version + 1,
                updated_at=now,
            )
            group = store.groups.get(directory.id, group.id)
            events.record(
                store,
                "dsync.group.updated",
                group.organization_id,
                describe_group(store, group),
                now,
            )
        _change_members(store, clock, directory, group, members, now)
        if renamed:  # mappings by display name may now match differently
            org = store.organizations.get(directory.organization_id)
            _reassign_all(store, org, sorted(store.groups.member_ids(group.id)), now)
        return store.groups.get(directory.id, group.id)


def delete_group(
    store: Store, clock: Clock, directory: Directory, group_id: str, if_match: int | None = None
) -> None:
    now = clock.now()
    with store.transaction():
        group = store.groups.get(directory.id, group_id)
        _check_version(group.version, if_match)
        former = sorted(store.groups.member_ids(group.id))
        shown = describe_group(store, group, 0)
        store.groups.delete(group.id)
        events.record(store, "dsync.group.deleted", group.organization_id, shown, now)
        org = store.organizations.get(directory.organization_id)
        _reassign_all(store, org, former, now)  # their role may have come from this group


def _change_members(
    store: Store,
    clock: Clock,
    directory: Directory,
    group: DirectoryGroup,
    change: MemberChange,
    now: float,
) -> None:
    add, remove = list(change.add), list(change.remove)
    if change.replace is not None or change.remove_all:
        current = store.groups.member_ids(group.id)
        wanted = set(change.replace or ())
        add = [u for u in dict.fromkeys(change.replace or ()) if u not in current] + add
        remove = sorted(current - wanted) + remove
    if not add and not remove:
        return
    add, remove = list(dict.fromkeys(add)), list(dict.fromkeys(remove))
    org = store.organizations.get(directory.organization_id)
    mappings = store.role_mappings.list(org.id)
    users = _live_users(store, directory.id, list(dict.fromkeys(remove + add)))
    groups_of = store.groups.groups_of_many(list(users))
    count = store.groups.member_count(group.id)
    shown = describe_group(store, group, count)  # as of this write; member_count per event
    touched = False
    for user_id in remove:
        user = users.get(user_id)
        if user is None:  # not a live user of this directory: a tombstone or a stranger
            try:
                user = store.users.get_any(user_id)
            except NotFound:
                continue  # removing a stranger is a no-op (RFC 7644 §3.5.2.2)
            groups_of[user.id] = store.groups.groups_of(user.id)
        if store.groups.remove_member(group.id, user.id):
            touched, count = True, count - 1
            groups = [g for g in groups_of.get(user.id, []) if g[0] != group.id]
            groups_of[user.id] = groups
            user = users[user.id] = _reassign(store, org, user, now, mappings, groups)
            _membership_event(store, "dsync.group.user_removed", user, groups, shown, count, now)
    for user_id in add:
        user = users.get(user_id)
        if user is None:
            raise InvalidInput(f"member {user_id} is not a user of this directory")
        if store.groups.add_member(group.id, user.id):
            touched, count = True, count + 1
            groups = _with_group(groups_of.get(user.id, []), group)
            groups_of[user.id] = groups
            user = users[user.id] = _reassign(store, org, user, now, mappings, groups)
            _membership_event(store, "dsync.group.user_added", user, groups, shown, count, now)
    if touched:
        _touch_group(store, group, now)


def _live_users(store: Store, directory_id: str, ids: list[str]) -> dict[str, DirectoryUser]:
    """The live users of the directory among `ids`, read in chunks of one query each."""
    found: dict[str, DirectoryUser] = {}
    for start in range(0, len(ids), 500):
        chunk = tuple(ids[start : start + 500])
        query = q.Query(filter=q.In(q.Field(column="id"), chunk), count=len(chunk))
        found.update((u.id, u) for u in store.users.query(directory_id, query).items)
    return found


def _with_group(groups: list[tuple[str, str]], group: DirectoryGroup) -> list[tuple[str, str]]:
    """A user's groups (id, name) with `group` added, ordered by name as the store orders
    them (NOCASE)."""
    joined = [g for g in groups if g[0] != group.id] + [(group.id, group.display_name)]
    return sorted(joined, key=lambda g: roles.fold(g[1]))


def _touch_group(store: Store, group: DirectoryGroup, now: float) -> None:
    """Members changed: a new version (ETag) and lastModified for the group. `group` is
    the row as read in this transaction."""
    store.groups.update(group.id, version=group.version + 1, updated_at=now)


def _membership_event(
    store: Store,
    type: str,
    user: DirectoryUser,
    user_groups: list[tuple[str, str]],
    group: dict[str, Any],
    member_count: int,
    now: float,
) -> None:
    """`group` is describe_group() of the group; `member_count` is the count after this
    step (a PATCH of 50 members tells 50 counts)."""
    events.record(
        store,
        type,
        group["organization_id"],
        {
            "directory_id": group["directory_id"],
            "user": describe_user(store, user, user_groups),
            "group": {**group, "member_count": member_count},
        },
        now,
    )


def _reassign(
    store: Store,
    org: Organization,
    user: DirectoryUser,
    now: float,
    mappings: Sequence[RoleMapping] | None = None,
    groups: list[tuple[str, str]] | None = None,
) -> DirectoryUser:
    """Recompute role and seat from the user's groups; emit dsync.user.updated on change.
    `mappings` (the organization's) and `groups` (the user's) are read when not given."""
    if mappings is None:
        mappings = store.role_mappings.list(org.id)
    if groups is None:
        groups = store.groups.groups_of(user.id)
    role, seat = roles.choose(mappings, groups, org.default_role)
    if seat is None:
        seat = "full" if store.users.base_seat(user.id) == "full" else "basic"
    if (role, seat) == (user.role, user.seat):
        return user
    version = user.version + 1
    store.users.update(user.id, role=role, seat=seat, version=version, updated_at=now)
    updated = dataclasses.replace(
        user,
        role=role,
        seat=seat,
        groups=tuple(name for _id, name in groups),
        version=version,
        updated_at=now,
    )
    events.record(store, "dsync.user.updated", org.id, describe_user(store, updated, groups), now)
    return updated


def _reassign_all(store: Store, org: Organization, user_ids: list[str], now: float) -> None:
    mappings = store.role_mappings.list(org.id)
    groups_of = store.groups.groups_of_many(user_ids)
    for user_id in user_ids:
        user = store.users.get_any(user_id)
        _reassign(store, org, user, now, mappings, groups_of.get(user_id, []))


def reassign_organization(store: Store, clock: Clock, organization_id: str) -> int:
    """Re-resolve every linked user's role and seat (after a mapping changed); returns how
    many changed."""
    now = clock.now()
    changed = 0
    with store.transaction():
        org = store.organizations.get(organization_id)
        directory = store.directories.for_organization(organization_id)
        if directory is None:
            return 0
        users = store.users.list(directory.id)
        mappings = store.role_mappings.list(org.id)
        groups_of = store.groups.groups_of_many([u.id for u in users])
        for user in users:
            if _reassign(store, org, user, now, mappings, groups_of.get(user.id, [])) is not user:
                changed += 1
    return changed
