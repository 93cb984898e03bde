"""The SSO switch (issue 8 §5): broker.core.policy.enable_sso / disable_sso, nothing more.

Both need the admin to tick a confirmation that says what happens; the rules (a
verified domain and a tested active connection; disabling also turns Directory Sync
off and unlinks members, domains stay verified) are the core's.
"""

from __future__ import annotations

from aiohttp import web

from broker.admin.orgs import show
from broker.admin.page import confirmed_switch
from broker.core import policy


async def enable(request: web.Request) -> web.StreamResponse:
    return await confirmed_switch(
        request,
        policy.enable_sso,
        unconfirmed="Tick the box to confirm that password sign-in stops.",
        done="SSO is on. Members now sign in through your identity provider only.",
        show=show,
    )


async def disable(request: web.Request) -> web.StreamResponse:
    return await confirmed_switch(
        request,
        policy.disable_sso,
        unconfirmed="Tick the box to confirm what disabling SSO does.",
        done="SSO is off. Directory Sync is off too, members were unlinked and signed out; "
        "your verified domains are kept.",
        show=show,
    )


def add_routes(app: web.Application) -> None:
    app.router.add_post("/orgs/{org_id}/sso/enable", enable)
    app.router.add_post("/orgs/{org_id}/sso/disable", disable)
