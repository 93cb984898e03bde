"""The webhook delivery worker: one per process, safe to run in every worker at once.

Every `webhooks.poll_interval_ms` it looks for endpoints with work due; for each it takes
the endpoint's lease in the store (one worker across all processes) and drains it on a
task of its own, one HTTP request at a time, in seq order (core.webhooks has the rules).
A slow or dead endpoint therefore delays only itself.

Requests go through broker.web.safe_http (DESIGN.md §6). The URL is the admin's, but Exec
reads the answer's excerpt back through the deliveries API, so a URL pointing inside the
network must not become a way to read internal services: HTTPS only (plain http to
loopback only with `webhooks.allow_insecure_loopback`), every address vetted and then
pinned for the connection, private/loopback/link-local addresses only for hosts on the
network allow-list (`network.private_hosts_allowlist` plus the admin's list in the store,
re-read every `ALLOWLIST_REFRESH_SECONDS`), one total timeout, redirects never followed
(a 3xx is a failure: the URL is what the admin configured), and at most
`EXCERPT_BYTES + 1` bytes of an answer read: the rest is never read, the connection is
dropped. Hourly, events and delivery logs older than `events.retention_days` are purged.

It must never: let a refused or failed request escape as an exception (it is a failed
attempt in the delivery log, retried with backoff), put a vetted address or any other
private detail in the delivery log (Exec reads it; the process log gets the detail), or
read an answer beyond the excerpt.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import os
import random
import secrets
import socket
import time
from collections.abc import Mapping

from broker.core import webhooks
from broker.core.webhooks import Outcome, RetryPolicy, Work
from broker.web.safe_http import (
    FetchPolicy,
    Resolver,
    SafeHttp,
    SafeHttpError,
)
from broker.web.services import Services

log = logging.getLogger("broker.webhooks")

BATCH = 100
PURGE_EVERY_SECONDS = 3600.0
# Successful deliveries are acknowledged (cursor + log) at most this long after they
# happen, in one transaction; a crash in between re-sends them (receivers de-duplicate).
ACK_EVERY_SECONDS = 0.1
USER_AGENT = "exec-identity-broker-webhooks/1"
# How stale the store's network allow-list may be (an admin's removal takes this long).
ALLOWLIST_REFRESH_SECONDS = 1.0
# One byte past the excerpt: enough to know the answer was longer, never the whole body.
READ_LIMIT = webhooks.EXCERPT_BYTES + 1


class WebhookHttp(SafeHttp):
    """broker.web.safe_http's checks and pinned pools for a webhook POST: raw body, no
    redirects followed, the answer read only as far as `policy.max_bytes`."""

    peer = "the webhook receiver"
    url_name = "The webhook URL"

    async def __aenter__(self) -> WebhookHttp:
        return self

    async def post(self, url: str, body: bytes, headers: Mapping[str, str]) -> tuple[int, bytes]:
        """Return the status and at most `policy.max_bytes` of the answer; raises
        `SafeHttpError` (its kinds)."""
        response = await self.request("POST", url, body=body, headers=headers, truncate=True)
        return response.status, response.body


def delivery_error(exc: SafeHttpError) -> str:
    """The delivery log's text for a refused or failed request: public words only."""
    if exc.kind == "blocked_address":
        return webhooks.BLOCKED_ERROR
    if exc.kind == "timeout":
        return "timed out"
    if exc.kind == "bad_url":
        return f"refused: {exc.public}"
    return f"{exc.kind}: {exc.public}"


class WebhookWorker:
    def __init__(self, services: Services, resolver: Resolver | None = None) -> None:
        self.services = services
        settings = services.settings
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"
        self.poll = settings.get("webhooks.poll_interval_ms") / 1000
        self.fetch_policy = FetchPolicy(
            allowlist=frozenset(settings.get("network.private_hosts_allowlist")),
            timeout=float(settings.get("webhooks.timeout_seconds")),
            max_bytes=READ_LIMIT,
            allow_insecure_loopback=bool(settings.get("webhooks.allow_insecure_loopback")),
        )
        self.resolver = resolver
        self.policy = RetryPolicy(
            base_seconds=settings.get("webhooks.retry_base_ms") / 1000,
            max_seconds=settings.get("webhooks.retry_max_seconds"),
            failing_after_seconds=settings.get("webhooks.failing_after_seconds"),
        )
        self.retention_days = settings.get("events.retention_days")
        self.active: dict[str, asyncio.Task[None]] = {}
        self.rand = random.SystemRandom().random
        self._last_purge = 0.0
        self._allowlist_at = float("-inf")

    async def run(self) -> None:
        async with WebhookHttp(self.fetch_policy, self.resolver) as http:
            try:
                while True:
                    try:
                        await self.tick(http)
                    except asyncio.CancelledError:
                        raise
                    except Exception:
                        log.exception("webhook worker tick failed")
                    await asyncio.sleep(self.poll)
            finally:
                for task in self.active.values():
                    task.cancel()
                for task in list(self.active.values()):
                    with contextlib.suppress(asyncio.CancelledError, Exception):
                        await task

    async def tick(self, http: WebhookHttp) -> None:
        s = self.services
        now = s.clock.now()
        if time.monotonic() - self._allowlist_at >= ALLOWLIST_REFRESH_SECONDS:
            http.extra_allowlist = await s.run(s.store.network_hosts.list)
            self._allowlist_at = time.monotonic()
        if time.monotonic() - self._last_purge > PURGE_EVERY_SECONDS:
            self._last_purge = time.monotonic()
            removed = await s.run(webhooks.purge, s.store, now, self.retention_days)
            if removed:
                log.info("events purged", extra={"count": removed})
        await s.run(webhooks.sync_endpoints, s.store, now)
        for client_id in await s.run(webhooks.due_endpoints, s.store, now):
            if client_id in self.active:
                continue
            if await s.run(webhooks.acquire, s.store, client_id, self.owner, s.clock.now()):
                task = asyncio.create_task(self.drain(http, client_id), name=f"webhook:{client_id}")
                self.active[client_id] = task
                task.add_done_callback(functools.partial(self._finished, client_id))

    def _finished(self, client_id: str, _task: asyncio.Task[None]) -> None:
        self.active.pop(client_id, None)

    async def drain(self, http: WebhookHttp, client_id: str) -> None:
        """Deliver until the endpoint has nothing left, fails, or the lease is lost."""
        s = self.services
        try:
            going = True
            while going:
                batch = await s.run(
                    webhooks.next_work, s.store, client_id, self.owner, s.clock.now(), BATCH
                )
                if not batch:
                    break
                done: list[tuple[Work, Outcome]] = []
                flushed = time.monotonic()
                for work in batch:
                    outcome = await self.send(http, work)
                    done.append((work, outcome))
                    # Acknowledge at once on failure, else in batches (ACK_EVERY_SECONDS).
                    if not outcome.ok or time.monotonic() - flushed >= ACK_EVERY_SECONDS:
                        going = await self.acknowledge(done)
                        done, flushed = [], time.monotonic()
                        if not going:
                            break
                if done:
                    going = await self.acknowledge(done)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("webhook drain failed", extra={"client_id": client_id})
        finally:
            with contextlib.suppress(Exception):
                await asyncio.shield(s.run(webhooks.release, s.store, client_id, self.owner))

    async def acknowledge(self, done: list[tuple[Work, Outcome]]) -> bool:
        s = self.services
        return await s.run(
            webhooks.record_outcomes, s.store, s.clock, done, self.owner, self.policy, self.rand
        )

    async def send(self, http: WebhookHttp, work: Work) -> Outcome:
        """One attempt; whatever happens, an `Outcome` (a refusal is a failed attempt)."""
        started = time.perf_counter()
        try:
            secret = self.services.secret_box.decrypt(work.secret_enc, webhooks.SECRET_CONTEXT)
            body = json.dumps(webhooks.message(work.event), separators=(",", ":")).encode()
            headers = {
                "User-Agent": USER_AGENT,
                **webhooks.headers(secret, work.event.id, int(time.time()), body),
            }
            status, raw = await http.post(work.url, body, headers)
        except SafeHttpError as exc:
            log.warning(
                "webhook delivery failed",
                extra={
                    "client_id": work.client_id,
                    "event_id": work.event.id,
                    "reason": exc.kind,
                    "detail": exc.detail,
                },
            )
            return self._failed(started, delivery_error(exc))
        except Exception:  # a bug must cost one failed attempt, not the endpoint's drain
            log.exception("webhook delivery attempt broke", extra={"client_id": work.client_id})
            return self._failed(started, "internal error: the attempt could not be made")
        ms = (time.perf_counter() - started) * 1000
        ok = 200 <= status < 300
        return Outcome(
            ok, status, round(ms, 2), webhooks.excerpt(raw), None if ok else f"HTTP {status}"
        )

    @staticmethod
    def _failed(started: float, error: str) -> Outcome:
        return Outcome(False, None, round((time.perf_counter() - started) * 1000, 2), "", error)


async def run(services: Services) -> None:
    """Entry point listed in broker.app.BACKGROUND_MODULES."""
    await WebhookWorker(services).run()
