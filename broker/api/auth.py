"""API authentication: HTTP Basic client credentials or an RFC 9068 access token.

Basic (RFC 6749 §2.3.1: client_id and secret form-encoded, then RFC 7617) is checked by
core.api_access in constant time. A bearer token must be a JWT signed by one of the
broker's own keys (kid looked up in the KeyRing, RS256/ES256 only, `typ` at+jwt per
RFC 9068 §2.1 so that an ID token cannot pass as an access token); core.api_access then
decides on iss, aud, exp, scope and client_id, and core.grants.token_revoked on its jti
(RFC 7009 revocation). Handlers wrapped by `api_route` receive
the authenticated caller and never see credentials.
"""

from __future__ import annotations

import base64
import binascii
import functools
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import unquote_plus

from aiohttp import web
from joserfc import jws, jwt
from joserfc.errors import JoseError

from broker.api.respond import ApiHandler, render_error
from broker.core import api_access, grants
from broker.core.api_access import ApiAuthError, ApiCaller
from broker.errors import BrokerError
from broker.web.services import SERVICES, Services

ACCESS_TOKEN_TYPES = ("at+jwt", "application/at+jwt")


def _basic(value: str) -> tuple[str, str]:
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise ApiAuthError("invalid client credentials", "malformed Basic header") from None
    client_id, sep, secret = decoded.partition(":")
    if not sep or not client_id or not secret:
        raise ApiAuthError("invalid client credentials", "Basic header without id:secret")
    return unquote_plus(client_id), unquote_plus(secret)


def verify_bearer(services: Services, token: str) -> ApiCaller:
    """Runs on the store thread (the KeyRing and the clients table are read)."""
    try:
        header = jws.extract_compact(token.encode()).protected
    except (JoseError, ValueError, TypeError):
        raise ApiAuthError("invalid access token", "not a JWS compact token") from None
    if header.get("typ", "").lower() not in ACCESS_TOKEN_TYPES:
        raise ApiAuthError("invalid access token", f"typ {header.get('typ')!r} is not at+jwt")
    loaded = services.keyring.find(str(header.get("kid", "")))
    if loaded is None or header.get("alg") != loaded.record.alg:
        raise ApiAuthError("invalid access token", "unknown kid or alg mismatch")
    try:
        decoded = jwt.decode(token, loaded.key, algorithms=[loaded.record.alg])
    except (JoseError, ValueError) as exc:
        raise ApiAuthError("invalid access token", f"signature: {exc}") from None
    caller = api_access.authorize_bearer(
        services.store, decoded.claims, services.issuer, services.clock.now()
    )
    # RFC 7009: a token the client revoked is refused at once, not when it expires
    # (one read by its jti per call; every API token we issue has one).
    jti = decoded.claims.get("jti")
    if not isinstance(jti, str) or not jti or grants.token_revoked(services.store, jti):
        raise ApiAuthError("invalid access token", "token revoked or without jti")
    return caller


async def authenticate(request: web.Request) -> ApiCaller:
    services = request.app[SERVICES]
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "basic" and value:
        client_id, secret = _basic(value)
        return await services.run(api_access.authenticate_basic, services.store, client_id, secret)
    if scheme.lower() == "bearer" and value:
        return await services.run(verify_bearer, services, value.strip())
    raise ApiAuthError("authentication required", "no Basic or Bearer credentials")


def api_route(handler: ApiHandler) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """Authenticate, call the handler with the caller, render broker errors as JSON."""

    @functools.wraps(handler)
    async def wrapped(request: web.Request) -> web.StreamResponse:
        try:
            caller = await authenticate(request)
            return await handler(request, caller)
        except BrokerError as exc:
            return render_error(request, exc)

    return wrapped


def services_of(request: web.Request) -> Services:
    return request.app[SERVICES]


def query_list(request: web.Request, name: str) -> list[str]:
    """`?types=a,b` and `?types=a&types=b` alike."""
    values: list[Any] = request.query.getall(name, [])
    return [v.strip() for item in values for v in str(item).split(",") if v.strip()]
