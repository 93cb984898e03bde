"""The Exec-facing REST API (/api/v1): events, organizations and policy, the directory,
Exec's own webhook endpoint; and the webhook delivery worker (webhook_worker).

`setup(app)` registers the routes; `ROUTES` is the one list of them, which the OpenAPI
description (openapi.py) must match exactly (tests/api/test_openapi.py checks it).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from broker.api import directory, events, openapi, organizations, webhook_endpoint

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

PREFIX = "/api/v1"

ROUTES: tuple[tuple[str, str, Handler], ...] = (
    ("GET", "/events", events.list_events),
    ("GET", "/organizations", organizations.list_organizations),
    ("GET", "/organizations/{organization_id}", organizations.get_organization),
    ("GET", "/directories", directory.list_directories),
    ("GET", "/directories/{directory_id}/users", directory.list_users),
    ("GET", "/directories/{directory_id}/groups", directory.list_groups),
    ("GET", "/users/{user_id}", directory.get_user),
    ("GET", "/groups/{group_id}", directory.get_group),
    ("GET", "/webhook_endpoint", webhook_endpoint.show),
    ("GET", "/webhook_endpoint/deliveries", webhook_endpoint.list_deliveries),
    ("POST", "/webhook_endpoint/resend", webhook_endpoint.resend),
)


def setup(app: web.Application) -> None:
    app.router.add_get(PREFIX + "/openapi.json", openapi.serve)
    for method, path, handler in ROUTES:
        app.router.add_route(method, PREFIX + path, handler)
