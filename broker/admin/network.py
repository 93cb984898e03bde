"""The private-address allow-list (DESIGN §6): hosts whose names may resolve to private
addresses when the broker fetches IdP metadata or OIDC discovery documents (on-premises
AD FS, an internal Keycloak). Same store calls and audit actions as `exec-broker network
allow-host|remove-host|hosts`; the `network.private_hosts_allowlist` setting adds to it
and is shown read-only. Every change is a CSRF-checked POST (broker.admin.security).
"""

from __future__ import annotations

import ipaddress

from aiohttp import web

from broker.admin.page import Notice, attempt, form_text, page
from broker.admin.security import actor, services_of
from broker.clock import Clock
from broker.core import audit
from broker.core.ports import Store
from broker.errors import InvalidInput


def normalize_host(text: str) -> str:
    """A host name or IP address, lower-case, without brackets or a trailing dot."""
    host = text.strip().strip("[]").rstrip(".").lower()
    if _is_ip(host):
        return str(ipaddress.ip_address(host))
    if not host or len(host) > 253 or any(c in host for c in "/@?#:") or not host.isprintable():
        raise InvalidInput(f"{text.strip()[:80]!r} is not a host name or IP address")
    if any(c.isspace() for c in host):
        raise InvalidInput(f"{text.strip()[:80]!r} is not a host name or IP address")
    return host


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def allow(store: Store, clock: Clock, who: audit.Actor, host: str, note: str | None) -> str:
    now = clock.now()
    with store.transaction():
        store.network_hosts.add(host, now, who.name, note)
        audit.record(store, who, "network.host_allowed", now, target=host)
    return host


def remove(store: Store, clock: Clock, who: audit.Actor, host: str) -> str:
    now = clock.now()
    with store.transaction():
        store.network_hosts.remove(host)
        audit.record(store, who, "network.host_removed", now, target=host)
    return host


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
        services.run(allow, services.store, services.clock, actor(request), host, note), notices
    )
    if done is not None:
        notices.append(Notice("ok", f"{host} may now resolve to private addresses."))
    return await show(request, notices, 200 if done else 400)


async def drop(request: web.Request) -> web.StreamResponse:
    services = services_of(request)
    notices: list[Notice] = []
    host = request.match_info["host"]
    done = await attempt(
        services.run(remove, services.store, services.clock, actor(request), host), notices
    )
    if done is not None:
        notices.append(Notice("ok", f"{host} is off the allow-list."))
    return await show(request, notices, 200 if done else 400)


def add_routes(app: web.Application) -> None:
    app.router.add_get("/network", index)
    app.router.add_post("/network/hosts", add)
    app.router.add_post("/network/hosts/{host}/remove", drop)
