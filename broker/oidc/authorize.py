"""Authorization endpoint, email-entry page and resume (RFC 6749 §4.1; OIDC Core §3.1.2,
§3.2.2 for ID-token-only clients; RFC 9207 `iss` in every response).

Thin handlers: parse, one core call (broker.core.login), render. The pending request is
a flow row in the store (DESIGN §4), so any worker can carry the login on.
"""

from __future__ import annotations

from aiohttp import web

from broker.core import login
from broker.core.audit import Actor
from broker.core.models import Client
from broker.errors import LoginRefused, NotFound
from broker.oidc import tokens
from broker.oidc.authorize_request import AuthorizeError, check_client, parse, response_mode_for
from broker.oidc.responses import respond
from broker.web.middlewares import client_addr, request_id
from broker.web.render import error_page, render
from broker.web.services import SERVICES, Services
from broker.web.session_cookie import read_session_cookie


def actor(request: web.Request) -> Actor:
    return Actor("browser", remote_addr=client_addr(request), correlation_id=request_id(request))


async def _params(request: web.Request) -> dict[str, str] | None:
    """The request's parameters, or None when one is repeated (RFC 6749 §3.1)."""
    items = (
        list((await request.post()).items())
        if request.method == "POST"
        else list(request.query.items())
    )
    params: dict[str, str] = {}
    for key, value in items:
        if not isinstance(value, str) or key in params:
            return None
        params[key] = value
    return params


def _get_client(services: Services, client_id: str | None) -> Client | None:
    if not client_id:
        return None
    try:
        return services.store.clients.get(client_id)
    except NotFound:
        return None


async def authorize(request: web.Request) -> web.StreamResponse:
    services = request.app[SERVICES]
    params = await _params(request)
    if params is None:
        return error_page(request, "The sign-in request repeated a parameter.")
    client = await services.run(_get_client, services, params.get("client_id"))
    redirect_uri = params.get("redirect_uri")
    try:
        check_client(client, redirect_uri)
    except AuthorizeError as exc:
        return error_page(request, exc.description)
    assert client is not None and redirect_uri is not None
    mode, state = response_mode_for(params), params.get("state")
    try:
        authz = parse(params, client)
    except AuthorizeError as exc:
        return _error(request, services, redirect_uri, mode, exc.error, exc.description, state)
    try:
        step = await services.run(
            login.begin_authorize,
            services.store,
            services.clock,
            authz,
            read_session_cookie(request, services.settings),
            actor(request),
            services.login_config,
        )
    except LoginRefused as exc:
        if exc.reason == "login_required":
            return _error(
                request,
                services,
                redirect_uri,
                authz.response_mode,
                "login_required",
                exc.public,
                state,
            )
        return error_page(request, exc.public, status=403)
    if isinstance(step, login.NextStep):
        raise web.HTTPFound(step.path)
    return await answer(request, services, step)


async def answer(request: web.Request, services: Services, step: login.Answer) -> web.Response:
    """Send the core's answer: a code, or a signed ID token (front-channel-only)."""
    params: dict[str, str | None] = {"state": step.state, "iss": services.issuer}
    if step.code is not None:
        params["code"] = step.code
    else:
        claims = dict(step.id_token_claims or {})
        nonce, auth_time, sid = (
            claims.pop("nonce", None),
            claims.pop("auth_time", None),
            claims.pop("sid", None),
        )
        params["id_token"] = await services.run(
            tokens.id_token,
            services.keyring,
            issuer=services.issuer,
            client_id=step.client_id,
            alg=step.alg,
            user_claims=claims,
            ttl=int(services.settings.get("oidc.id_token_ttl_seconds")),
            nonce=nonce,
            auth_time=auth_time,
            sid=sid,
            now=services.clock.now(),
        )
    return respond(request, step.redirect_uri, step.response_mode, params)


def _error(
    request: web.Request,
    services: Services,
    redirect_uri: str,
    mode: str,
    error: str,
    description: str,
    state: str | None,
) -> web.Response:
    return respond(
        request,
        redirect_uri,
        mode,
        {"error": error, "error_description": description, "state": state, "iss": services.issuer},
    )


async def email_page(request: web.Request) -> web.Response:
    return render(
        request,
        "login_email.html",
        {"flow_id": request.query.get("flow", ""), "email": "", "message": None},
    )


async def email_submit(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    form = await request.post()
    flow_id, email = str(form.get("flow", "")), str(form.get("email", "")).strip()
    try:
        path = await services.run(
            login.submit_email, services.store, services.clock, flow_id, email
        )
    except LoginRefused as exc:
        if exc.reason in ("flow_unknown", "flow_expired"):
            return error_page(request, exc.public)
        return render(
            request,
            "login_email.html",
            {"flow_id": flow_id, "email": email, "message": exc.public},
            status=400,
        )
    raise web.HTTPSeeOther(path)


async def resume(request: web.Request) -> web.Response:
    """After an upstream login whose answer needs a page (form_post, ID tokens)."""
    services = request.app[SERVICES]
    try:
        step = await services.run(
            login.resume,
            services.store,
            services.clock,
            request.query.get("flow", ""),
            read_session_cookie(request, services.settings),
            services.login_config,
        )
    except LoginRefused as exc:
        return error_page(request, exc.public)
    return await answer(request, services, step)
