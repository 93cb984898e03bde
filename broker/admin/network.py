"""The network allow-list page: same core calls and audit actions as `exec-broker network
allow-host|remove-host|hosts` (broker.core.network); the `network.private_hosts_allowlist`
setting adds to it and is shown read-only. Every change is a CSRF-checked POST.
"""

from __future__ import annotations

from aiohttp import web

from broker.admin.page import Notice, attempt, form_text, page
from broker.admin.security import actor, services_of
from broker.core.network import allow_host, normalize_host, remove_host
from broker.errors import InvalidInput


async def show(request: web.Request, notices: list[Notice], status: int = 200) -> web.Response:
    services = services_of(request)
    stored = await services.run(services.store.network_hosts.list)
    configured = list(services.settings.get("network.private_hosts_allowlist"))
    context = {"stored": stored, "configured": configured}
    return page(request, "network.html", context, notices=notices, status=status)


async def index(request: web.Request) -> web.StreamResponse:
    return await show(request, [])


async def add(request: web.Request) -> web.StreamResponse:
    services = services_of(request)
    notices: list[Notice] = []
    try:
        host = normalize_host(await form_text(request, "host"))
    except InvalidInput as exc:
        notices.append(Notice("bad", exc.public))
        return await show(request, notices, 400)
    note = (await form_text(request, "note"))[:200] or None
    done = await attempt(
        services.run(allow_host, services.store, services.clock, actor(request), host, note),
        notices,
    )
    if done is not None:
        notices.append(Notice("ok", f"{host} may now resolve to private addresses."))
    return await show(request, notices, 200 if done else 400)


async def drop(request: web.Request) -> web.StreamResponse:
    services = services_of(request)
    notices: list[Notice] = []
    host = request.match_info["host"]
    done = await attempt(
        services.run(remove_host, services.store, services.clock, actor(request), host), notices
    )
    if done is not None:
        notices.append(Notice("ok", f"{host} is off the allow-list."))
    return await show(request, notices, 200 if done else 400)


def add_routes(app: web.Application) -> None:
    app.router.add_get("/network", index)
    app.router.add_post("/network/hosts", add)
    app.router.add_post("/network/hosts/{host}/remove", drop)
