"""The setup UI's guard: session cookie, idle timeout, CSRF on every POST.

- The session cookie is HttpOnly and SameSite=Strict; behind TLS it is also Secure and
  named with the `__Host-` prefix (RFC 6265bis §4.1.3.2: Secure, Path=/, no Domain).
- Signed-in forms carry the session's synchronizer token (OWASP CSRF cheat sheet),
  checked in constant time by broker.core.admin_sessions.csrf_matches.
- The sign-in and first-run setup forms come before any session, so they use a
  double-submit token: a random cookie repeated in a hidden field.
Any POST without the right token is refused with 403 before its handler runs.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from broker.core import admin_sessions, audit
from broker.core.ports import AdminSession
from broker.ids import new_token
from broker.web.middlewares import SCHEME, client_addr, request_id
from broker.web.render import error_page
from broker.web.services import SERVICES, Services

REQ_SESSION: web.RequestKey[AdminSession | None] = web.RequestKey("admin_session")
REQ_PRE_TOKEN: web.RequestKey[str] = web.RequestKey("admin_form_token", str)
PUBLIC_PATHS = frozenset({"/admin/login", "/admin/setup"})

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def is_https(request: web.Request) -> bool:
    return request.get(SCHEME, request.scheme) == "https"


def session_cookie_name(request: web.Request) -> str:
    return "__Host-broker_admin" if is_https(request) else "broker_admin"


def pre_cookie_name(request: web.Request) -> str:
    return "__Host-broker_admin_form" if is_https(request) else "broker_admin_form"


def set_cookie(request: web.Request, response: web.StreamResponse, name: str, value: str) -> None:
    response.set_cookie(
        name,
        value,
        path="/",
        httponly=True,
        samesite="Strict",
        secure=is_https(request),
    )


def services_of(request: web.Request) -> Services:
    return request.config_dict[SERVICES]


def current_session(request: web.Request) -> AdminSession:
    session = request.get(REQ_SESSION)
    if session is None:  # the guard let an anonymous request through to a private page
        raise web.HTTPFound("/admin/login")
    return session


def actor(request: web.Request) -> audit.Actor:
    """Who acts, for the audit log: the admin, the client address and the request id."""
    return admin_sessions.actor_for(
        current_session(request), client_addr(request), request_id(request)
    )


def anonymous_actor(request: web.Request) -> audit.Actor:
    return audit.Actor("anonymous", client_addr(request), request_id(request))


def csrf_token(request: web.Request) -> str:
    """The token to put in this page's forms."""
    session = request.get(REQ_SESSION)
    if session is not None:
        return session.csrf_token
    return request.get(REQ_PRE_TOKEN, "")


def _refuse(request: web.Request) -> web.Response:
    return error_page(
        request,
        "This form expired or did not come from this site. Go back, reload the page and try again.",
        status=403,
        title="Request refused",
    )


@web.middleware
async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
    services = services_of(request)
    cookie = request.cookies.get(session_cookie_name(request))
    idle = services.settings.get("admin.idle_timeout_seconds")
    session = None
    if cookie:
        session = await services.run(
            admin_sessions.current, services.store, services.clock, cookie, idle
        )
    request[REQ_SESSION] = session
    unsafe = request.method not in ("GET", "HEAD")
    if request.path in PUBLIC_PATHS:
        pre = request.cookies.get(pre_cookie_name(request), "")
        if unsafe:
            form = await request.post()
            submitted = form.get("csrf")
            if not admin_sessions.csrf_matches(
                pre, submitted if isinstance(submitted, str) else ""
            ):
                return _refuse(request)
        fresh = not pre
        request[REQ_PRE_TOKEN] = pre or new_token()
        response = await handler(request)
        if fresh:
            set_cookie(request, response, pre_cookie_name(request), request[REQ_PRE_TOKEN])
        return response
    if session is None:
        if unsafe:
            return _refuse(request)
        raise web.HTTPFound("/admin/login")
    if unsafe:
        form = await request.post()
        submitted = form.get("csrf")
        if not admin_sessions.csrf_matches(
            session.csrf_token, submitted if isinstance(submitted, str) else ""
        ):
            return _refuse(request)
    return await handler(request)
