"""Back-channel logout delivery (OpenID Connect Back-Channel Logout 1.0 §2.5) and the
provider's housekeeping. `run(services)` is a background task of every worker.

The outbox rows are written by core.access in the same transaction that ends a
session; here each due row is leased (so two workers never send the same one), a
logout token is signed for the client and POSTed as `logout_token=` form data. 2xx is
success; anything else retries with backoff and gives up after MAX_ATTEMPTS.
"""

from __future__ import annotations

import asyncio
import logging

import aiohttp

from broker.core.ports import LogoutDelivery
from broker.errors import BrokerError, NotFound
from broker.oidc import tokens
from broker.web.services import Services

log = logging.getLogger("broker.oidc.backchannel")

POLL_SECONDS = 0.5
LEASE_SECONDS = 30
MAX_ATTEMPTS = 10
PURGE_EVERY_SECONDS = 300
FLOW_KEEP_SECONDS = 7 * 86400


def _prepare(services: Services, delivery: LogoutDelivery) -> tuple[str, str] | None:
    """Lease the row and sign its logout token: (uri, token), or None if taken/gone."""
    store, now = services.store, services.clock.now()
    with store.transaction():
        if not store.logout_outbox.claim(delivery.id, now, now + LEASE_SECONDS):
            return None
    try:
        client = store.clients.get(delivery.client_id)
    except NotFound:
        client = None
    if client is None or not client.backchannel_logout_uri:
        with store.transaction():
            store.logout_outbox.retry(
                delivery.id, delivery.attempts + 1, now, "client gone", True, now
            )
        return None
    token = tokens.logout_token(
        services.keyring,
        issuer=services.issuer,
        client_id=client.id,
        alg=client.id_token_signed_response_alg,
        subject=delivery.subject,
        sid=delivery.session_id,
        now=now,
    )
    return client.backchannel_logout_uri, token


def _settle(services: Services, delivery: LogoutDelivery, error: str | None) -> None:
    store, now = services.store, services.clock.now()
    with store.transaction():
        if error is None:
            store.logout_outbox.delivered(delivery.id, now)
            return
        attempts = delivery.attempts + 1
        store.logout_outbox.retry(
            delivery.id,
            attempts,
            now + min(5 * 2**attempts, 3600),
            error,
            attempts >= MAX_ATTEMPTS,
            now,
        )
    log.warning(
        "back-channel logout failed",
        extra={
            "client_id": delivery.client_id,
            "sid": delivery.session_id,
            "attempt": attempts,
            "error": error,
        },
    )


async def deliver(
    services: Services, http: aiohttp.ClientSession, delivery: LogoutDelivery
) -> None:
    prepared = await services.run(_prepare, services, delivery)
    if prepared is None:
        return
    uri, token = prepared
    error: str | None = None
    try:
        async with http.post(uri, data={"logout_token": token}, allow_redirects=False) as resp:
            if not 200 <= resp.status < 300:
                error = f"HTTP {resp.status}"
    except (TimeoutError, aiohttp.ClientError) as exc:
        error = f"{type(exc).__name__}: {exc}"
    await services.run(_settle, services, delivery, error)


def _purge(services: Services) -> None:
    store, now = services.store, services.clock.now()
    with store.transaction():
        store.grants.purge_expired(now)
        store.flows.purge_expired(now, FLOW_KEEP_SECONDS)


async def run_once(services: Services, http: aiohttp.ClientSession) -> int:
    due = await services.run(services.store.logout_outbox.due, services.clock.now(), 20)
    for delivery in due:
        await deliver(services, http, delivery)
    return len(due)


async def run(services: Services) -> None:
    timeout = aiohttp.ClientTimeout(total=10)
    last_purge = 0.0
    async with aiohttp.ClientSession(timeout=timeout) as http:
        while True:
            try:
                await run_once(services, http)
                now = services.clock.now()
                if now - last_purge > PURGE_EVERY_SECONDS:
                    await services.run(_purge, services)
                    last_purge = now
            except BrokerError as exc:  # store busy or gone: try again later
                log.warning("back-channel logout loop", extra={"detail": exc.detail})
            await asyncio.sleep(POLL_SECONDS)
