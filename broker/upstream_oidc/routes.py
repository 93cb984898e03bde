"""HTTP routes of the upstream OIDC edge, one set per connection:

  GET /oidc/{connection_id}/start?flow=…        flow → authorization request (302 to the IdP)
  GET /oidc/{connection_id}/callback            authorization response → the core → onwards
  GET /oidc/{connection_id}/test-result?flow=…  what a test login received and mapped

Handlers parse, make one call, render (STYLE §4). A refused login shows a short reason
and the correlation id; the detail is on the flow row and in the audit log.

Settings read here: the `upstream_oidc.*` section and `network.private_hosts_allowlist`.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web

from broker.core import login
from broker.errors import NotFound
from broker.ids import hash_token, tokens_equal
from broker.settings import Settings
from broker.upstream_oidc.discovery import ProviderCache
from broker.upstream_oidc.http import FetchPolicy, SafeHttp
from broker.upstream_oidc.relying_party import (
    RelyingParty,
    UpstreamRefused,
    actor,
    binding_cookie_name,
)
from broker.web.middlewares import client_addr, request_id
from broker.web.render import error_page, render
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
        max_age=int(login.config().flow_ttl),
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
        return error_page(request, exc.public, status=exc.status)
    outcome = done.outcome
    settings = rp.services.settings
    if outcome.test_login and outcome.flow_id:
        target = f"/oidc/{connection_id}/test-result?flow={outcome.flow_id}"
    else:
        target = outcome.redirect_url
    response = web.Response(status=303, headers={"Location": target, "Cache-Control": "no-store"})
    if not outcome.test_login:  # a test login keeps it: it opens the result page
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


async def test_result(request: web.Request) -> web.StreamResponse:
    services = request.app[SERVICES]
    connection_id = request.match_info["connection_id"]
    flow_id = request.query.get("flow", "")
    try:
        flow = await services.run(services.store.flows.get, flow_id)
        result = await services.run(login.test_login_result, services.store, flow_id)
    except NotFound:
        return error_page(
            request, "This test login does not exist.", status=404, title="Test login"
        )
    expected = ((flow.upstream or {}).get("oidc") or {}).get("browser_hash", "")
    token = request.cookies.get(binding_cookie_name(flow_id), "")
    if (
        flow.connection_id != connection_id
        or not token
        or not expected
        or not tokens_equal(hash_token(token), expected)
    ):
        return error_page(
            request,
            "Open this page in the browser that started the test login.",
            status=403,
            title="Test login",
        )
    if "json" in request.headers.get("Accept", ""):
        return web.json_response(result, dumps=lambda v: json.dumps(v, default=str))
    shown = dict(result)
    identity = shown.get("identity")
    if isinstance(identity, dict):  # the template lists every attribute's values
        raw = identity.get("raw_attributes") or {}
        identity = dict(
            identity, raw_attributes={k: v if isinstance(v, list) else [v] for k, v in raw.items()}
        )
        shown["identity"] = identity
    return render(
        request,
        "saml_test_result.html",
        {"result": shown, "attempts": [], "connection_id": connection_id},
    )


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
    app[RELYING_PARTY] = build(app)
    app.router.add_get("/oidc/{connection_id}/start", start_login)
    app.router.add_get("/oidc/{connection_id}/callback", callback)
    app.router.add_get("/oidc/{connection_id}/test-result", test_result)
    app.cleanup_ctx.append(_lifecycle)
