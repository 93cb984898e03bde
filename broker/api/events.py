"""GET /api/v1/events: the change feed, in commit order, after an opaque cursor.

No event is skipped or repeated across pages: seq order is commit order (storage/events.py)
and the page and the snapshot's head come from one statement. When a page comes back
short, `next_cursor` jumps to that head (every later row is newer than the snapshot),
so that filtered polls do not rescan rows that will never match.
"""

from __future__ import annotations

from aiohttp import web

from broker.api.auth import api_route, query_list, services_of
from broker.api.respond import decode_cursor, encode_cursor, limit_param, page
from broker.core import api_access, webhooks
from broker.core.api_access import ApiCaller
from broker.core.events import EVENT_TYPES
from broker.errors import InvalidInput


@api_route
async def list_events(request: web.Request, caller: ApiCaller) -> web.Response:
    services = services_of(request)
    after = decode_cursor(request.query.get("after"))
    limit = limit_param(request)
    types = query_list(request, "types")
    unknown = [t for t in types if t not in EVENT_TYPES]
    if unknown:
        raise InvalidInput(f"unknown event type {unknown[0][:80]!r}")
    org_id = request.query.get("organization_id")
    orgs = (
        [api_access.require_organization(caller, org_id)]
        if org_id
        else sorted(caller.organization_ids)
    )
    found, head = await services.run(services.store.webhooks.event_page, after, limit, types, orgs)
    full = len(found) == limit
    last = found[-1].seq if found else after
    next_seq = last if full else max(after, last, head)
    data = [{**webhooks.message(e), "cursor": encode_cursor(e.seq)} for e in found]
    return web.json_response(page(data, encode_cursor(next_seq), full))
