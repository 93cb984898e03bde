"""UserInfo endpoint (OIDC Core §5.3) with bearer tokens (RFC 6750 §2.1, §3.1).

The access token must be one of ours (signature, `typ: at+jwt`, issuer, audience,
expiry) and not revoked (core.grants.access_claims: its jti, grant or session). A bad
or expired token gets 401 with `WWW-Authenticate: Bearer error="invalid_token"`; a
missing one gets the challenge only.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from broker.core import grants
from broker.oidc import tokens
from broker.web.services import SERVICES, Services


def _challenge(error: str | None = None) -> web.Response:
    value = 'Bearer realm="exec-broker"'
    if error:
        value += f', error="{error}", error_description="The access token is not valid."'
    body = {"error": error or "invalid_request"}
    return web.json_response(
        body,
        status=401 if error != "insufficient_scope" else 403,
        headers={"WWW-Authenticate": value, "Cache-Control": "no-store"},
    )


def _claims(services: Services, token: str) -> dict[str, Any] | None:
    now = services.clock.now()
    claims = tokens.verify(
        services.keyring,
        token,
        issuer=services.issuer,
        typ="at+jwt",
        audience=services.issuer + "/oauth2/userinfo",
        now=now,
    )
    if claims is None:
        return None
    return grants.access_claims(services.store, claims, now)


async def userinfo(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return _challenge()
    claims = await services.run(_claims, services, token.strip())
    if claims is None:
        return _challenge("invalid_token")
    return web.json_response(claims, headers={"Cache-Control": "no-store"})
