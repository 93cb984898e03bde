"""The connection wizard (issue 8 §4), in the order the IdP needs it:

  1. choose the provider (11 SAML presets + generic SAML, the OIDC presets + generic OIDC)
     and a name → a draft connection without IdP settings is created;
  2. its page shows what to paste into the IdP (ACS URL, SP entity ID, metadata URL and
     the attribute statements with that IdP's names; for OIDC the redirect URI), because
     Okta and Entra need them to create the app, then takes the IdP's settings
     (broker.admin.connection_idp), checked on the spot;
  3. Test login (the result page is broker.admin.test_result), then Activate.

Lifecycle rules are broker.core.connections' (no test login or activation before the IdP
settings; activation only after a successful test login); parsing, the SP endpoints and
preset guidance come from the SAML edge through broker.core.connection_tools.

Post/Redirect/Get: a POST that changes the connection answers 303 to its page with
`?done=<key>`, so reloading the page never sends the change again; the page shows the
fixed sentence DONE_NOTICES[key] (never text from the URL; an unknown key shows nothing).
A refused change renders the page at once with status 400 and the reason.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from broker.admin.page import Notice, attempt, form_text, page, redirect
from broker.admin.security import actor, services_of
from broker.core import connection_tools, connections, oidc_connections
from broker.core.models import Connection
from broker.core.ports import Store
from broker.errors import InvalidInput, NotFound

# Issuer shapes the admin will recognise (placeholders, never defaults).
OIDC_ISSUER_HINTS = {
    "okta": "https://your-org.okta.com",
    "entra": "https://login.microsoftonline.com/<tenant id>/v2.0",
    "google": "https://accounts.google.com",
}


# The one-time notices a redirect after a change may ask for (`?done=<key>`).
DONE_NOTICES = {
    "activated": "Connection active: its users may sign in.",
    "deactivated": "Connection switched off.",
    "idp_saved": "IdP settings checked and saved. Now run a test login.",
    "oidc_saved": (
        "Identity provider settings saved (the secret is sealed and not shown again). "
        "Now run a test login."
    ),
}


def changed(org_id: str, connection_id: str, done: str) -> web.Response:
    """303 to the connection's page, which then says DONE_NOTICES[done] (PRG)."""
    if done not in DONE_NOTICES:
        raise ValueError(f"no notice {done!r}")  # a programming error, not user input
    return redirect(f"/admin/orgs/{org_id}/connections/{connection_id}?done={done}")


def tools() -> connection_tools.SamlTools:
    found = connection_tools.saml_tools()
    if found is None:
        raise web.HTTPNotFound(text="the SAML edge is not part of this build")
    return found


def label(kind: str, key: str) -> str:
    """What the admin calls the provider: "Okta", "Generic OpenID Connect", ..."""
    if key == "generic":
        return "Generic SAML 2.0" if kind == "saml" else "Generic OpenID Connect"
    return str(tools().preset(key).display_name)


def choices() -> list[dict[str, str]]:
    shown = [{"type": "saml", "key": k, "label": label("saml", k)} for k in connections.PRESETS]
    shown += [
        {"type": "oidc", "key": k, "label": label("oidc", k)} for k in oidc_connections.OIDC_PRESETS
    ]
    return shown


def redirect_uri(public_url: str, connection_id: str) -> str:
    """Where the IdP sends the browser back (broker.upstream_oidc's callback route)."""
    return f"{public_url.rstrip('/')}/oidc/{connection_id}/callback"


def _chosen(kind: str, key: str) -> bool:
    presets = connections.PRESETS if kind == "saml" else oidc_connections.OIDC_PRESETS
    return kind in connections.TYPES and key in presets


async def new(request: web.Request) -> web.StreamResponse:
    return await _new_page(
        request, [], request.query.get("type", ""), request.query.get("preset", "")
    )


async def _new_page(
    request: web.Request, notices: list[Notice], kind: str, key: str, status: int = 200
) -> web.Response:
    services = services_of(request)
    tools()
    org = await attempt(
        services.run(services.store.organizations.get, request.match_info["org_id"]), notices
    )
    if org is None:
        return page(request, "not_found.html", notices=notices, status=404)
    chosen = _chosen(kind, key)
    context: dict[str, Any] = {
        "org": org,
        "choices": choices(),
        "kind": kind if chosen else "",
        "key": key if chosen else "",
        "label": label(kind, key) if chosen else "",
    }
    return page(request, "connection_new.html", context, notices=notices, status=status)


async def create(request: web.Request) -> web.StreamResponse:
    """Step 1 → 2: a draft with no IdP settings; its page shows what to paste first."""
    services = services_of(request)
    org_id = request.match_info["org_id"]
    kind, key = await form_text(request, "type"), await form_text(request, "preset")
    name = await form_text(request, "name")
    notices: list[Notice] = []
    if not _chosen(kind, key):
        notices.append(Notice("bad", "Choose the identity provider first."))
        return await _new_page(request, notices, kind, key, 400)
    if kind == "saml":
        made = await attempt(
            services.run(
                lambda: connections.create_connection(
                    services.store,
                    services.clock,
                    actor(request),
                    organization_id=org_id,
                    type="saml",
                    preset=key,
                    name=name or None,
                    options=tools().preset_defaults(key),
                )
            ),
            notices,
        )
    else:
        made = await attempt(
            services.run(
                lambda: oidc_connections.create_oidc_draft(
                    services.store,
                    services.clock,
                    actor(request),
                    organization_id=org_id,
                    preset=key,
                    name=name or None,
                )
            ),
            notices,
        )
    if made is None:
        return await _new_page(request, notices, kind, key, 400)
    return redirect(f"/admin/orgs/{org_id}/connections/{made.id}")


def owned(store: Store, org_id: str, connection_id: str) -> Connection:
    connection = store.connections.get(connection_id)
    if connection.organization_id != org_id:
        raise NotFound(f"connection {connection_id} not found")
    return connection


def _view(store: Store, org_id: str, connection_id: str, now: float) -> dict[str, Any]:
    connection = owned(store, org_id, connection_id)
    view: dict[str, Any] = {
        "org": store.organizations.get(org_id),
        "c": connection,
        "missing": connections.missing_settings(connection),
        "expiring": [],
        "attempts": [],
    }
    if connection.type == "saml":
        view["expiring"] = connections.expiring_certificates(connection, now)
        view["attempts"] = connections.recent_attempts(store, connection_id, 10)
    else:
        view["oidc"] = oidc_connections.describe(connection)
    return view


async def detail(request: web.Request) -> web.StreamResponse:
    done = request.query.get("done", "")
    text = DONE_NOTICES.get(done)
    notices = [Notice("ok", text)] if text else []
    return await show(request, notices, idp_warnings=done == "idp_saved")


async def show(
    request: web.Request, notices: list[Notice], status: int = 200, *, idp_warnings: bool = False
) -> web.Response:
    """The connection's page; `idp_warnings` adds the warnings of the IdP settings just saved."""
    services = services_of(request)
    saml = tools()
    view = await attempt(
        services.run(
            _view,
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
    if idp_warnings:  # before the "saved" notice, as they were found while checking
        warnings = connection.config.get("idp_warnings") or ()
        notices[:0] = [Notice("info", str(w)) for w in warnings]
    view["label"] = label(connection.type, connection.preset)
    view["preset"] = saml.preset(connection.preset)
    public_url = services.settings.public_url
    if connection.type == "saml":
        view["sp"] = saml.sp_summary(public_url, connection.id)
    else:
        view["redirect_uri"] = redirect_uri(public_url, connection.id)
        view["issuer_hint"] = OIDC_ISSUER_HINTS.get(connection.preset, "https://idp.example.com")
        view["auth_methods"] = oidc_connections.AUTH_METHODS
        view["claim_fields"] = oidc_connections.CLAIM_FIELDS
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


async def test_login(request: web.Request) -> web.StreamResponse:
    services = services_of(request)
    org_id, conn_id = request.match_info["org_id"], request.match_info["conn_id"]
    notices: list[Notice] = []
    who = actor(request)

    def start() -> tuple[str, str]:
        owned(services.store, org_id, conn_id)
        return connections.start_test_login(
            services.store, services.clock, who, conn_id, config=services.login_config
        )

    started = await attempt(services.run(start), notices)
    if started is None:
        return await show(request, notices, 400)
    return redirect(started[1])


async def activate(request: web.Request) -> web.StreamResponse:
    return await _switch(request, connections.activate, "activated")


async def deactivate(request: web.Request) -> web.StreamResponse:
    return await _switch(request, connections.deactivate, "deactivated")


async def _switch(request: web.Request, fn: Any, done_key: str) -> web.Response:
    services = services_of(request)
    org_id, conn_id = request.match_info["org_id"], request.match_info["conn_id"]
    notices: list[Notice] = []
    who = actor(request)

    def switch() -> Connection:
        owned(services.store, org_id, conn_id)
        result: Connection = fn(services.store, services.clock, who, conn_id)
        return result

    done = await attempt(services.run(switch), notices)
    if done is None:
        return await show(request, notices, 400)
    return changed(org_id, conn_id, done_key)


def lines_to_claims(text: str) -> dict[str, str]:
    """`field=claim` lines (the CLI's --claim) → the overrides; InvalidInput names a bad one."""
    claims: dict[str, str] = {}
    for line in text.splitlines():
        if not line.strip():
            continue
        field, sep, claim = line.partition("=")
        if not sep or not field.strip() or not claim.strip():
            raise InvalidInput(f"write each claim override as field=claim, not {line.strip()!r}")
        claims[field.strip()] = claim.strip()
    return claims


def add_routes(app: web.Application) -> None:
    app.router.add_get("/orgs/{org_id}/connections/new", new)
    app.router.add_post("/orgs/{org_id}/connections", create)
    app.router.add_get("/orgs/{org_id}/connections/{conn_id}", detail)
    app.router.add_post("/orgs/{org_id}/connections/{conn_id}/test", test_login)
    app.router.add_post("/orgs/{org_id}/connections/{conn_id}/activate", activate)
    app.router.add_post("/orgs/{org_id}/connections/{conn_id}/deactivate", deactivate)
