"""The SCIM 2.0 edge's HTTP side: `/scim/v2/{directory_id}/…` (RFC 7644 §3).

A handler first asks the in-process limiter of authentication failures
(broker.scim.auth_failures) whether this client may reach the store at all (429 if not),
then reads the bearer token, the whole body (with a size limit, before any parsing) and
the query, hands plain data to broker.scim.service on the store thread — one hop per
request — and writes the answer. Every failure, including a body that is too large or a
method we do not know, is a SCIM error document (RFC 7644 §3.12).

Group commit: a request that arrives while this worker's previous SCIM requests are on
the store thread waits for them and then goes with every other request that queued
meanwhile, in one write transaction (broker.scim.service.execute_batch). Each answer
is sent after its transaction commits.
"""

from __future__ import annotations

import asyncio

from aiohttp import web

from broker.scim import errors
from broker.scim.auth_failures import AuthFailureLimiter
from broker.scim.handlers import Outcome, Request
from broker.scim.service import Call, Limits, execute_batch
from broker.web.middlewares import client_addr, request_id
from broker.web.services import SERVICES

PREFIX = "/scim/v2"
MAX_BATCH = 16  # a bound on how long the first request of a batch waits for the last
READ_CHUNK = 256 * 1024


class Batcher:
    """Collects this worker's SCIM calls and runs them on the store thread in batches."""

    def __init__(self, app: web.Application) -> None:
        self.app = app  # services and limits are read per batch (tests swap the limits)
        self.pending: list[tuple[Call, asyncio.Future[Outcome]]] = []
        self.draining = False
        self.task: asyncio.Task[None] | None = None  # held: the loop keeps only weak refs

    async def submit(self, call: Call) -> Outcome:
        future: asyncio.Future[Outcome] = asyncio.get_running_loop().create_future()
        self.pending.append((call, future))
        if not self.draining:
            self.draining = True
            self.task = asyncio.get_running_loop().create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        try:
            while self.pending:
                batch, self.pending = self.pending[:MAX_BATCH], self.pending[MAX_BATCH:]
                services = self.app[SERVICES]
                try:
                    outcomes = await services.run(
                        execute_batch,
                        services.store,
                        services.clock,
                        self.app[LIMITS],
                        [call for call, _ in batch],
                    )
                except Exception as exc:
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(exc)
                    continue
                for (_, future), outcome in zip(batch, outcomes, strict=True):
                    if not future.done():  # the client may have gone away
                        future.set_result(outcome)
        finally:
            self.draining = False


LIMITS: web.AppKey[Limits] = web.AppKey("scim_limits", Limits)
MAX_BODY: web.AppKey[int] = web.AppKey("scim_max_body", int)
BATCHER: web.AppKey[Batcher] = web.AppKey("scim_batcher", Batcher)
AUTH_FAILURES: web.AppKey[AuthFailureLimiter] = web.AppKey("scim_auth_failures", AuthFailureLimiter)


def setup(app: web.Application) -> None:
    settings = app[SERVICES].settings
    app[LIMITS] = Limits(
        max_page_size=settings.get("scim.max_page_size"),
        rate_per_second=float(settings.get("scim.rate_limit_per_second")),
        retention_seconds=settings.get("scim.journal_retention_days") * 86400.0,
    )
    app[MAX_BODY] = settings.get("server.max_body_bytes")
    app[BATCHER] = Batcher(app)
    app[AUTH_FAILURES] = AuthFailureLimiter()
    app.router.add_route("*", PREFIX + "/{directory_id}", handle)
    app.router.add_route("*", PREFIX + "/{directory_id}/{tail:.*}", handle)


def _bearer(request: web.Request) -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


async def read_body(request: web.Request, limit: int) -> bytes:
    """The whole body, up to `limit` bytes, else 413. `content.read(n)` returns what has
    arrived so far (one chunk, often ~200 KB), not n bytes: read until EOF. A declared
    Content-Length over the limit is refused before reading; a chunked or lying body is
    cut off as soon as it passes the limit, so no more than limit + one chunk is held."""
    too_large = errors.ScimError(413, f"The request body is larger than {limit} bytes.")
    if request.content_length is not None and request.content_length > limit:
        raise too_large
    chunks: list[bytes] = []
    size = 0
    while chunk := await request.content.read(READ_CHUNK):
        size += len(chunk)
        if size > limit:
            raise too_large
        chunks.append(chunk)
    return b"".join(chunks)


async def handle(request: web.Request) -> web.StreamResponse:
    services = request.app[SERVICES]
    directory_id = request.match_info["directory_id"]
    token, address = _bearer(request), client_addr(request)
    limiter = request.app[AUTH_FAILURES]
    admission = limiter.admit(directory_id, address, token)
    if admission.retry_after:  # before the body is read and before any store access
        return errors.error_response(
            errors.ScimError(
                429,
                "Too many failed authentication attempts; retry later.",
                headers={"Retry-After": str(admission.retry_after)},
            )
        )
    try:
        body = b""
        if request.method in ("POST", "PUT", "PATCH"):
            body = await read_body(request, request.app[MAX_BODY])
    except errors.ScimError as exc:
        limiter.release(directory_id, address, admission)
        return errors.error_response(exc)
    base_url = f"{services.settings.public_url.rstrip('/')}{PREFIX}/{directory_id}"
    call = Call(
        directory_id=directory_id,
        token=token,
        request=Request(
            method=request.method,
            path="/" + request.match_info.get("tail", ""),
            query=request.query,
            body=body,
            base_url=base_url,
            if_match=request.headers.get("If-Match"),
            query_string=request.query_string,
        ),
        user_agent=request.headers.get("User-Agent"),
        remote_addr=address,
        request_id=request_id(request),
    )
    try:
        outcome = await request.app[BATCHER].submit(call)
    except Exception:  # answered 500 by the shared middleware: no authentication failure
        limiter.release(directory_id, address, admission)
        raise
    if call.directory is not None:
        limiter.authenticated(directory_id, address, token, admission)
    elif outcome.status == 401:
        limiter.refused(directory_id, token)  # its tokens stay taken: a failure
    else:
        limiter.release(directory_id, address, admission)
    if outcome.body is None:
        return web.Response(status=outcome.status, headers=outcome.headers)
    return web.Response(
        status=outcome.status,
        body=outcome.body,
        headers=outcome.headers,
        content_type=errors.SCIM_JSON,
    )
