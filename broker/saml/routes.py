"""HTTP routes of the SAML SP edge, one set per connection (issue §2, §3, §8):

  GET  /saml/{connection_id}/metadata     our SP metadata (entity ID, ACS, certificates)
  GET  /saml/{connection_id}/start        flow → AuthnRequest (HTTP-Redirect or HTTP-POST)
  POST /saml/{connection_id}/acs          SAMLResponse (HTTP-POST binding) → the core

An admin's test login ends where the core says (core.login.TEST_LOGIN_RESULT_PATH: the
setup UI's result page, for signed-in admins only), whether it passed or was refused.

Handlers parse, make one call on the store thread, and render (STYLE §4). A refused login
shows a short reason and the correlation id; the detail went to the audit log, the flow
row and the connection's recent attempts (acs.py).
"""

from __future__ import annotations

import base64
import hashlib
import logging

from aiohttp import web

from broker.core import audit
from broker.core import connections as core_connections
from broker.errors import LoginRefused, NotFound
from broker.saml import acs, endpoints, sp_keys, start
from broker.saml.authn import AuthnRedirect
from broker.web.middlewares import client_addr, request_id
from broker.web.render import error_page, render
from broker.web.services import SERVICES, Services
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
        step = await services.run(_prepare, services, connection_id, flow_id)
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
    return response


def _prepare(services: Services, connection_id: str, flow_id: str) -> start.StartStep:
    """A draft still waiting for the IdP's settings has nowhere to send the browser."""
    try:
        missing = core_connections.missing_settings(services.store.connections.get(connection_id))
    except NotFound:
        missing = None  # start.prepare refuses the unknown connection with its own words
    if missing is not None:
        raise LoginRefused("connection_incomplete", missing, f"{connection_id}: {missing}")
    return start.prepare(services, connection_id, flow_id)


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
        if exc.test_flow_id:  # the admin's result page says why, in full
            return _redirect(
                core_connections.test_result_path(connection_id, exc.test_flow_id), 303
            )
        return error_page(request, exc.public, status=exc.status)
    outcome = result.outcome
    response = _redirect(outcome.redirect_url, 303)
    response.headers["Cache-Control"] = "no-store"
    if outcome.session_token:
        max_age = None
        if outcome.session_expires_at:
            max_age = max(0, int(outcome.session_expires_at - services.clock.now()))
        set_session_cookie(response, services.settings, outcome.session_token, max_age)
    return response


def _redirect(url: str, status: int) -> web.Response:
    # Returned, not raised: the cookie must ride on this very response.
    return web.Response(status=status, headers={"Location": url})


def setup(app: web.Application) -> None:
    app.router.add_get("/saml/{connection_id}/metadata", metadata)
    app.router.add_get("/saml/{connection_id}/start", start_login)
    app.router.add_post("/saml/{connection_id}/acs", assertion_consumer)
