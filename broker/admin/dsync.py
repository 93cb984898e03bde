"""Directory Sync (issue 8 §6): enable (SCIM base URL and token shown once, with Okta and
Entra instructions), rotate the token, group → role mappings with a preview, synced
users and groups with search, the SCIM request log, disable.

Same core calls as `exec-broker directory ...` and `role-mapping ...`: policy decides
when Directory Sync may be switched, roles decides who gets which role and seat.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from broker.admin.page import Notice, attempt, form_checked, form_text, page
from broker.admin.security import actor, services_of
from broker.core import audit, directories, policy, roles
from broker.core.ports import Store
from broker.errors import InvalidInput


def _view(store: Store, org_id: str, query: str, preview_user: str) -> dict[str, Any]:
    org = store.organizations.get(org_id)
    directory = store.directories.for_organization(org_id)
    users, groups, journal = [], [], []
    if directory is not None and directory.state == "active":
        needle = query.lower()
        users = [
            u
            for u in store.users.list(directory.id)
            if not needle or needle in f"{u.user_name} {u.email or ''}".lower()
        ]
        groups = [
            g
            for g in store.groups.list(directory.id)
            if not needle or needle in g.display_name.lower()
        ]
    if directory is not None:
        journal = store.scim_journal.list(directory.id, limit=50)
    preview = None
    if preview_user and directory is not None:
        user = store.users.get_any(preview_user)
        if user.organization_id == org_id:
            role, seat = roles.resolve(
                store, org_id, user.id, org.default_role, store.users.base_seat(user.id)
            )
            preview = {"user": user, "role": role, "seat": seat}
    return {
        "org": org,
        "directory": directory,
        "users": users[:200],
        "groups": groups[:200],
        "mappings": store.role_mappings.list(org_id),
        "journal": journal,
        "preview": preview,
        "q": query,
    }


async def show(
    request: web.Request,
    notices: list[Notice],
    status: int = 200,
    token: str | None = None,
) -> web.Response:
    services = services_of(request)
    org_id = request.match_info["org_id"]
    view = await attempt(
        services.run(
            _view,
            services.store,
            org_id,
            request.query.get("q", "").strip()[:100],
            request.query.get("preview_user", ""),
        ),
        notices,
    )
    if view is None:
        return page(request, "not_found.html", notices=notices, status=404)
    directory = view["directory"]
    view["token"] = token
    view["scim_base_url"] = (
        services.settings.public_url.rstrip("/") + directories.base_path(directory.id)
        if directory
        else None
    )
    return page(request, "directory.html", view, notices=notices, status=status)


async def detail(request: web.Request) -> web.StreamResponse:
    return await show(request, [])


async def enable(request: web.Request) -> web.StreamResponse:
    services = services_of(request)
    notices: list[Notice] = []
    enabled = await attempt(
        services.run(
            policy.enable_directory_sync,
            services.store,
            services.clock,
            actor(request),
            request.match_info["org_id"],
        ),
        notices,
    )
    if enabled is None:
        return await show(request, notices, 400)
    notices.append(Notice("ok", "Directory Sync is on. Copy the token now: it is shown once."))
    return await show(request, notices, token=enabled.token)


def _rotate(store: Store, services_clock: Any, who: audit.Actor, org_id: str, overlap: int) -> str:
    token = directories.rotate_token(store, org_id, services_clock.now(), overlap)
    with store.transaction():
        audit.record(
            store,
            who,
            "dsync.token_rotated",
            services_clock.now(),
            organization_id=org_id,
            overlap_seconds=overlap,
        )
    return token


async def rotate(request: web.Request) -> web.StreamResponse:
    services = services_of(request)
    overlap = services.settings.get("scim.token_overlap_seconds")
    notices: list[Notice] = []
    token = await attempt(
        services.run(
            _rotate,
            services.store,
            services.clock,
            actor(request),
            request.match_info["org_id"],
            overlap,
        ),
        notices,
    )
    if token is None:
        return await show(request, notices, 400)
    hours = round(overlap / 3600)
    notices.append(
        Notice("ok", f"New token made; the previous one keeps working for {hours} hours.")
    )
    return await show(request, notices, token=token)


async def disable(request: web.Request) -> web.StreamResponse:
    services = services_of(request)
    notices: list[Notice] = []
    if not await form_checked(request, "confirm"):
        notices.append(Notice("bad", "Tick the box to confirm what disabling does."))
        return await show(request, notices, 400)
    org = await attempt(
        services.run(
            policy.disable_directory_sync,
            services.store,
            services.clock,
            actor(request),
            request.match_info["org_id"],
        ),
        notices,
    )
    if org is not None:
        notices.append(
            Notice("ok", "Directory Sync is off: SCIM stopped, users and groups were unlinked.")
        )
    return await show(request, notices, 200 if org else 400)


async def add_mapping(request: web.Request) -> web.StreamResponse:
    services = services_of(request)
    notices: list[Notice] = []
    group = await form_text(request, "group")
    seat = await form_text(request, "seat")
    priority_text = await form_text(request, "priority") or "0"
    try:
        priority = int(priority_text)
    except ValueError:
        notices.append(Notice("bad", "The priority is a whole number (higher wins)."))
        return await show(request, notices, 400)
    role = await form_text(request, "role")
    done = await attempt(
        services.run(
            lambda: roles.add_mapping(
                services.store,
                services.clock,
                actor(request),
                request.match_info["org_id"],
                role=role,
                group_name=group or _missing("the group's display name"),
                priority=priority,
                seat=seat or None,  # type: ignore[arg-type]
            )
        ),
        notices,
    )
    if done is not None:
        notices.append(Notice("ok", f"Members of {group} now get the role {done.role}."))
    return await show(request, notices, 200 if done else 400)


def _missing(what: str) -> str:
    raise InvalidInput(f"{what} is required")


async def remove_mapping(request: web.Request) -> web.StreamResponse:
    services = services_of(request)
    notices: list[Notice] = []
    await attempt(
        services.run(
            roles.remove_mapping,
            services.store,
            services.clock,
            actor(request),
            request.match_info["org_id"],
            request.match_info["mapping_id"],
        ),
        notices,
    )
    if not notices:
        notices.append(Notice("ok", "Mapping removed; roles were recomputed."))
    return await show(request, notices)


def add_routes(app: web.Application) -> None:
    app.router.add_get("/orgs/{org_id}/directory", detail)
    app.router.add_post("/orgs/{org_id}/directory/enable", enable)
    app.router.add_post("/orgs/{org_id}/directory/rotate", rotate)
    app.router.add_post("/orgs/{org_id}/directory/disable", disable)
    app.router.add_post("/orgs/{org_id}/directory/mappings", add_mapping)
    app.router.add_post("/orgs/{org_id}/directory/mappings/{mapping_id}/remove", remove_mapping)
