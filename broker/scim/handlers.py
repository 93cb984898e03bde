"""SCIM endpoints (RFC 7644 §3.2 to §3.7, §4): route a parsed request to one core call and
render the answer. Runs on the store thread inside the request's transaction
(broker.scim.service); nothing here touches aiohttp or SQL.

The write lock is the throughput limit, so work that needs no store stays outside it:
`prepare` parses and normalises the body before the transaction (memoised on the
request; a failure there is raised again, in order, when `route` asks for the value),
and `render` serialises the answer after commit.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar, cast

from broker.clock import Clock
from broker.core import provisioning
from broker.core import query as q
from broker.core.directory_types import Directory, GroupAttributes, MemberChange
from broker.core.models import DirectoryGroup, DirectoryUser
from broker.core.ports import Store
from broker.errors import InvalidInput
from broker.scim import errors, filters, jsonbody, patch, quirks, resources, schema
from broker.scim.errors import ScimError

T = TypeVar("T")

# RFC 7644 §3.4.2.4: startIndex is 1-based and "a value less than 1 SHALL be interpreted as
# 1"; it is bound into SQL as a 64-bit OFFSET, so a larger value than any directory holds
# is clamped rather than overflowing (OverflowError). count is clamped to 0..max page.
MAX_START_INDEX = 2**31


@dataclass(frozen=True)
class Request:
    method: str
    path: str  # below the directory's base, e.g. "/Users/usr_…"
    query: Mapping[str, str]
    body: bytes
    base_url: str  # the public URL of the directory's base (never the Host header)
    if_match: str | None = None
    query_string: str = ""
    # Values computed from the body alone (prepare), reused by route.
    memo: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)


@dataclass
class Outcome:
    status: int
    body: bytes | None
    headers: dict[str, str] = field(default_factory=dict)
    change: dict[str, Any] = field(default_factory=dict)
    document: Any = None  # serialised into `body` by render(), after commit

    def render(self) -> Outcome:
        if self.body is None and self.document is not None:
            self.body = json.dumps(self.document, separators=(",", ":")).encode()
            self.document = None
        return self


def _json(
    status: int,
    document: Any,
    headers: dict[str, str] | None = None,
    change: dict[str, Any] | None = None,
) -> Outcome:
    return Outcome(status, None, headers or {}, change or {}, document)


def _memo(req: Request, key: str, compute: Callable[[], T]) -> T:
    if key not in req.memo:
        req.memo[key] = compute()
    return cast(T, req.memo[key])


def _user_raw(req: Request) -> dict[str, Any]:
    return _memo(
        req, "user", lambda: resources.canonical_user(quirks.normalise_resource(_body(req)))
    )


def _group_body(req: Request) -> dict[str, Any]:
    return _memo(req, "group", lambda: quirks.normalise_resource(_body(req)))


def _patch_ops(req: Request) -> list[dict[str, Any]]:
    return _memo(req, "ops", lambda: patch.operations(_normalised_ops(req)))


def prepare(req: Request) -> None:
    """Parse and normalise the body before the write transaction. Errors are left for
    route() to raise, after authentication (a bad body never answers before a bad token)."""
    parts = [p for p in req.path.split("/") if p]
    head = parts[0].lower() if parts else ""
    try:
        if head == "users" and req.method in ("POST", "PUT"):
            _user_raw(req)
        elif head == "groups" and req.method in ("POST", "PUT"):
            _group_body(req)
        elif head in ("users", "groups") and req.method == "PATCH":
            _patch_ops(req)
    except Exception:  # raised again by route(), inside the transaction
        req.memo.clear()


def route(store: Store, clock: Clock, directory: Directory, req: Request, max_page: int) -> Outcome:
    parts = [p for p in req.path.split("/") if p]
    head = parts[0].lower() if parts else ""
    rest = parts[1:]
    if head in ("users", "groups") and len(rest) <= 1:
        handler = _users if head == "users" else _groups
        return handler(store, clock, directory, req, rest[0] if rest else None, max_page)
    if req.method != "GET" and head in ("serviceproviderconfig", "resourcetypes", "schemas"):
        raise ScimError(405, f"{req.method} is not allowed here")
    if head == "serviceproviderconfig" and not rest:
        return _json(200, schema.service_provider_config(req.base_url, max_page))
    if head == "resourcetypes":
        return _listing(schema.resource_types(req.base_url), rest)
    if head == "schemas":
        return _listing(schema.schemas(req.base_url), rest)
    if head == "me":
        raise ScimError(
            501,
            "/Me is not supported: this service provider has no "
            "authenticated-subject alias (see /ServiceProviderConfig).",
        )
    if head == "bulk":
        raise ScimError(501, "Bulk operations are not supported (see /ServiceProviderConfig).")
    raise errors.not_found(f"no SCIM endpoint at {req.path}")


def _listing(documents: list[dict[str, Any]], rest: list[str]) -> Outcome:
    if rest:
        found = next((d for d in documents if d["id"].lower() == rest[0].lower()), None)
        if found is None or len(rest) > 1:
            raise errors.not_found()
        return _json(200, found)
    return _json(
        200,
        {
            "schemas": [schema.LIST_SCHEMA],
            "totalResults": len(documents),
            "startIndex": 1,
            "itemsPerPage": len(documents),
            "Resources": documents,
        },
    )


def _body(req: Request) -> dict[str, Any]:
    try:
        document = jsonbody.loads(req.body or b"null")
    except jsonbody.BodyError as exc:
        raise errors.invalid_syntax(exc.public) from None
    if not isinstance(document, dict):
        raise errors.invalid_syntax("the request body must be a JSON object")
    return document


def _int(req: Request, name: str, default: int) -> int:
    text = req.query.get(name)
    if text is None or text == "":
        return default
    try:
        return int(text)
    except ValueError:
        raise errors.invalid_value(f"{name} must be an integer") from None


def _query(req: Request, resource: schema.ResourceSchema, max_page: int) -> q.Query:
    expr = None
    text = req.query.get("filter")
    if text:
        expr = filters.to_query(filters.parse(quirks.normalise_filter(text)), resource)
    sort_by = None
    if req.query.get("sortBy"):
        sort_by = filters.sort_field(resource, req.query["sortBy"])
    order = req.query.get("sortOrder", "ascending").lower()
    if order not in ("ascending", "descending"):
        raise errors.invalid_value("sortOrder is ascending or descending")
    count = min(max(_int(req, "count", max_page), 0), max_page)
    return q.Query(
        filter=expr,
        start_index=min(max(_int(req, "startIndex", 1), 1), MAX_START_INDEX),
        count=count,
        sort_by=sort_by,
        descending=order == "descending",
    )


def _list_response(
    req: Request, query: q.Query, total: int, items: list[dict[str, Any]]
) -> Outcome:
    attrs, excluded = req.query.get("attributes"), req.query.get("excludedAttributes")
    return _json(
        200,
        {
            "schemas": [schema.LIST_SCHEMA],
            "totalResults": total,
            "startIndex": query.start_index,
            "itemsPerPage": len(items),
            "Resources": [resources.project(r, attrs, excluded) for r in items],
        },
    )


def _one(
    req: Request, status: int, resource: dict[str, Any], version: int, change: dict[str, Any]
) -> Outcome:
    projected = resources.project(
        resource, req.query.get("attributes"), req.query.get("excludedAttributes")
    )
    headers = {"ETag": resources.etag(version)}
    if status == 201:
        headers["Location"] = resource["meta"]["location"]
    return _json(status, projected, headers, change)


# -- users ----------------------------------------------------------------------------


def _render_user(store: Store, req: Request, user: DirectoryUser) -> dict[str, Any]:
    return resources.render_user(user, req.base_url, store.groups.groups_of(user.id))


def _users(
    store: Store,
    clock: Clock,
    directory: Directory,
    req: Request,
    user_id: str | None,
    max_page: int,
) -> Outcome:
    if user_id is None:
        if req.method == "GET":
            query = _query(req, schema.USER, max_page)
            try:
                page = store.users.query(directory.id, query)
            except InvalidInput as exc:
                raise errors.invalid_filter(exc.public) from None
            groups = store.groups.groups_of_many([u.id for u in page.items])
            return _list_response(
                req,
                query,
                page.total,
                [resources.render_user(u, req.base_url, groups.get(u.id, [])) for u in page.items],
            )
        if req.method == "POST":
            raw = _user_raw(req)
            user = provisioning.create_user(
                store, clock, directory, resources.user_attributes(raw, active_default=True)
            )
            return _one(
                req,
                201,
                resources.render_user(user, req.base_url, []),
                user.version,
                {"action": "user.created", "id": user.id},
            )
        raise ScimError(405, f"{req.method} is not allowed on /Users")
    if req.method == "GET":
        user = store.users.get(directory.id, user_id)
        return _one(req, 200, _render_user(store, req, user), user.version, {})
    if_match = resources.parse_etag(req.if_match)
    if req.method == "DELETE":
        provisioning.delete_user(store, clock, directory, user_id, if_match)
        return Outcome(204, None, change={"action": "user.deleted", "id": user_id})
    if req.method == "PUT":
        raw = _user_raw(req)

        def replace(current: DirectoryUser) -> Any:
            # Okta: a PUT that omits `active` keeps the state (quirks/okta.py).
            return resources.user_attributes(raw, active_default=current.state == "active")

        user = provisioning.update_user(store, clock, directory, user_id, replace, if_match)
        return _one(
            req,
            200,
            _render_user(store, req, user),
            user.version,
            {"action": "user.replaced", "id": user.id, "state": user.state},
        )
    if req.method == "PATCH":
        ops = _patch_ops(req)

        def change(current: DirectoryUser) -> Any:
            patched = patch.apply(resources.user_raw_with_state(current), ops, schema.USER)
            return resources.user_attributes(
                resources.canonical_user(patched), active_default=current.state == "active"
            )

        user = provisioning.update_user(store, clock, directory, user_id, change, if_match)
        return _one(
            req,
            200,
            _render_user(store, req, user),
            user.version,
            {"action": "user.patched", "id": user.id, "state": user.state},
        )
    raise ScimError(405, f"{req.method} is not allowed on a user")


def _normalised_ops(req: Request) -> dict[str, Any]:
    body = _body(req)
    ops = body.get("Operations", body.get("operations"))
    if isinstance(ops, list) and all(isinstance(o, dict) for o in ops):
        body = {**body, "Operations": quirks.normalise_patch(ops)}
    return body


# -- groups ---------------------------------------------------------------------------


def _render_group(store: Store, req: Request, group: DirectoryGroup) -> dict[str, Any]:
    wanted = resources.needs(
        req.query.get("attributes"), req.query.get("excludedAttributes"), "members"
    )
    members = store.groups.members(group.id) if wanted else None
    return resources.render_group(group, req.base_url, members)


def _groups(
    store: Store,
    clock: Clock,
    directory: Directory,
    req: Request,
    group_id: str | None,
    max_page: int,
) -> Outcome:
    if group_id is None:
        if req.method == "GET":
            query = _query(req, schema.GROUP, max_page)
            try:
                page = store.groups.query(directory.id, query)
            except InvalidInput as exc:
                raise errors.invalid_filter(exc.public) from None
            return _list_response(
                req, query, page.total, [_render_group(store, req, g) for g in page.items]
            )
        if req.method == "POST":
            body = _group_body(req)
            attrs = resources.group_attributes(resources.canonical_group(body))
            members = resources.member_ids(body.get("members"))
            group = provisioning.create_group(store, clock, directory, attrs, members)
            return _one(
                req,
                201,
                _render_group(store, req, group),
                group.version,
                {"action": "group.created", "id": group.id, "members": len(members)},
            )
        raise ScimError(405, f"{req.method} is not allowed on /Groups")
    if req.method == "GET":
        group = store.groups.get(directory.id, group_id)
        return _one(req, 200, _render_group(store, req, group), group.version, {})
    if_match = resources.parse_etag(req.if_match)
    if req.method == "DELETE":
        provisioning.delete_group(store, clock, directory, group_id, if_match)
        return Outcome(204, None, change={"action": "group.deleted", "id": group_id})
    if req.method == "PUT":
        body = _group_body(req)
        attrs = resources.group_attributes(resources.canonical_group(body))
        # A PUT without `members` keeps them: a rename must never empty a group.
        replace = resources.member_ids(body["members"]) if "members" in body else None
        group = provisioning.update_group(
            store,
            clock,
            directory,
            group_id,
            lambda _g: (attrs, MemberChange(replace=replace)),
            if_match,
        )
        return _one(
            req,
            200,
            _render_group(store, req, group),
            group.version,
            {"action": "group.replaced", "id": group.id},
        )
    if req.method == "PATCH":
        ops = _patch_ops(req)
        summary: dict[str, Any] = {}
        group = provisioning.update_group(
            store, clock, directory, group_id, _group_patch(ops, summary), if_match
        )
        change = {"action": "group.patched", "id": group.id, **summary}
        if req.query.get("attributes"):
            return _one(req, 200, _render_group(store, req, group), group.version, change)
        # 204: a PATCH of a 10,000-member group must not answer with 10,000 members.
        return Outcome(204, None, {"ETag": resources.etag(group.version)}, change)
    raise ScimError(405, f"{req.method} is not allowed on a group")


def _group_patch(
    ops: list[dict[str, Any]], summary: dict[str, Any]
) -> Callable[[DirectoryGroup], tuple[GroupAttributes | None, MemberChange]]:
    def build(current: DirectoryGroup) -> tuple[GroupAttributes | None, MemberChange]:
        raw = {**current.raw, "displayName": current.display_name}
        if current.external_id is not None:
            raw["externalId"] = current.external_id
        patched, members = patch.apply_group(raw, ops)
        summary.update(
            added=len(members.add),
            removed=len(members.remove),
            replaced=None if members.replace is None else len(members.replace),
        )
        attrs = resources.group_attributes(resources.canonical_group(patched))
        return attrs, members

    return build
