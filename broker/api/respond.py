"""What every API handler shares: JSON errors, query parameters, opaque cursors.

Errors have the OAuth-style shape the rest of the broker uses (`error`,
`error_description`, `correlation_id`); the private detail goes to the log only.
Cursors are opaque to Exec (`evc_` + 16 hex digits of the event seq, so they also sort
as text); Exec must only store them and send them back.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from broker.core.api_access import ApiAuthError, ApiCaller
from broker.errors import BrokerError, InvalidInput, NotFound
from broker.web.middlewares import request_id

log = logging.getLogger("broker.api")

CURSOR_PREFIX = "evc_"
MAX_LIMIT = 1000

ApiHandler = Callable[[web.Request, ApiCaller], Awaitable[web.StreamResponse]]


def error(
    request: web.Request,
    status: int,
    code: str,
    description: str,
    headers: dict[str, str] | None = None,
) -> web.Response:
    return web.json_response(
        {"error": code, "error_description": description, "correlation_id": request_id(request)},
        status=status,
        headers=headers,
    )


def render_error(request: web.Request, exc: BrokerError) -> web.Response:
    log.info(
        "api refused",
        extra={"request_id": request_id(request), "code": exc.code, "detail": exc.detail},
    )
    if isinstance(exc, ApiAuthError):
        challenge = 'Basic realm="exec-broker-api", Bearer realm="exec-broker-api"'
        if "token" in exc.public:
            challenge = 'Bearer realm="exec-broker-api", error="invalid_token"'
        return error(request, 401, "unauthorized", exc.public, {"WWW-Authenticate": challenge})
    if isinstance(exc, NotFound):
        return error(request, 404, "not_found", exc.public)
    if isinstance(exc, InvalidInput):
        return error(request, 400, "invalid_request", exc.public)
    return error(request, 409, exc.code, exc.public)


def encode_cursor(seq: int) -> str:
    return f"{CURSOR_PREFIX}{seq:016x}"


def decode_cursor(text: str | None) -> int:
    if text is None:  # absent: from the oldest retained event
        return 0
    body = text[len(CURSOR_PREFIX) :]
    if not text.startswith(CURSOR_PREFIX) or len(body) != 16:
        raise InvalidInput("after must be a cursor returned by this API")
    try:
        return int(body, 16)
    except ValueError:
        raise InvalidInput("after must be a cursor returned by this API") from None


def limit_param(request: web.Request, default: int = 100) -> int:
    text = request.query.get("limit")
    if text is None:
        return default
    if not text.isdigit() or not 1 <= int(text) <= MAX_LIMIT:
        raise InvalidInput(f"limit must be an integer from 1 to {MAX_LIMIT}")
    return int(text)


def page(data: list[Any], next_cursor: str | None, has_more: bool) -> dict[str, Any]:
    return {"object": "list", "data": data, "next_cursor": next_cursor, "has_more": has_more}
