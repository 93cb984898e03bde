"""Sign-in, sign-out and the first-run setup page (issue 8 §1).

Handlers only parse the form and call broker.core.admin_sessions; throttling, token
checks and the audit trail live there (the throttle's limits are the `admin.login_*`
settings, read here per request).
"""

from __future__ import annotations

from aiohttp import web

from broker.admin.page import Notice, attempt, form_text, page, redirect
from broker.admin.security import (
    REQ_SESSION,
    actor,
    anonymous_actor,
    services_of,
    session_cookie_name,
    set_cookie,
)
from broker.core import admin_sessions
from broker.crypto.secrets import DUMMY_HASH, check_password, hash_password
from broker.settings import Settings


def throttle_limits(settings: Settings) -> admin_sessions.ThrottleLimits:
    """The sign-in throttle from the `admin.login_*` settings."""
    return admin_sessions.ThrottleLimits(
        max_failures=int(settings.get("admin.login_max_failures")),
        window_seconds=float(settings.get("admin.login_window_seconds")),
        lockout_seconds=float(settings.get("admin.login_lockout_seconds")),
        max_failures_per_user=int(settings.get("admin.login_max_failures_per_user")),
    )


async def login_form(request: web.Request) -> web.StreamResponse:
    if request.get(REQ_SESSION) is not None:
        raise web.HTTPFound("/admin")
    services = services_of(request)
    count = await services.run(services.store.admins.count)
    return page(request, "login.html", {"no_admin": count == 0, "username": ""})


async def login(request: web.Request) -> web.StreamResponse:
    services = services_of(request)
    username = await form_text(request, "username")
    password = (await request.post()).get("password", "")
    result = await services.run(
        admin_sessions.sign_in,
        services.store,
        services.clock,
        anonymous_actor(request),
        username,
        password if isinstance(password, str) else "",
        check_password,
        DUMMY_HASH,
        throttle_limits(services.settings),
        request.headers.get("User-Agent"),
    )
    if not result.ok or result.cookie is None:
        status = 429 if result.retry_after else 401
        response = page(
            request,
            "login.html",
            {"no_admin": False, "username": username},
            notices=[Notice("bad", result.message)],
            status=status,
        )
        if result.retry_after:
            response.headers["Retry-After"] = str(int(result.retry_after))
        return response
    response = redirect("/admin")
    set_cookie(request, response, session_cookie_name(request), result.cookie)
    return response


async def logout(request: web.Request) -> web.StreamResponse:
    services = services_of(request)
    session = request[REQ_SESSION]
    await services.run(
        admin_sessions.sign_out, services.store, services.clock, actor(request), session
    )
    response = redirect("/admin/login")
    response.del_cookie(session_cookie_name(request), path="/")
    return response


async def setup_form(request: web.Request) -> web.StreamResponse:
    services = services_of(request)
    token = request.query.get("token", "")
    usable = await services.run(
        admin_sessions.setup_token_usable, services.store, services.clock, token
    )
    return page(request, "setup.html", {"token": token, "usable": usable, "username": ""})


async def setup(request: web.Request) -> web.StreamResponse:
    services = services_of(request)
    token = await form_text(request, "token")
    username = await form_text(request, "username")
    form = await request.post()
    password, again = form.get("password", ""), form.get("password_again", "")
    notices: list[Notice] = []
    if not isinstance(password, str) or password != again:
        notices.append(Notice("bad", "The two passwords differ."))
    else:
        done = await attempt(
            services.run(
                admin_sessions.complete_setup,
                services.store,
                services.clock,
                anonymous_actor(request),
                token,
                username,
                password,
                hash_password,
                request.headers.get("User-Agent"),
            ),
            notices,
        )
        if done is not None:
            response = redirect("/admin")
            set_cookie(request, response, session_cookie_name(request), done[1])
            return response
    usable = await services.run(
        admin_sessions.setup_token_usable, services.store, services.clock, token
    )
    return page(
        request,
        "setup.html",
        {"token": token, "usable": usable, "username": username},
        notices=notices,
        status=400,
    )


def add_routes(app: web.Application) -> None:
    app.router.add_get("/login", login_form)
    app.router.add_post("/login", login)
    app.router.add_post("/logout", logout)
    app.router.add_get("/setup", setup_form)
    app.router.add_post("/setup", setup)
