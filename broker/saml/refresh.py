"""Background refresh of IdP metadata URLs, and the purge of the SAML replay cache.

Started once per worker (broker.app BACKGROUND_MODULES). Connections whose metadata came
from a URL are re-fetched every `saml.metadata_refresh_seconds`; a lease in the store makes
sure one worker at a time refreshes a given connection. A refreshed document that brings a
new signing certificate (the IdP's key rollover: it publishes old and new side by side)
takes effect at once for every worker, with no restart. A failed fetch keeps the old
certificates, records the error for the admin and retries with backoff.

Fetches go through broker.saml.fetch (SSRF-safe); private addresses only for hosts on the
allow-list (the `network.private_hosts_allowlist` setting plus the admin-managed list in
the store, `exec-broker network allow-host`).
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from dataclasses import dataclass

from broker.core import audit
from broker.core import connections as core_connections
from broker.errors import BrokerError
from broker.ids import new_token
from broker.saml import idp_settings
from broker.web.services import Services

log = logging.getLogger("broker.saml.refresh")

POLL_SECONDS = 30.0
LEASE_SECONDS = 120.0
RETRY_BASE_SECONDS = 300.0


@dataclass(frozen=True)
class RefreshResult:
    connection_id: str
    ok: bool
    error: str | None = None
    certificates_added: tuple[str, ...] = ()
    certificates_removed: tuple[str, ...] = ()


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{new_token(6)}"


def allowlist(services: Services) -> list[str]:
    configured = list(services.settings.get("network.private_hosts_allowlist"))
    return sorted(set(configured) | set(services.store.network_hosts.list()))


async def refresh_connection(
    services: Services, connection_id: str, owner: str, *, force: bool = False
) -> RefreshResult | None:
    """Refresh one connection if this worker gets the lease (None when another has it)."""
    store, now = services.store, services.clock.now()
    interval = float(services.settings.get("saml.metadata_refresh_seconds"))

    def take() -> bool:
        with store.transaction():
            if force and store.saml.refresh_state(connection_id) is None:
                store.saml.schedule_refresh(connection_id, now)
            return store.saml.take_refresh_lease(connection_id, owner, now, now + LEASE_SECONDS)

    if not await services.run(take):
        return None
    connection = await services.run(store.connections.get, connection_id)
    config = connection.config
    if config.get("metadata_source") != "url" or not config.get("metadata_url"):
        await services.run(store.saml.cancel_refresh, connection_id)
        return None
    try:
        fresh = await idp_settings.from_url(
            str(config["metadata_url"]),
            now,
            allowlist=await services.run(allowlist, services),
            ca_bundle_pem=config.get("ca_bundle_pem"),
            timeout=float(services.settings.get("saml.metadata_timeout_seconds")),
            max_bytes=int(services.settings.get("saml.metadata_max_bytes")),
            entity_id=config.get("idp_entity_id"),
        )
    except BrokerError as exc:
        return await services.run(_failed, services, connection_id, owner, exc, interval)
    before = set(core_connections.fingerprints_of(config))
    after = [str(info["sha256"]) for info in fresh["certificate_info"]]

    def save() -> None:
        with store.transaction():
            core_connections.set_idp_settings(
                store, services.clock, audit.SYSTEM, connection_id, fresh
            )
            store.saml.finish_refresh(
                connection_id, owner, now=now, next_at=now + interval, error=None
            )

    await services.run(save)
    return RefreshResult(
        connection_id,
        True,
        certificates_added=tuple(f for f in after if f not in before),
        certificates_removed=tuple(f for f in before if f not in after),
    )


def _failed(
    services: Services, connection_id: str, owner: str, exc: BrokerError, interval: float
) -> RefreshResult:
    store, now = services.store, services.clock.now()
    state = store.saml.refresh_state(connection_id)
    failures = state.failures if state else 0
    retry = min(interval, RETRY_BASE_SECONDS * 2**failures)
    with store.transaction():
        connection = store.connections.get(connection_id)
        store.saml.finish_refresh(
            connection_id, owner, now=now, next_at=now + retry, error=exc.public
        )
        audit.record(
            store,
            audit.SYSTEM,
            "connection.metadata_refresh_failed",
            now,
            organization_id=connection.organization_id,
            target=connection_id,
            error=exc.public,
            detail=exc.detail,
            retry_in=retry,
        )
    log.warning(
        "metadata refresh failed", extra={"connection_id": connection_id, "error": exc.public}
    )
    return RefreshResult(connection_id, False, error=exc.public)


async def run_once(services: Services, owner: str) -> list[RefreshResult]:
    now = services.clock.now()
    await services.run(services.store.saml.purge_expired, now)
    due = await services.run(services.store.saml.due_refreshes, now, 20)
    results = []
    for connection_id in due:
        result = await refresh_connection(services, connection_id, owner)
        if result is not None:
            results.append(result)
    return results


async def run(services: Services) -> None:
    owner = worker_id()
    while True:
        try:
            await run_once(services, owner)
        except asyncio.CancelledError:
            raise
        except Exception:  # keep the loop alive; the next round retries
            log.exception("SAML background round failed")
        await asyncio.sleep(POLL_SECONDS)
