"""HTTP routes of the SAML SP edge, one set per connection (issue §2, §3, §8):

  GET  /saml/{connection_id}/metadata     our SP metadata (entity ID, ACS, certificates)
  GET  /saml/{connection_id}/start        flow → AuthnRequest (HTTP-Redirect or HTTP-POST)
  POST /saml/{connection_id}/acs          SAMLResponse (HTTP-POST binding) → the core
  GET  /saml/{connection_id}/test-result  what a test login received and mapped

Handlers parse, make one call on the store thread, and render (STYLE §4). A refused login
shows a short reason and the correlation id; the detail went to the audit log, the flow
row and the connection's recent attempts (acs.py).
"""

from __future__ import annotations

import base64
import hashlib
import logging

from aiohttp import web

from broker.core import audit, login
from broker.errors import LoginRefused, NotFound
from broker.ids import hash_token, tokens_equal
from broker.saml import acs, endpoints, sp_keys, start
from broker.saml.authn import AuthnRedirect
from broker.web.middlewares import client_addr, request_id
from broker.web.render import error_page, render
from broker.web.services import SERVICES
from broker.web.session_cookie import set_session_cookie

log = logging.getLogger("broker.saml")

# The POST binding page submits itself with this one inline script, allowed by its hash
# (the default CSP allows scripts from 'self' only).
AUTOSUBMIT_JS = "document.forms[0].submit();"
_AUTOSUBMIT_HASH = base64.b64encode(hashlib.sha256(AUTOSUBMIT_JS.encode()).digest()).decode()
POST_PAGE_CSP = (
    f"default-src 'self'; script-src 'sha256-{_AUTOSUBMIT_HASH}'; style-src 'self'; "
    "img-src 'self' data:; form-action *; frame-ancestors 'none'; base-uri 'none'"
)


def _actor(request: web.Request, connection_id: str) -> audit.Actor:
    return audit.Actor(f"saml:{connection_id}", client_addr(request), request_id(request))


async def metadata(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    connection_id = request.match_info["connection_id"]
    try:
        connection = await services.run(services.store.connections.get, connection_id)
    except NotFound:
        raise web.HTTPNotFound(text="no such connection") from None
    if connection.type != "saml":
        raise web.HTTPNotFound(text="no such connection")
    xml = endpoints.connection_metadata(
        services.settings.public_url, connection, sp_keys.load(services.certs_dir)
    )
    return web.Response(
        body=xml,
        content_type="application/samlmetadata+xml",
        headers={"Cache-Control": "max-age=300"},
    )


async def start_login(request: web.Request) -> web.StreamResponse:
    services = request.app[SERVICES]
    connection_id = request.match_info["connection_id"]
    flow_id = request.query.get("flow", "")
    try:
        step = await services.run(start.prepare, services, connection_id, flow_id)
    except LoginRefused as exc:
        log.info(
            "saml start refused",
            extra={"request_id": request_id(request), "reason": exc.reason, "detail": exc.detail},
        )
        return error_page(request, exc.public)
    if isinstance(step.message, AuthnRedirect):
        response: web.StreamResponse = _redirect(step.message.url, 302)
    else:
        response = render(
            request,
            "saml_post.html",
            {
                "action": step.message.action_url,
                "fields": step.message.form_fields,
                "script": AUTOSUBMIT_JS,
                "what": "identity provider",
            },
            headers={"Content-Security-Policy": POST_PAGE_CSP},
        )
    response.headers["Cache-Control"] = "no-store"
    if step.test_token:
        response.set_cookie(
            start.TEST_COOKIE,
            step.test_token,
            httponly=True,
            samesite="Lax",
            path=f"/saml/{connection_id}/",
            secure=services.settings.public_url.startswith("https://"),
        )
    return response


async def assertion_consumer(request: web.Request) -> web.StreamResponse:
    services = request.app[SERVICES]
    connection_id = request.match_info["connection_id"]
    form = await request.post()
    saml_response = form.get("SAMLResponse")
    relay_state = form.get("RelayState")
    if not isinstance(saml_response, str) or not saml_response:
        return error_page(request, "The identity provider sent no sign-in response.")
    try:
        result = await services.run(
            acs.process,
            services,
            connection_id,
            saml_response,
            relay_state if isinstance(relay_state, str) else None,
            _actor(request, connection_id),
        )
    except acs.AcsRefused as exc:
        return error_page(request, exc.public, status=exc.status)
    outcome = result.outcome
    if outcome.test_login and outcome.flow_id:
        target = endpoints.test_result_path(connection_id, outcome.flow_id)
    else:
        target = outcome.redirect_url
    response = _redirect(target, 303)
    response.headers["Cache-Control"] = "no-store"
    if outcome.session_token:
        max_age = None
        if outcome.session_expires_at:
            max_age = max(0, int(outcome.session_expires_at - services.clock.now()))
        set_session_cookie(response, services.settings, outcome.session_token, max_age)
    return response


async def test_result(request: web.Request) -> web.StreamResponse:
    services = request.app[SERVICES]
    connection_id = request.match_info["connection_id"]
    flow_id = request.query.get("flow", "")
    token = request.cookies.get(start.TEST_COOKIE, "")
    try:
        flow = await services.run(services.store.flows.get, flow_id)
        result = await services.run(login.test_login_result, services.store, flow_id)
    except NotFound:
        return error_page(
            request, "This test login does not exist.", status=404, title="Test login"
        )
    expected = flow.upstream.get("test_token_hash", "")
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
    attempts = await services.run(services.store.saml.attempts, connection_id, 5)
    if "json" in request.headers.get("Accept", ""):
        return web.json_response(result, dumps=_dumps)
    return render(
        request,
        "saml_test_result.html",
        {"result": result, "attempts": attempts, "connection_id": connection_id},
    )


def _redirect(url: str, status: int) -> web.Response:
    # Returned, not raised: the cookie must ride on this very response.
    return web.Response(status=status, headers={"Location": url})


def _dumps(value: object) -> str:
    import json

    return json.dumps(value, default=str)


def setup(app: web.Application) -> None:
    app.router.add_get("/saml/{connection_id}/metadata", metadata)
    app.router.add_get("/saml/{connection_id}/start", start_login)
    app.router.add_post("/saml/{connection_id}/acs", assertion_consumer)
    app.router.add_get("/saml/{connection_id}/test-result", test_result)
