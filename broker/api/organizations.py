"""GET /api/v1/organizations[/{id}]: the organizations a client serves, with policy.

The body is core.organizations.describe, the same object `organization.*` events carry:
domains with their verification state, connections (type, state), `sso_enabled`,
`directory_sync_enabled`, `default_seat`.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from broker.api.auth import api_route, services_of
from broker.api.respond import page
from broker.core import api_access
from broker.core.api_access import ApiCaller
from broker.core.organizations import describe
from broker.core.ports import Store


def _describe_all(store: Store, org_ids: list[str]) -> list[dict[str, Any]]:
    return [describe(store, store.organizations.get(org_id)) for org_id in org_ids]


def _describe_one(store: Store, org_id: str) -> dict[str, Any]:
    return describe(store, store.organizations.get(org_id))


@api_route
async def list_organizations(request: web.Request, caller: ApiCaller) -> web.Response:
    services = services_of(request)
    found = await services.run(_describe_all, services.store, sorted(caller.organization_ids))
    return web.json_response(page(found, None, False))


@api_route
async def get_organization(request: web.Request, caller: ApiCaller) -> web.Response:
    services = services_of(request)
    org_id = api_access.require_organization(caller, request.match_info["organization_id"])
    return web.json_response(await services.run(_describe_one, services.store, org_id))
