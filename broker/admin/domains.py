"""Domains: add one or several, verify now (DNS TXT), remove (issue 8 §3).

The same core calls as `exec-broker domain add|verify|remove`; the plain-words outcome
(NXDOMAIN, wrong value, timeout) comes from broker.core.domains.interpret.
"""

from __future__ import annotations

import re

from aiohttp import web

from broker.admin.orgs import show
from broker.admin.page import Notice, attempt, form_text
from broker.admin.security import actor, services_of
from broker.core import domains

_SEPARATORS = re.compile(r"[\s,;]+")


async def add(request: web.Request) -> web.StreamResponse:
    services = services_of(request)
    org_id = request.match_info["org_id"]
    names = [n for n in _SEPARATORS.split(await form_text(request, "domains")) if n]
    notices: list[Notice] = []
    if not names:
        notices.append(Notice("bad", "Type a domain such as acme.com."))
    for name in names[:20]:
        added = await attempt(
            services.run(
                domains.add_domain, services.store, services.clock, actor(request), org_id, name
            ),
            notices,
        )
        if added is not None:
            notices.append(
                Notice("info", f"{added.domain} added. Create its TXT record, then Verify now.")
            )
    failed = any(n.kind == "bad" for n in notices)
    return await show(request, notices, 400 if failed else 200)


async def verify(request: web.Request) -> web.StreamResponse:
    services = services_of(request)
    notices: list[Notice] = []
    # verify_domain awaits the DNS answer itself; its store calls go to the store thread.
    result = await attempt(
        domains.verify_domain(
            services.store,
            services.resolver,
            services.clock,
            actor(request),
            request.match_info["org_id"],
            request.match_info["domain"],
            run=services.run,
        ),
        notices,
    )
    if result is not None:
        notices.append(Notice("ok" if result.outcome == "verified" else "bad", result.message))
    return await show(request, notices)


async def remove(request: web.Request) -> web.StreamResponse:
    services = services_of(request)
    notices: list[Notice] = []
    name = request.match_info["domain"]
    await attempt(
        services.run(
            domains.remove_domain,
            services.store,
            services.clock,
            actor(request),
            request.match_info["org_id"],
            name,
        ),
        notices,
    )
    if not notices:
        notices.append(Notice("ok", f"{name} removed."))
    return await show(request, notices)


def add_routes(app: web.Application) -> None:
    app.router.add_post("/orgs/{org_id}/domains", add)
    app.router.add_post("/orgs/{org_id}/domains/{domain}/verify", verify)
    app.router.add_post("/orgs/{org_id}/domains/{domain}/remove", remove)
