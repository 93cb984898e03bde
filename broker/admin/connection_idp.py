"""Step 2 of the connection wizard: the IdP's settings, checked on the spot.

SAML: the IdP's metadata URL or file, or the entity ID, SSO URL and certificate typed by
hand, parsed by the SAML edge (broker.admin.idp_input): parse errors, expired
certificates and a non-HTTPS SSO URL come back as plain-words notices. OIDC: issuer,
client ID, client secret (a password field, never shown again: a blank field keeps the
sealed one), scopes and claim overrides, checked by broker.core.oidc_connections.
Saved settings answer 303 to the connection's page (Post/Redirect/Get, see
broker.admin.connections); refused ones render the page with status 400 and the reason.
"""

from __future__ import annotations

from aiohttp import web

from broker.admin.connections import changed, lines_to_claims, owned, show, tools
from broker.admin.idp_input import read_idp_settings
from broker.admin.page import Notice, attempt
from broker.admin.security import actor, services_of
from broker.core import connections, oidc_connections
from broker.core.models import Connection
from broker.errors import InvalidInput


async def set_saml(request: web.Request) -> web.StreamResponse:
    services = services_of(request)
    org_id, conn_id = request.match_info["org_id"], request.match_info["conn_id"]
    notices: list[Notice] = []
    idp = await attempt(read_idp_settings(request, services, tools()), notices)
    if idp is not None:
        who = actor(request)
        refresh = services.settings.get("saml.metadata_refresh_seconds")

        def save() -> Connection:
            owned(services.store, org_id, conn_id)
            return connections.set_idp_settings(
                services.store, services.clock, who, conn_id, idp, refresh_after=refresh
            )

        done = await attempt(services.run(save), notices)
        if done is not None:  # its warnings are on the connection; the page shows them
            return changed(org_id, conn_id, "idp_saved")
    return await show(request, notices, 400)


async def _oidc_input(request: web.Request) -> oidc_connections.OidcConnectionInput:
    form = await request.post()

    def text(name: str) -> str:
        value = form.get(name, "")
        return value.strip() if isinstance(value, str) else ""

    secret = form.get("client_secret", "")
    return oidc_connections.OidcConnectionInput(
        organization_id="",  # the connection's own (set_oidc_settings)
        preset="generic",
        issuer=text("issuer"),
        client_id=text("client_id"),
        client_secret=secret if isinstance(secret, str) and secret.strip() else None,
        token_auth_method=text("token_auth_method") or "client_secret_basic",
        scopes=text("scopes").split() or oidc_connections.DEFAULT_SCOPES,
        claims=lines_to_claims(text("claims")),
        ca_pem=text("ca_pem") or None,
        hosted_domain=text("hosted_domain") or None,
    )


async def set_oidc(request: web.Request) -> web.StreamResponse:
    services = services_of(request)
    org_id, conn_id = request.match_info["org_id"], request.match_info["conn_id"]
    notices: list[Notice] = []
    try:
        data = await _oidc_input(request)
    except InvalidInput as exc:
        notices.append(Notice("bad", exc.public))
        return await show(request, notices, 400)
    who = actor(request)
    box = services.secret_box
    loopback = bool(services.settings.get("upstream_oidc.allow_insecure_loopback"))

    def save() -> Connection:
        owned(services.store, org_id, conn_id)
        return oidc_connections.set_oidc_settings(
            services.store,
            services.clock,
            who,
            conn_id,
            data,
            seal=box.encrypt,
            allow_insecure_loopback=loopback,
        )

    done = await attempt(services.run(save), notices)
    if done is None:
        return await show(request, notices, 400)
    return changed(org_id, conn_id, "oidc_saved")


def add_routes(app: web.Application) -> None:
    app.router.add_post("/orgs/{org_id}/connections/{conn_id}/idp", set_saml)
    app.router.add_post("/orgs/{org_id}/connections/{conn_id}/oidc", set_oidc)
