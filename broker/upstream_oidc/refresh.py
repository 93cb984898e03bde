"""Background refresh of upstream OIDC discovery documents and JWKS, in every worker.

Started once per worker (broker.app BACKGROUND_MODULES). Every
`upstream_oidc.discovery_ttl_seconds / 2` (at least MIN_INTERVAL_SECONDS) it re-fetches
the discovery document (OpenID Connect Discovery 1.0 §4) and the JWKS (RFC 7517 §5) of
every active or draft `oidc` connection into this worker's ProviderCache — the very one
the login path reads (the RelyingParty that broker.upstream_oidc.routes.setup puts on
`Services.upstream_oidc`) — so that a login finds them fresh and never waits for, or fails
on, a fetch. A key the IdP rotated in is known before its first token arrives.

A failed refresh keeps the last good copies (ProviderCache.refresh replaces only with good
ones) and records the reason on the connection (core.oidc_connections.
record_discovery_check, which writes only when the outcome changes). The cache is per
worker and holds public data only, so there is no lease: each worker refreshes its own.

It must never: crash the loop (a failing connection or round is logged and retried on the
next round), put response bytes in the recorded error, or fetch outside SafeHttp's rules.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from broker.core import oidc_connections
from broker.core.models import Connection
from broker.upstream_oidc.discovery import DiscoveryError
from broker.upstream_oidc.http import UpstreamHttpError
from broker.upstream_oidc.relying_party import RelyingParty
from broker.web.services import Services

log = logging.getLogger("broker.upstream_oidc.refresh")

MIN_INTERVAL_SECONDS = 60.0
REFRESHED_STATES = frozenset({"active", "draft"})


@dataclass(frozen=True)
class RefreshResult:
    connection_id: str
    issuer: str
    ok: bool
    error: str | None = None
    kids: tuple[str, ...] = ()


def interval(services: Services) -> float:
    """Half the cache's TTL, so that an entry is renewed well before it expires."""
    ttl = float(services.settings.get("upstream_oidc.discovery_ttl_seconds"))
    return max(MIN_INTERVAL_SECONDS, ttl / 2)


def relying_party(services: Services) -> RelyingParty | None:
    rp = services.upstream_oidc
    return rp if isinstance(rp, RelyingParty) else None


def _due(services: Services) -> list[Connection]:
    return [
        c
        for c in services.store.connections.list()
        if c.type == "oidc" and c.state in REFRESHED_STATES and c.config.get("issuer")
    ]


async def refresh_connection(
    services: Services, rp: RelyingParty, connection: Connection
) -> RefreshResult:
    issuer = str(connection.config["issuer"])
    ca_pem = connection.config.get("ca_pem")
    try:
        metadata = await rp.cache.refresh(issuer, ca_pem)
    except (UpstreamHttpError, DiscoveryError) as exc:
        log.warning(
            "discovery refresh failed; the last good copy stays cached",
            extra={"connection_id": connection.id, "issuer": issuer, "detail": exc.detail},
        )
        await services.run(
            oidc_connections.record_discovery_check,
            services.store,
            services.clock,
            connection.id,
            exc.public,
            exc.detail,
        )
        return RefreshResult(connection.id, issuer, False, error=exc.public)
    await services.run(
        oidc_connections.record_discovery_check,
        services.store,
        services.clock,
        connection.id,
        None,
    )
    kids = tuple(sorted(rp.cache.cached_kids(metadata.jwks_uri, ca_pem)))
    return RefreshResult(connection.id, issuer, True, kids=kids)


async def run_once(services: Services) -> list[RefreshResult]:
    """One round over every connection; per-connection failures are results, not raises."""
    rp = relying_party(services)
    if rp is None:  # the upstream OIDC edge is not part of this build
        return []
    await rp.refresh_allowlist()  # the admin's run-time allow-list applies here too
    results = []
    for connection in await services.run(_due, services):
        try:
            results.append(await refresh_connection(services, rp, connection))
        except asyncio.CancelledError:
            raise
        except Exception:  # e.g. the connection was deleted meanwhile; the others go on
            log.exception("discovery refresh of %s failed", connection.id)
    return results


async def run(services: Services, *, every: float | None = None) -> None:
    """Refresh at once (a fresh worker's cache is empty), then every `every` seconds
    (default: interval(services))."""
    period = interval(services) if every is None else every
    while True:
        try:
            await run_once(services)
        except asyncio.CancelledError:
            raise
        except Exception:  # keep the loop alive; the next round retries
            log.exception("upstream OIDC discovery round failed")
        await asyncio.sleep(period)
