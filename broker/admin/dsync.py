"""Directory Sync (issue 8 §6): enable (SCIM base URL and token shown once, with Okta and
Entra instructions), rotate the token, group → role mappings (by group id or display
name, with priorities) with a preview of one user's role and seat, synced users and
groups with search, the SCIM request log, the drift report with "re-drive", disable.

Same core calls as `exec-broker directory ...` and `role-mapping ...`: policy decides
when Directory Sync may be switched, roles decides who gets which role and seat.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from broker.admin.page import Notice, attempt, confirmed_switch, form_text, page
from broker.admin.security import actor, services_of
from broker.core import audit, directories, drift, policy, roles
from broker.core.directory_types import JournalEntry
from broker.core.models import DirectoryGroup, DirectoryUser, Organization
from broker.core.ports import Store
from broker.errors import InvalidInput


def _view(store: Store, org_id: str, query: str, preview_user: str) -> dict[str, Any]:
    org = store.organizations.get(org_id)
    directory = store.directories.for_organization(org_id)
    all_users: list[DirectoryUser] = []
    all_groups: list[DirectoryGroup] = []
    journal: list[JournalEntry] = []
    drifted = None
    if directory is not None:
        journal = store.scim_journal.list(directory.id, limit=50)
        if directory.state == "active":
            all_users = store.users.list(directory.id)
            all_groups = store.groups.list(directory.id)
            drifted = drift.report(store, org_id)
    needle = query.lower()
    return {
        "org": org,
        "directory": directory,
        "users": [u for u in all_users if needle in f"{u.user_name} {u.email or ''}".lower()][:200],
        "groups": [g for g in all_groups if needle in f"{g.display_name} {g.id}".lower()][:200],
        "all_groups": all_groups,
        "mappings": store.role_mappings.list(org_id),
        "journal": journal,
        "preview": _preview(store, org, all_users, preview_user) if preview_user else None,
        "preview_user": preview_user,
        "q": query,
        "drift": drifted,
    }


def _preview(
    store: Store, org: Organization, users: list[DirectoryUser], wanted: str
) -> dict[str, Any]:
    """What roles.resolve gives one synced user (by id, user name or email) right now."""
    folded = wanted.strip().lower()
    user = next(
        (
            u
            for u in users
            if folded in (u.id.lower(), u.user_name.lower(), (u.email or "").lower())
        ),
        None,
    )
    if user is None:
        return {"user": None, "wanted": wanted}
    role, seat = roles.resolve(
        store, org.id, user.id, org.default_role, store.users.base_seat(user.id)
    )
    return {"user": user, "role": role, "seat": seat, "groups": store.groups.groups_of(user.id)}


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
    return await confirmed_switch(
        request,
        policy.disable_directory_sync,
        unconfirmed="Tick the box to confirm what disabling does.",
        done="Directory Sync is off: SCIM stopped, users and groups were unlinked.",
        show=show,
    )


async def add_mapping(request: web.Request) -> web.StreamResponse:
    services = services_of(request)
    notices: list[Notice] = []
    group = await form_text(request, "group")
    group_id = await form_text(request, "group_id")
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
                group_id=group_id or None,
                group_name=None if group_id else group or _missing("a synced group or a name"),
                priority=priority,
                seat=seat or None,  # type: ignore[arg-type]
            )
        ),
        notices,
    )
    if done is not None:
        shown = group_id if group_id else group
        notices.append(Notice("ok", f"Members of {shown} now get the role {done.role}."))
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


def _redrive(store: Store, clock: Any, who: audit.Actor, org_id: str) -> drift.Drift:
    sent = drift.redrive(store, clock, org_id)
    with store.transaction():
        audit.record(
            store,
            who,
            "dsync.redriven",
            clock.now(),
            organization_id=org_id,
            users=len(sent.users),
            groups=len(sent.groups),
        )
    return sent


async def redrive(request: web.Request) -> web.StreamResponse:
    services = services_of(request)
    notices: list[Notice] = []
    sent = await attempt(
        services.run(
            _redrive, services.store, services.clock, actor(request), request.match_info["org_id"]
        ),
        notices,
    )
    if sent is not None:
        notices.append(
            Notice(
                "ok",
                f"Sent the current state of {len(sent.users)} users and {len(sent.groups)} "
                "groups to Exec again.",
            )
        )
    return await show(request, notices, 200 if sent else 400)


def add_routes(app: web.Application) -> None:
    app.router.add_get("/orgs/{org_id}/directory", detail)
    app.router.add_post("/orgs/{org_id}/directory/enable", enable)
    app.router.add_post("/orgs/{org_id}/directory/rotate", rotate)
    app.router.add_post("/orgs/{org_id}/directory/disable", disable)
    app.router.add_post("/orgs/{org_id}/directory/mappings", add_mapping)
    app.router.add_post("/orgs/{org_id}/directory/mappings/{mapping_id}/remove", remove_mapping)
    app.router.add_post("/orgs/{org_id}/directory/redrive", redrive)
