"""Organizations: the list, creation, the detail page with its status panel, default seat."""

from __future__ import annotations

from aiohttp import web

from broker.admin.overview import overview
from broker.admin.page import Notice, attempt, form_text, page, redirect
from broker.admin.security import actor, services_of
from broker.core import organizations


async def index(request: web.Request) -> web.StreamResponse:
    return await _list(request, [])


async def _list(request: web.Request, notices: list[Notice], status: int = 200) -> web.Response:
    services = services_of(request)
    orgs = await services.run(services.store.organizations.list)
    return page(request, "orgs.html", {"orgs": orgs}, notices=notices, status=status)


async def create(request: web.Request) -> web.StreamResponse:
    services = services_of(request)
    notices: list[Notice] = []
    org = await attempt(
        services.run(
            organizations.create_organization,
            services.store,
            services.clock,
            actor(request),
            await form_text(request, "name"),
            (await form_text(request, "external_id")) or None,
            await form_text(request, "default_seat") or "basic",
        ),
        notices,
    )
    if org is None:
        return await _list(request, notices, status=400)
    return redirect(f"/admin/orgs/{org.id}")


async def detail(request: web.Request) -> web.StreamResponse:
    return await show(request, [])


async def show(request: web.Request, notices: list[Notice], status: int = 200) -> web.Response:
    """The organization page, with whatever the last action had to say."""
    services = services_of(request)
    org_id = request.match_info["org_id"]
    view = await attempt(
        services.run(overview, services.store, org_id, services.settings.public_url), notices
    )
    if view is None:
        return page(request, "not_found.html", notices=notices, status=404)
    return page(request, "org.html", {"o": view}, notices=notices, status=status)


async def set_seat(request: web.Request) -> web.StreamResponse:
    services = services_of(request)
    notices: list[Notice] = []
    org = await attempt(
        services.run(
            organizations.set_default_seat,
            services.store,
            services.clock,
            actor(request),
            request.match_info["org_id"],
            await form_text(request, "default_seat"),
        ),
        notices,
    )
    if org is not None:
        notices.append(Notice("ok", f"New users get a {org.default_seat} seat by default."))
    return await show(request, notices, 200 if org else 400)


def add_routes(app: web.Application) -> None:
    app.router.add_get("", index)
    app.router.add_get("/", index)
    app.router.add_get("/orgs", index)
    app.router.add_post("/orgs", create)
    app.router.add_get("/orgs/{org_id}", detail)
    app.router.add_post("/orgs/{org_id}/seat", set_seat)
