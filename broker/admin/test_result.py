"""The one page where an admin reads a test login's result (issue 8 §4):
GET /admin/connections/{connection_id}/test?flow=… (core.login.TEST_LOGIN_RESULT_PATH).

Both upstream edges (SAML ACS, OIDC callback) send the browser here when a test login
ends, passed or refused. Signed-in admins only (broker.admin.security.guard): what the IdP
sent is personal data. Shows the received attributes, the profile Exec would get (or why
it would be refused) and, when the test passed, the Activate button.
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from broker.admin.connections import label, tools
from broker.admin.page import Notice, attempt, page
from broker.admin.security import services_of
from broker.core import connections, login
from broker.core.ports import Store
from broker.errors import NotFound


def _view(store: Store, connection_id: str, flow_id: str) -> dict[str, Any]:
    result = login.test_login_result(store, flow_id)
    if result.get("connection_id") != connection_id:
        raise NotFound(f"test login {flow_id} not found")
    connection = store.connections.get(connection_id)
    attempts = connections.recent_attempts(store, connection_id, 5)
    return {
        "result": _listed(result),
        "c": connection,
        "org": store.organizations.get(connection.organization_id),
        "attempts": attempts if connection.type == "saml" else [],
    }


def _listed(result: dict[str, Any]) -> dict[str, Any]:
    """Every attribute as a list of values (SAML sends lists, OIDC claims may be single)."""
    identity = result.get("identity")
    if not isinstance(identity, dict):
        return result
    raw = identity.get("raw_attributes") or {}
    listed = {k: v if isinstance(v, list) else [v] for k, v in raw.items()}
    return {**result, "identity": {**identity, "raw_attributes": listed}}


async def result_page(request: web.Request) -> web.StreamResponse:
    services = services_of(request)
    notices: list[Notice] = []
    view = await attempt(
        services.run(
            _view,
            services.store,
            request.match_info["conn_id"],
            request.query.get("flow", ""),
        ),
        notices,
    )
    if view is None:
        return page(request, "not_found.html", notices=notices, status=404)
    if "json" in request.headers.get("Accept", ""):
        return web.json_response(view["result"], dumps=lambda v: json.dumps(v, default=str))
    tools()
    view["label"] = label(view["c"].type, view["c"].preset)
    return page(request, "test_result.html", view)


def add_routes(app: web.Application) -> None:
    app.router.add_get("/connections/{conn_id}/test", result_page)
