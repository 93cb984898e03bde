"""The setup UI at /admin (issue 8): a sub-application with its own guard.

Every page module adds its routes here; broker.admin.security.guard runs before each
handler (session, idle timeout, CSRF). Listed in broker.app.EDGE_MODULES.
"""

from __future__ import annotations

from aiohttp import web

from broker.admin import (
    auth,
    clients,
    connection_idp,
    connections,
    domains,
    dsync,
    network,
    orgs,
    security,
    sso,
    test_result,
)
from broker.admin.page import FEATURES
from broker.core import connection_tools
from broker.web.render import ENV_KEY

PAGE_MODULES = (
    auth,
    orgs,
    domains,
    sso,
    clients,
    connections,
    connection_idp,
    test_result,
    dsync,
    network,
)


def build() -> web.Application:
    admin = web.Application(middlewares=[security.guard])
    for module in PAGE_MODULES:
        module.add_routes(admin)
    admin[FEATURES] = {
        "connections": connection_tools.saml_tools() is not None,
        "directory": True,
    }
    return admin


def setup(app: web.Application) -> None:
    admin = build()
    if ENV_KEY in app:
        admin[ENV_KEY] = app[ENV_KEY]  # one template environment (and cache) for all
    app.add_subapp("/admin", admin)
