"""Directory read API: directories, users and groups of the organizations a client serves.

The bodies are core.directory_shapes (the same objects dsync.* events carry). Lists use
keyset pagination: ids are time-ordered, the cursor is the last id seen (opaque to
Exec), and each page asks the store for `id > cursor ORDER BY id` through the neutral
query (broker.core.query), so pages stay stable while the IdP writes. Anything outside
the caller's organizations answers 404.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from aiohttp import web

from broker.api.auth import api_route, services_of
from broker.api.respond import limit_param, page
from broker.core import query as q
from broker.core.api_access import ApiCaller
from broker.core.directories import describe as describe_directory
from broker.core.directory_shapes import describe_group, describe_user
from broker.core.directory_types import Directory
from broker.core.models import DirectoryGroup
from broker.core.ports import Store
from broker.errors import InvalidInput, NotFound

_ID = q.Field(column="id", case_exact=True)
USER_STATES = ("active", "inactive")


def _encode(last_id: str) -> str:
    return "dc_" + base64.urlsafe_b64encode(last_id.encode()).decode().rstrip("=")


def _decode(text: str | None) -> str | None:
    if text is None:
        return None
    try:
        if not text.startswith("dc_"):
            raise ValueError
        raw = text[3:]
        value = base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)).decode()
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise InvalidInput("after must be a cursor returned by this API") from None
    if not value.isascii() or not value.isprintable():
        raise InvalidInput("after must be a cursor returned by this API")
    return value


def _keyset(filters: list[q.Expr], after: str | None, limit: int) -> q.Query:
    if after is not None:
        filters = [*filters, q.Compare(_ID, "gt", after)]
    expr: q.Expr | None = None
    for f in filters:
        expr = f if expr is None else q.And(expr, f)
    return q.Query(filter=expr, start_index=1, count=limit + 1, sort_by=_ID)


def _paged(items: list[Any], limit: int, shape: Any) -> dict[str, Any]:
    more = len(items) > limit
    items = items[:limit]
    cursor = _encode(items[-1].id) if items and more else None
    return page([shape(i) for i in items], cursor, more)


def _visible_directory(store: Store, caller: ApiCaller, directory_id: str) -> Directory:
    try:
        directory = store.directories.get(directory_id)
    except NotFound:
        raise NotFound("directory not found") from None
    if not caller.sees(directory.organization_id):
        raise NotFound("directory not found", f"{caller.client_id} not bound to its org")
    return directory


def _directories(store: Store, caller: ApiCaller, public_url: str) -> dict[str, Any]:
    found = [store.directories.for_organization(o) for o in sorted(caller.organization_ids)]
    return page([describe_directory(d, public_url) for d in found if d is not None], None, False)


def _users(
    store: Store,
    caller: ApiCaller,
    directory_id: str,
    filters: list[q.Expr],
    after: str | None,
    limit: int,
) -> dict[str, Any]:
    _visible_directory(store, caller, directory_id)
    found = store.users.query(directory_id, _keyset(filters, after, limit)).items
    return _paged(found, limit, lambda u: describe_user(store, u))


def _user(store: Store, caller: ApiCaller, user_id: str) -> dict[str, Any]:
    user = store.users.get_any(user_id)
    if not caller.sees(user.organization_id):
        raise NotFound("user not found", f"{caller.client_id} not bound to its org")
    return describe_user(store, user)


def _groups(
    store: Store, caller: ApiCaller, directory_id: str, after: str | None, limit: int
) -> dict[str, Any]:
    _visible_directory(store, caller, directory_id)
    found = store.groups.query(directory_id, _keyset([], after, limit)).items
    return _paged(found, limit, lambda g: describe_group(store, g))


def _find_group(store: Store, caller: ApiCaller, group_id: str) -> DirectoryGroup:
    for org_id in sorted(caller.organization_ids):
        directory = store.directories.for_organization(org_id)
        if directory is None:
            continue
        try:
            return store.groups.get(directory.id, group_id)
        except NotFound:
            continue
    raise NotFound("group not found")


def _group(
    store: Store, caller: ApiCaller, group_id: str, after: str | None, limit: int
) -> dict[str, Any]:
    group = _find_group(store, caller, group_id)
    assert group.directory_id is not None
    member_filter = q.Compare(q.Field(column="group", kind="reference"), "eq", group.id)
    members = store.users.query(group.directory_id, _keyset([member_filter], after, limit)).items
    shown = describe_group(store, group)
    shown["members"] = _paged(
        members,
        limit,
        lambda u: {
            "object": "directory_user",
            "id": u.id,
            "user_name": u.user_name,
            "email": u.email,
            "state": u.state,
        },
    )
    return shown


def _user_filters(request: web.Request) -> list[q.Expr]:
    filters: list[q.Expr] = []
    state = request.query.get("state")
    if state is not None:
        if state not in USER_STATES:
            raise InvalidInput("state must be active or inactive")
        filters.append(q.Compare(q.Field(column="active", kind="boolean"), "eq", state == "active"))
    group = request.query.get("group")
    if group is not None:
        filters.append(q.Compare(q.Field(column="group", kind="reference"), "eq", group))
    email = request.query.get("email")
    if email is not None:
        filters.append(q.Compare(q.Field(column="email"), "eq", email))
    return filters


@api_route
async def list_directories(request: web.Request, caller: ApiCaller) -> web.Response:
    s = services_of(request)
    return web.json_response(await s.run(_directories, s.store, caller, s.issuer))


@api_route
async def list_users(request: web.Request, caller: ApiCaller) -> web.Response:
    s = services_of(request)
    args = (
        request.match_info["directory_id"],
        _user_filters(request),
        _decode(request.query.get("after")),
        limit_param(request),
    )
    return web.json_response(await s.run(_users, s.store, caller, *args))


@api_route
async def get_user(request: web.Request, caller: ApiCaller) -> web.Response:
    s = services_of(request)
    return web.json_response(await s.run(_user, s.store, caller, request.match_info["user_id"]))


@api_route
async def list_groups(request: web.Request, caller: ApiCaller) -> web.Response:
    s = services_of(request)
    args = (
        request.match_info["directory_id"],
        _decode(request.query.get("after")),
        limit_param(request),
    )
    return web.json_response(await s.run(_groups, s.store, caller, *args))


@api_route
async def get_group(request: web.Request, caller: ApiCaller) -> web.Response:
    s = services_of(request)
    args = (
        request.match_info["group_id"],
        _decode(request.query.get("after")),
        limit_param(request),
    )
    return web.json_response(await s.run(_group, s.store, caller, *args))
