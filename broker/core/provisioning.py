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
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from broker.clock import Clock
from broker.core import events, roles
from broker.core.directory_shapes import describe_group, describe_user
from broker.core.directory_types import Directory, GroupAttributes, MemberChange, UserAttributes
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
            return _apply_user(store, clock, org, relinked, attrs, now, force_event=True)
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
        org = store.organizations.get(directory.organization_id)
        return _apply_user(store, clock, org, user, attrs, now)


def _apply_user(
    store: Store,
    clock: Clock,
    org: Organization,
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
    updated = store.users.get_any(user.id)
    events.record(store, "dsync.user.updated", org.id, describe_user(store, updated), now)
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
        for group_id, _name in store.groups.groups_of(user.id):
            group = store.groups.get(directory.id, group_id)
            store.groups.remove_member(group_id, user.id)
            _touch_group(store, group, now)
            _membership_event(store, "dsync.group.user_removed", user, group, now)
        store.users.update(user.id, state="deleted", version=user.version + 1, updated_at=now)
        deleted = store.users.get_any(user.id)
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
            for user_id in sorted(store.groups.member_ids(group.id)):
                _reassign(store, org, store.users.get_any(user_id), now)
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
        for user_id in former:  # their role may have come from this group
            _reassign(store, org, store.users.get_any(user_id), now)


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
    org = store.organizations.get(directory.organization_id)
    touched = False
    for user_id in dict.fromkeys(remove):
        try:
            user = store.users.get_any(user_id)
        except NotFound:
            continue  # removing a stranger is a no-op (RFC 7644 §3.5.2.2)
        if store.groups.remove_member(group.id, user.id):
            touched = True
            user = _reassign(store, org, user, now)
            _membership_event(store, "dsync.group.user_removed", user, group, now)
    for user_id in dict.fromkeys(add):
        try:
            user = store.users.get(directory.id, user_id)
        except NotFound:
            raise InvalidInput(f"member {user_id} is not a user of this directory") from None
        if store.groups.add_member(group.id, user.id):
            touched = True
            user = _reassign(store, org, user, now)
            _membership_event(store, "dsync.group.user_added", user, group, now)
    if touched:
        _touch_group(store, group, now)


def _touch_group(store: Store, group: DirectoryGroup, now: float) -> None:
    """Members changed: a new version (ETag) and lastModified for the group."""
    current = store.groups.get(group.directory_id or "", group.id)
    store.groups.update(group.id, version=current.version + 1, updated_at=now)


def _membership_event(
    store: Store, type: str, user: DirectoryUser, group: DirectoryGroup, now: float
) -> None:
    events.record(
        store,
        type,
        group.organization_id,
        {
            "directory_id": group.directory_id,
            "user": describe_user(store, user),
            "group": describe_group(store, group),
        },
        now,
    )


def _reassign(store: Store, org: Organization, user: DirectoryUser, now: float) -> DirectoryUser:
    """Recompute role and seat from the user's groups; emit dsync.user.updated on change."""
    role, seat = roles.resolve(
        store, org.id, user.id, org.default_role, store.users.base_seat(user.id)
    )
    if (role, seat) == (user.role, user.seat):
        return user
    store.users.update(user.id, role=role, seat=seat, version=user.version + 1, updated_at=now)
    updated = store.users.get_any(user.id)
    events.record(store, "dsync.user.updated", org.id, describe_user(store, updated), now)
    return updated


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
        for user in store.users.list(directory.id):
            if _reassign(store, org, user, now) is not user:
                changed += 1
    return changed
