"""HTTP routes of the upstream OIDC edge, one set per connection:

  GET /oidc/{connection_id}/start?flow=…        flow → authorization request (302 to the IdP)
  GET /oidc/{connection_id}/callback            authorization response → the core → onwards

An admin's test login ends where the core says (core.login.TEST_LOGIN_RESULT_PATH: the
setup UI's result page, for signed-in admins only), whether it passed or was refused.

Handlers parse, make one call, render (STYLE §4). A refused login shows a short reason
and the correlation id; the detail is on the flow row and in the audit log.

Settings read here: the `upstream_oidc.*` section and `network.private_hosts_allowlist`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web

from broker.core import connections
from broker.settings import Settings
from broker.upstream_oidc.discovery import ProviderCache
from broker.upstream_oidc.http import FetchPolicy, SafeHttp
from broker.upstream_oidc.relying_party import (
    RelyingParty,
    UpstreamRefused,
    actor,
)
from broker.web.middlewares import client_addr, request_id
from broker.web.render import error_page
from broker.web.services import SERVICES
from broker.web.session_cookie import set_session_cookie

RELYING_PARTY: web.AppKey[RelyingParty] = web.AppKey("upstream_oidc", RelyingParty)


def setting(settings: Settings, name: str) -> Any:
    return settings.get(name)


def _secure(settings: Settings) -> bool:
    return settings.public_url.startswith("https://")


def _act(request: web.Request) -> Any:
    return actor(request.match_info["connection_id"], client_addr(request), request_id(request))


async def start_login(request: web.Request) -> web.StreamResponse:
    rp = request.app[RELYING_PARTY]
    connection_id = request.match_info["connection_id"]
    try:
        step = await rp.start(connection_id, request.query.get("flow", ""), _act(request))
    except UpstreamRefused as exc:
        return error_page(request, exc.public, status=exc.status)
    response = web.Response(status=302, headers={"Location": step.url, "Cache-Control": "no-store"})
    settings = rp.services.settings
    response.set_cookie(
        step.cookie_name,
        step.cookie_value,
        max_age=int(rp.services.login_config.flow_ttl),
        path=step.cookie_path,
        httponly=True,
        secure=_secure(settings),
        samesite="Lax",
    )
    return response


async def callback(request: web.Request) -> web.StreamResponse:
    rp = request.app[RELYING_PARTY]
    connection_id = request.match_info["connection_id"]
    params = {k: v for k, v in request.query.items()}
    try:
        done = await rp.finish(connection_id, params, request.cookies, _act(request))
    except UpstreamRefused as exc:
        if exc.test_flow_id:  # the admin's result page says why, in full
            path = connections.test_result_path(connection_id, exc.test_flow_id)
            return web.Response(status=303, headers={"Location": path, "Cache-Control": "no-store"})
        return error_page(request, exc.public, status=exc.status)
    outcome = done.outcome
    settings = rp.services.settings
    headers = {"Location": outcome.redirect_url, "Cache-Control": "no-store"}
    response = web.Response(status=303, headers=headers)
    response.del_cookie(
        done.cookie_name,
        path=done.cookie_path,
        secure=_secure(settings),
        httponly=True,
        samesite="Lax",
    )
    if outcome.session_token:
        max_age = None
        if outcome.session_expires_at:
            max_age = max(0, int(outcome.session_expires_at - rp.services.clock.now()))
        set_session_cookie(response, settings, outcome.session_token, max_age)
    return response


def build(app: web.Application) -> RelyingParty:
    services = app[SERVICES]
    settings = services.settings
    allowlist = settings.values.get("network.private_hosts_allowlist") or ()
    policy = FetchPolicy(
        allowlist=frozenset(str(h).lower().rstrip(".") for h in allowlist),
        timeout=float(setting(settings, "upstream_oidc.timeout_seconds")),
        max_bytes=int(setting(settings, "upstream_oidc.max_response_bytes")),
        allow_insecure_loopback=bool(setting(settings, "upstream_oidc.allow_insecure_loopback")),
    )
    http = SafeHttp(policy)
    cache = ProviderCache(
        http,
        metadata_ttl=float(setting(settings, "upstream_oidc.discovery_ttl_seconds")),
        jwks_min_refresh=float(setting(settings, "upstream_oidc.jwks_min_refresh_seconds")),
    )
    return RelyingParty(
        services,
        http,
        cache,
        clock_skew=float(setting(settings, "upstream_oidc.clock_skew_seconds")),
    )


async def _lifecycle(app: web.Application) -> AsyncIterator[None]:
    yield
    await app[RELYING_PARTY].close()


def setup(app: web.Application) -> None:
    """Routes, plus the RelyingParty on the app (RELYING_PARTY) and on
    `Services.upstream_oidc`, where broker.upstream_oidc.refresh finds its cache."""
    rp = build(app)
    app[RELYING_PARTY] = rp
    app[SERVICES].upstream_oidc = rp
    app.router.add_get("/oidc/{connection_id}/start", start_login)
    app.router.add_get("/oidc/{connection_id}/callback", callback)
    app.cleanup_ctx.append(_lifecycle)
