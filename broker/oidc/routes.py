"""Routes of the OpenID Connect provider edge (toward Exec).

`setup(app)` mounts discovery, JWKS, authorize (+ email page, resume), token,
revocation, userinfo and end-session endpoints. This edge passes the app's LoginConfig
(`services.login_config`) to every core call; there is no process-wide one.
"""

from __future__ import annotations

from aiohttp import web

from broker.oidc import authorize, logout, metadata, token, userinfo
from broker.oidc.server import ProviderServer
from broker.web.services import SERVICES


def setup(app: web.Application) -> None:
    services = app[SERVICES]
    app[token.SERVER] = ProviderServer(services)
    router = app.router
    router.add_get("/.well-known/openid-configuration", metadata.openid_configuration)
    router.add_get("/.well-known/oauth-authorization-server", metadata.openid_configuration)
    router.add_get("/oauth2/jwks", metadata.jwks)
    router.add_route("GET", "/oauth2/authorize", authorize.authorize)
    router.add_route("POST", "/oauth2/authorize", authorize.authorize)
    router.add_get("/oauth2/login", authorize.email_page)
    router.add_post("/oauth2/login", authorize.email_submit)
    router.add_get("/oauth2/resume", authorize.resume)
    router.add_post("/oauth2/token", token.token)
    router.add_post("/oauth2/revoke", token.revoke)
    router.add_route("GET", "/oauth2/userinfo", userinfo.userinfo)
    router.add_route("POST", "/oauth2/userinfo", userinfo.userinfo)
    router.add_route("GET", "/oauth2/logout", logout.logout)
    router.add_route("POST", "/oauth2/logout", logout.logout)
