"""The SSO switch (issue 8 §5): broker.core.policy.enable_sso / disable_sso, nothing more.

Both need the admin to tick a confirmation that says what happens; the rules (a
verified domain and a tested active connection; disabling also turns Directory Sync
off and unlinks members, domains stay verified) are the core's.
"""

from __future__ import annotations

from aiohttp import web

from broker.admin.orgs import show
from broker.admin.page import Notice, attempt, form_checked
from broker.admin.security import actor, services_of
from broker.core import policy


async def enable(request: web.Request) -> web.StreamResponse:
    services = services_of(request)
    notices: list[Notice] = []
    if not await form_checked(request, "confirm"):
        notices.append(Notice("bad", "Tick the box to confirm that password sign-in stops."))
        return await show(request, notices, 400)
    org = await attempt(
        services.run(
            policy.enable_sso,
            services.store,
            services.clock,
            actor(request),
            request.match_info["org_id"],
        ),
        notices,
    )
    if org is not None:
        notices.append(
            Notice("ok", "SSO is on. Members now sign in through your identity provider only.")
        )
    return await show(request, notices, 200 if org else 400)


async def disable(request: web.Request) -> web.StreamResponse:
    services = services_of(request)
    notices: list[Notice] = []
    if not await form_checked(request, "confirm"):
        notices.append(Notice("bad", "Tick the box to confirm what disabling SSO does."))
        return await show(request, notices, 400)
    org = await attempt(
        services.run(
            policy.disable_sso,
            services.store,
            services.clock,
            actor(request),
            request.match_info["org_id"],
        ),
        notices,
    )
    if org is not None:
        notices.append(
            Notice(
                "ok",
                "SSO is off. Directory Sync is off too, members were unlinked and signed out; "
                "your verified domains are kept.",
            )
        )
    return await show(request, notices, 200 if org else 400)


def add_routes(app: web.Application) -> None:
    app.router.add_post("/orgs/{org_id}/sso/enable", enable)
    app.router.add_post("/orgs/{org_id}/sso/disable", disable)
