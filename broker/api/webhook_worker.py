"""The webhook delivery worker: one per process, safe to run in every worker at once.

Every `webhooks.poll_interval_ms` it looks for endpoints with work due; for each it takes
the endpoint's lease in the store (one worker across all processes) and drains it on a
task of its own, one HTTP request at a time, in seq order (core.webhooks has the rules).
A slow or dead endpoint therefore delays only itself. Requests: aiohttp, a total timeout,
redirects never followed (a 3xx is a failure: the URL is what the admin configured),
the first 500 bytes of the answer kept for the delivery log. Hourly, events and
delivery logs older than `events.retention_days` are purged.
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

import aiohttp

from broker.core import webhooks
from broker.core.webhooks import Outcome, RetryPolicy, Work
from broker.web.services import Services

log = logging.getLogger("broker.webhooks")

BATCH = 100
PURGE_EVERY_SECONDS = 3600.0
# Successful deliveries are acknowledged (cursor + log) at most this long after they
# happen, in one transaction; a crash in between re-sends them (receivers de-duplicate).
ACK_EVERY_SECONDS = 0.1
USER_AGENT = "exec-identity-broker-webhooks/1"


class WebhookWorker:
    def __init__(self, services: Services) -> None:
        self.services = services
        settings = services.settings
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"
        self.poll = settings.get("webhooks.poll_interval_ms") / 1000
        self.timeout = aiohttp.ClientTimeout(total=settings.get("webhooks.timeout_seconds"))
        self.policy = RetryPolicy(
            base_seconds=settings.get("webhooks.retry_base_ms") / 1000,
            max_seconds=settings.get("webhooks.retry_max_seconds"),
            failing_after_seconds=settings.get("webhooks.failing_after_seconds"),
        )
        self.retention_days = settings.get("events.retention_days")
        self.active: dict[str, asyncio.Task[None]] = {}
        self.rand = random.SystemRandom().random
        self._last_purge = 0.0

    async def run(self) -> None:
        connector = aiohttp.TCPConnector(limit_per_host=4)
        async with aiohttp.ClientSession(
            connector=connector, timeout=self.timeout, headers={"User-Agent": USER_AGENT}
        ) as session:
            try:
                while True:
                    try:
                        await self.tick(session)
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

    async def tick(self, session: aiohttp.ClientSession) -> None:
        s = self.services
        now = s.clock.now()
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
                task = asyncio.create_task(
                    self.drain(session, client_id), name=f"webhook:{client_id}"
                )
                self.active[client_id] = task
                task.add_done_callback(functools.partial(self._finished, client_id))

    def _finished(self, client_id: str, _task: asyncio.Task[None]) -> None:
        self.active.pop(client_id, None)

    async def drain(self, session: aiohttp.ClientSession, client_id: str) -> None:
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
                    outcome = await self.send(session, work)
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

    async def send(self, session: aiohttp.ClientSession, work: Work) -> Outcome:
        secret = self.services.secret_box.decrypt(work.secret_enc, webhooks.SECRET_CONTEXT)
        body = json.dumps(webhooks.message(work.event), separators=(",", ":")).encode()
        headers = webhooks.headers(secret, work.event.id, int(time.time()), body)
        started = time.perf_counter()
        try:
            async with session.post(
                work.url, data=body, headers=headers, allow_redirects=False
            ) as response:
                excerpt = await response.content.read(webhooks.EXCERPT_BYTES)
                ms = (time.perf_counter() - started) * 1000
                ok = 200 <= response.status < 300
                return Outcome(
                    ok,
                    response.status,
                    round(ms, 2),
                    excerpt.decode("utf-8", "replace"),
                    None if ok else f"HTTP {response.status}",
                )
        except TimeoutError:
            return self._failed(started, "timed out")
        except aiohttp.ClientError as exc:
            return self._failed(started, f"{type(exc).__name__}: {exc}"[:300])

    @staticmethod
    def _failed(started: float, error: str) -> Outcome:
        return Outcome(False, None, round((time.perf_counter() - started) * 1000, 2), "", error)


async def run(services: Services) -> None:
    """Entry point listed in broker.app.BACKGROUND_MODULES."""
    await WebhookWorker(services).run()
