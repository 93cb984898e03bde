"""Exec's view of its own webhook endpoint: state, delivery log, manual re-send.

The CLI twins are `exec-broker webhook show|deliveries|resend` (broker/cli/webhooks.py).
A client only ever sees its own endpoint: the caller is the endpoint.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from broker.api.auth import api_route, services_of
from broker.api.respond import limit_param, page
from broker.clock import iso
from broker.core import audit, webhooks
from broker.core.api_access import ApiCaller
from broker.core.ports import WebhookDelivery
from broker.errors import InvalidInput
from broker.web.middlewares import client_addr, request_id


def delivery_json(d: WebhookDelivery) -> dict[str, Any]:
    return {
        "object": "webhook_delivery",
        "id": d.id,
        "event_id": d.event_id,
        "event_type": d.event_type,
        "kind": d.kind,
        "status": d.status,
        "attempt": d.attempt,
        "url": d.url,
        "http_status": d.http_status,
        "latency_ms": d.latency_ms,
        "response_excerpt": d.response_excerpt,
        "error": d.error,
        "created_at": iso(d.created_at),
        "finished_at": iso(d.finished_at) if d.finished_at else None,
    }


@api_route
async def show(request: web.Request, caller: ApiCaller) -> web.Response:
    services = services_of(request)
    return web.json_response(
        await services.run(webhooks.endpoint, services.store, caller.client_id)
    )


@api_route
async def list_deliveries(request: web.Request, caller: ApiCaller) -> web.Response:
    services = services_of(request)
    limit = limit_param(request, 50)
    found = await services.run(webhooks.deliveries, services.store, caller.client_id, limit)
    return web.json_response(page([delivery_json(d) for d in found], None, False))


@api_route
async def resend(request: web.Request, caller: ApiCaller) -> web.Response:
    services = services_of(request)
    try:
        body = await request.json()
    except ValueError:
        raise InvalidInput('the body must be JSON: {"event_id": "evt_..."}') from None
    event_id = body.get("event_id") if isinstance(body, dict) else None
    if not isinstance(event_id, str) or not event_id:
        raise InvalidInput("event_id is required")
    actor = audit.Actor(f"client:{caller.client_id}", client_addr(request), request_id(request))
    delivery = await services.run(
        webhooks.resend, services.store, services.clock, actor, caller.client_id, event_id
    )
    return web.json_response(delivery_json(delivery), status=202)
