"""One SCIM request, start to end, on the store thread (RFC 7644 §3).

Authentication, throttling, the operation and the journal entry share one write
transaction (one BEGIN IMMEDIATE per request keeps the throughput up and makes the
token bucket exact across workers). When the operation fails, that transaction rolls
back (no data, no events) and a second one records the failure in the journal.

Writers of every worker queue for that transaction, so what needs no store runs
outside it: parsing and normalising the body and redacting it for the journal before,
serialising the answer after.
"""

from __future__ import annotations

import json
import logging
import math
import time
from dataclasses import dataclass, field
from typing import Any

from broker.clock import Clock
from broker.core import directories
from broker.core.directory_types import Directory
from broker.core.ports import Store
from broker.core.provisioning import PreconditionFailed
from broker.errors import AlreadyExists, InvalidInput, NotFound, StoreUnavailable
from broker.scim import errors, journal
from broker.scim.errors import ScimError
from broker.scim.handlers import Outcome, Request, prepare, route

log = logging.getLogger("broker.scim")


@dataclass(frozen=True)
class Limits:
    max_page_size: int
    rate_per_second: float
    retention_seconds: float


@dataclass
class Call:
    """What the HTTP layer hands over: plain data, no aiohttp objects."""

    directory_id: str
    token: str | None
    request: Request
    user_agent: str | None = None
    remote_addr: str | None = None
    request_id: str | None = None
    started: float = field(default_factory=time.perf_counter)
    journal_body: str | None = None  # the request body, redacted (set by execute)
    directory: Directory | None = None  # once authenticated


_last_purge = 0.0


def execute(store: Store, clock: Clock, limits: Limits, call: Call) -> Outcome:
    # Writers of several workers queue on the store's flock (broker/storage/db.py).
    _prepare(call)
    now = clock.now()
    try:
        with store.transaction():
            outcome = _attempt(store, clock, limits, call, now)
        return outcome.render()
    except StoreUnavailable as exc:
        return _unavailable(call, exc)
    except Exception as exc:
        outcome = _failure_of(call, exc)
    if call.directory is not None or outcome.status == 401:
        try:
            with store.transaction():
                _record(store, call.directory, call, outcome, now)
        except StoreUnavailable:
            pass
    return outcome


def execute_batch(store: Store, clock: Clock, limits: Limits, calls: list[Call]) -> list[Outcome]:
    """Group commit: the requests that queued up while the store was busy, in one write
    transaction (one lock turn, one COMMIT, shared pages written once). Answers go out
    only after that commit. If any request fails, the whole transaction rolls back and
    each request runs again on its own (execute), so that a failure never undoes or
    changes another request's outcome."""
    if len(calls) == 1:
        return [execute(store, clock, limits, calls[0])]
    for call in calls:
        _prepare(call)
    try:
        with store.transaction():
            outcomes = [_attempt(store, clock, limits, call, clock.now()) for call in calls]
        return [outcome.render() for outcome in outcomes]
    except StoreUnavailable as exc:
        return [_unavailable(call, exc) for call in calls]
    except Exception as exc:  # found again, answered and journaled by execute below
        log.debug("batch of %d rolled back: %r", len(calls), exc)
    for call in calls:
        call.directory = None
        call.request.memo.clear()  # computed again from the body, as on a first run
    return [execute(store, clock, limits, call) for call in calls]


def _prepare(call: Call) -> None:
    """What needs no store, before the write lock: the journal's copy of the body and the
    parsed body."""
    if call.journal_body is None:
        call.journal_body = journal.redacted_body(call.request.body)
    prepare(call.request)


def _attempt(store: Store, clock: Clock, limits: Limits, call: Call, now: float) -> Outcome:
    """One request inside the caller's write transaction; raises on any failure."""
    directory = call.directory = _authenticate(store, call, now)
    wait = directories.throttle(store, directory.id, now, limits.rate_per_second)
    if wait > 0:
        raise ScimError(
            429,
            "Too many requests for this directory; retry later.",
            headers={"Retry-After": str(max(1, math.ceil(wait)))},
        )
    outcome = route(store, clock, directory, call.request, limits.max_page_size)
    _record(store, directory, call, outcome, now)
    _purge(store, now, limits.retention_seconds)
    return outcome


def _failure_of(call: Call, exc: Exception) -> Outcome:
    if isinstance(exc, ScimError):
        return _failure(exc)
    if isinstance(exc, NotFound):
        return _failure(errors.not_found(exc.public))
    if isinstance(exc, AlreadyExists):
        return _failure(errors.uniqueness(exc.public))
    if isinstance(exc, PreconditionFailed):
        return _failure(ScimError(412, exc.public))
    if isinstance(exc, InvalidInput):
        return _failure(errors.invalid_value(exc.public))
    log.error("SCIM request failed", exc_info=exc, extra={"request_id": call.request_id})
    return _failure(
        ScimError(
            500,
            "Something went wrong on our side; the change "
            f"was not made (request id {call.request_id}).",
        )
    )


def _unavailable(call: Call, exc: StoreUnavailable) -> Outcome:
    log.error("store unavailable", extra={"request_id": call.request_id, "detail": exc.detail})
    return _failure(
        ScimError(503, "The service is temporarily unavailable.", headers={"Retry-After": "5"})
    )


def _authenticate(store: Store, call: Call, now: float) -> Directory:
    try:
        return directories.authenticate(store, call.directory_id, call.token, now)
    except NotFound:
        raise errors.unauthorized() from None


def _failure(exc: ScimError) -> Outcome:
    return Outcome(
        exc.status,
        json.dumps(exc.body(), separators=(",", ":")).encode(),
        dict(exc.headers),
        {"error": exc.scim_type or exc.status, "detail": exc.detail},
    )


def _record(
    store: Store, directory: Directory | None, call: Call, outcome: Outcome, now: float
) -> None:
    if directory is None:
        try:
            known = store.directories.get(call.directory_id)
        except NotFound:
            return  # unknown directory: nothing to attach the entry to
        directory_id, org_id = known.id, known.organization_id
    else:
        directory_id, org_id = directory.id, directory.organization_id
    req = call.request
    path = req.path + (f"?{req.query_string}" if req.query_string else "")
    # Anyone can send a 401: keep what an admin needs to spot a misconfigured IdP or a
    # probe (method, path, status, address), never what the sender chose to make large
    # (body, User-Agent, a long query). The edge throttles them (scim.auth_failures).
    kept = outcome.status != 401
    store.scim_journal.append(
        journal.entry(
            directory_id=directory_id,
            organization_id=org_id,
            at=now,
            method=req.method,
            path=path if kept else path[: journal.MAX_UNAUTHENTICATED_PATH],
            status=outcome.status,
            request_body=call.journal_body if kept else None,
            response_body=outcome.body if kept else None,
            change=outcome.change if kept else {},
            user_agent=call.user_agent if kept else None,
            remote_addr=call.remote_addr,
            request_id=call.request_id,
            ms=(time.perf_counter() - call.started) * 1000,
        )
    )


def _purge(store: Store, now: float, retention_seconds: float) -> None:
    """Retention, at most once an hour per process, inside a request's transaction."""
    global _last_purge
    if now - _last_purge < 3600:
        return
    _last_purge = now
    store.scim_journal.purge_before(now - retention_seconds)


def outcome_json(outcome: Outcome) -> Any:
    return json.loads(outcome.body) if outcome.body else None
