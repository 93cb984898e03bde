"""Token endpoint (RFC 6749 §3.2, §4.1.3, §5, §6) and revocation (RFC 7009 §2).

Authlib validates and answers; this handler only adapts. Client-authentication
failures are 401 with `WWW-Authenticate` (RFC 6749 §5.2), every answer is
`Cache-Control: no-store` (§5.1).
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from broker.oidc.adapter import oauth2_request, to_response
from broker.oidc.server import ProviderServer, actor_for
from broker.web.middlewares import client_addr, request_id
from broker.web.services import SERVICES

SERVER: web.AppKey[ProviderServer] = web.AppKey("oidc_server", ProviderServer)


def _finish(status: int, body: Any, headers: list[tuple[str, str]]) -> web.Response:
    if isinstance(body, dict) and body.get("error") == "invalid_client":
        status = 401
        if not any(name.lower() == "www-authenticate" for name, _ in headers):
            headers.append(
                ("WWW-Authenticate", 'Basic realm="exec-broker", error="invalid_client"')
            )
    response = to_response(status, body, headers)
    response.headers["Cache-Control"] = "no-store"
    response.headers["Pragma"] = "no-cache"
    return response


async def _prepared(request: web.Request) -> Any:
    services = request.app[SERVICES]
    oauth = await oauth2_request(request, services.issuer)
    oauth.actor = actor_for(client_addr(request), request_id(request))
    return oauth


async def token(request: web.Request) -> web.Response:
    services, server = request.app[SERVICES], request.app[SERVER]
    oauth = await _prepared(request)
    status, body, headers = await services.run(server.create_token_response, oauth)
    return _finish(status, body, headers)


async def revoke(request: web.Request) -> web.Response:
    services, server = request.app[SERVICES], request.app[SERVER]
    oauth = await _prepared(request)
    status, body, headers = await services.run(server.create_endpoint_response, "revocation", oauth)
    return _finish(status, body, headers)
