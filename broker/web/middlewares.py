"""Middlewares every request passes: request id + access log, client address, errors, headers.

- The request id comes from a trusted proxy's X-Request-Id or is made here; it is the
  correlation id shown on failure pages and written in the audit log.
- X-Forwarded-For/-Proto are honoured only from `server.trusted_proxies` (DESIGN §7).
- No traceback ever reaches a client: unexpected errors become a 500 page or JSON with
  the correlation id, and the detail goes to the log.
"""

from __future__ import annotations

import ipaddress
import logging
import secrets
import time
from collections.abc import Awaitable, Callable, Sequence

from aiohttp import web

from broker.errors import StoreUnavailable

log = logging.getLogger("broker.http")

REQUEST_ID = web.RequestKey("request_id", str)
CLIENT_ADDR = web.RequestKey("client_addr", str)
SCHEME = web.RequestKey("scheme", str)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def request_id(request: web.Request) -> str:
    return request.get(REQUEST_ID, "-")


def client_addr(request: web.Request) -> str:
    return str(request.get(CLIENT_ADDR) or request.remote or "")


def make_middlewares(
    trusted_proxies: Sequence[str],
) -> list[Callable[..., Awaitable[web.StreamResponse]]]:
    networks = [ipaddress.ip_network(n, strict=False) for n in trusted_proxies]

    def trusted(peer: str | None) -> bool:
        if not peer or not networks:
            return False
        try:
            address = ipaddress.ip_address(peer)
        except ValueError:
            return False
        return any(address in n for n in networks)

    @web.middleware
    async def context(request: web.Request, handler: Handler) -> web.StreamResponse:
        from_proxy = trusted(request.remote)
        rid = request.headers.get("X-Request-Id", "") if from_proxy else ""
        request[REQUEST_ID] = rid[:64] if rid.isprintable() and rid else secrets.token_hex(8)
        addr, scheme = request.remote, request.scheme
        if from_proxy:
            forwarded = request.headers.get("X-Forwarded-For", "")
            if forwarded:
                addr = forwarded.split(",")[-1].strip() or addr
            scheme = request.headers.get("X-Forwarded-Proto", scheme).split(",")[0].strip()
        request[CLIENT_ADDR] = addr or ""
        request[SCHEME] = scheme
        started = time.perf_counter()
        status = 500
        try:
            response = await handler(request)
            status = response.status
            return response
        except web.HTTPException as exc:
            status = exc.status
            raise
        finally:
            log.info(
                "request",
                extra={
                    "request_id": request[REQUEST_ID],
                    "method": request.method,
                    "path": request.path,
                    "status": status,
                    "remote": addr,
                    "ms": round((time.perf_counter() - started) * 1000, 2),
                },
            )

    @web.middleware
    async def errors(request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            return await handler(request)
        except web.HTTPException:
            raise
        except StoreUnavailable as exc:
            log.error(
                "store unavailable", extra={"request_id": request_id(request), "detail": exc.detail}
            )
            return _failure(request, 503, "The service is temporarily unavailable.")
        except Exception:
            log.exception("unhandled error", extra={"request_id": request_id(request)})
            return _failure(request, 500, "Something went wrong on our side.")

    @web.middleware
    async def headers(request: web.Request, handler: Handler) -> web.StreamResponse:
        response = await handler(request)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "no-referrer")
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("X-Request-Id", request_id(request))
        if request.get(SCHEME) == "https":
            response.headers.setdefault("Strict-Transport-Security", "max-age=31536000")
        return response

    return [context, headers, errors]


def _failure(request: web.Request, status: int, message: str) -> web.Response:
    rid = request_id(request)
    accept = request.headers.get("Accept", "")
    if "html" in accept and "json" not in accept:
        from broker.web.render import error_page

        return error_page(request, message, status=status)
    return web.json_response(
        {"error": "server_error", "error_description": message, "correlation_id": rid},
        status=status,
    )
