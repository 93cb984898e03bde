"""The connection wizard (issue 8 §4): choose the provider, read what to paste into the
IdP, give the IdP's metadata (URL, file or manual fields), test login, activate.

Lifecycle rules are broker.core.connections' (a connection is activated only after a
successful test login); test logins are broker.core.login's; parsing and the SP
endpoints come from the SAML edge through broker.core.connection_tools.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from broker.admin.idp_input import read_idp_settings
from broker.admin.page import Notice, attempt, form_text, page, redirect
from broker.admin.security import actor, services_of
from broker.core import connection_tools, connections, login
from broker.core.ports import Store
from broker.errors import NotFound

GENERIC_OIDC = "generic-oidc"


def _tools() -> connection_tools.SamlTools:
    tools = connection_tools.saml_tools()
    if tools is None:
        raise web.HTTPNotFound(text="the SAML edge is not part of this build")
    return tools


def _choices(tools: connection_tools.SamlTools) -> list[dict[str, str]]:
    shown = []
    for key in connections.PRESETS:
        preset = tools.preset(key)
        label = "Generic SAML 2.0" if key == "generic" else preset.display_name
        shown.append({"key": key, "label": label, "type": "saml"})
    shown.append({"key": GENERIC_OIDC, "label": "Generic OpenID Connect", "type": "oidc"})
    return shown


async def new(request: web.Request) -> web.StreamResponse:
    return await _new_page(request, [])


async def _new_page(request: web.Request, notices: list[Notice], status: int = 200) -> web.Response:
    services = services_of(request)
    tools = _tools()
    org_id = request.match_info["org_id"]
    org = await attempt(services.run(services.store.organizations.get, org_id), notices)
    if org is None:
        return page(request, "not_found.html", notices=notices, status=404)
    key = request.query.get("preset", "")
    if request.method == "POST":
        key = await form_text(request, "preset")
    context: dict[str, Any] = {"org": org, "choices": _choices(tools), "key": key}
    context["preset"] = tools.preset(key) if key in connections.PRESETS else None
    redirect_uri = services.settings.public_url.rstrip("/") + "/oidc/<connection id>/callback"
    context["oidc_redirect_uri"] = redirect_uri
    return page(request, "connection_new.html", context, notices=notices, status=status)


async def create(request: web.Request) -> web.StreamResponse:
    services = services_of(request)
    tools = _tools()
    org_id = request.match_info["org_id"]
    preset = await form_text(request, "preset")
    notices: list[Notice] = []
    idp = await attempt(read_idp_settings(request, services, tools), notices)
    if idp is None:
        return await _new_page(request, notices, 400)
    made = await attempt(
        services.run(
            lambda: connections.create_connection(
                services.store,
                services.clock,
                actor(request),
                organization_id=org_id,
                type="saml",
                preset=preset,
                name=None,
                idp=idp,
                refresh_after=services.settings.get("saml.metadata_refresh_seconds"),
            )
        ),
        notices,
    )
    if made is None:
        return await _new_page(request, notices, 400)
    return redirect(f"/admin/orgs/{org_id}/connections/{made.id}")


def _connection_view(store: Store, org_id: str, connection_id: str, now: float) -> dict[str, Any]:
    connection = store.connections.get(connection_id)
    if connection.organization_id != org_id:
        raise NotFound(f"connection {connection_id} not found")
    return {
        "org": store.organizations.get(org_id),
        "c": connection,
        "expiring": connections.expiring_certificates(connection, now),
        "attempts": connections.recent_attempts(store, connection_id, 10),
    }


async def detail(request: web.Request) -> web.StreamResponse:
    return await show(request, [])


async def show(request: web.Request, notices: list[Notice], status: int = 200) -> web.Response:
    services = services_of(request)
    tools = _tools()
    view = await attempt(
        services.run(
            _connection_view,
            services.store,
            request.match_info["org_id"],
            request.match_info["conn_id"],
            services.clock.now(),
        ),
        notices,
    )
    if view is None:
        return page(request, "not_found.html", notices=notices, status=404)
    connection = view["c"]
    view["sp"] = tools.sp_summary(services.settings.public_url, connection.id)
    view["preset"] = tools.preset(connection.preset)
    for cert in view["expiring"]:
        state = "expired on" if cert["expired"] else "expires on"
        notices.append(
            Notice(
                "bad" if cert["expired"] else "info",
                f"The IdP signing certificate {cert['subject']} {state} "
                f"{cert['not_after_iso'][:10]}. Upload fresh metadata from the IdP.",
            )
        )
    return page(request, "connection.html", view, notices=notices, status=status)


async def replace_idp(request: web.Request) -> web.StreamResponse:
    services = services_of(request)
    tools = _tools()
    notices: list[Notice] = []
    idp = await attempt(read_idp_settings(request, services, tools), notices)
    if idp is not None:
        done = await attempt(
            services.run(
                connections.set_idp_settings,
                services.store,
                services.clock,
                actor(request),
                request.match_info["conn_id"],
                idp,
            ),
            notices,
        )
        if done is not None:
            notices.append(Notice("ok", "IdP settings saved; run a test login again."))
    return await show(request, notices, 400 if any(n.kind == "bad" for n in notices) else 200)


async def test_login(request: web.Request) -> web.StreamResponse:
    services = services_of(request)
    tools = _tools()
    conn_id = request.match_info["conn_id"]
    notices: list[Notice] = []
    flow_id = await attempt(
        services.run(
            login.create_test_login, services.store, services.clock, conn_id, actor(request)
        ),
        notices,
    )
    if flow_id is None:
        return await show(request, notices, 400)
    return redirect(tools.start_path(conn_id, flow_id))


async def activate(request: web.Request) -> web.StreamResponse:
    return await _switch(request, connections.activate, "Connection active: its users may sign in.")


async def deactivate(request: web.Request) -> web.StreamResponse:
    return await _switch(request, connections.deactivate, "Connection switched off.")


async def _switch(request: web.Request, fn: Any, done_text: str) -> web.Response:
    services = services_of(request)
    notices: list[Notice] = []
    done = await attempt(
        services.run(
            fn, services.store, services.clock, actor(request), request.match_info["conn_id"]
        ),
        notices,
    )
    if done is not None:
        notices.append(Notice("ok", done_text))
    return await show(request, notices, 200 if done else 400)


def add_routes(app: web.Application) -> None:
    app.router.add_get("/orgs/{org_id}/connections/new", new)
    app.router.add_post("/orgs/{org_id}/connections", create)
    app.router.add_get("/orgs/{org_id}/connections/{conn_id}", detail)
    app.router.add_post("/orgs/{org_id}/connections/{conn_id}/idp", replace_idp)
    app.router.add_post("/orgs/{org_id}/connections/{conn_id}/test", test_login)
    app.router.add_post("/orgs/{org_id}/connections/{conn_id}/activate", activate)
    app.router.add_post("/orgs/{org_id}/connections/{conn_id}/deactivate", deactivate)
