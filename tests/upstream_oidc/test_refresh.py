"""The background discovery/JWKS refresher, against the real app and a real FakeOidcIdP
over TLS: a round warms the very cache logins read (a login then fetches neither the
discovery document nor the JWKS), a rotated key is picked up before its first token, an
IdP that is down leaves the last good copy and the reason on the connection (written once,
not per round), and the loop survives a failing round.

The broker here runs without its background tasks, so each test drives the rounds itself
(`run_once`) and the counts are deterministic."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web

from broker.app import BACKGROUND_MODULES, build_services, make_app
from broker.settings import Settings
from broker.upstream_oidc import refresh
from broker.upstream_oidc.discovery import WELL_KNOWN
from broker.upstream_oidc.relying_party import RelyingParty
from tests.conftest import RunningBroker
from tests.fakes.oidc_idp import FakeOidcIdP
from tests.upstream_oidc.helpers import (
    EXEC_REDIRECT,
    Browser,
    authorize_url,
    make_oidc_tenant,
    pkce,
    query,
)


@pytest.fixture
async def broker(settings: Settings, port: int) -> AsyncIterator[RunningBroker]:
    services = build_services(settings)
    app = make_app(settings, services, background=False)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    try:
        yield RunningBroker(f"http://127.0.0.1:{port}", settings, services, app)
    finally:
        await runner.cleanup()


class BackChannelLog:
    """Records the URL of every back-channel request the relying party makes (a spy on
    its real SafeHttp: the requests still go to the IdP)."""

    def __init__(self, rp: RelyingParty) -> None:
        self.urls: list[str] = []
        real = rp.http.request

        async def request(method: str, url: str, **kw: Any) -> Any:
            self.urls.append(url)
            return await real(method, url, **kw)

        rp.http.request = request  # type: ignore[method-assign]

    def count(self, suffix: str) -> int:
        return sum(1 for url in self.urls if url.endswith(suffix))


def _rp(broker: RunningBroker) -> RelyingParty:
    rp = refresh.relying_party(broker.services)
    assert rp is not None, "routes.setup must put the RelyingParty on Services"
    return rp


async def _login(broker: RunningBroker, idp: FakeOidcIdP, tenant: Any) -> None:
    _, challenge = pkce()
    browser = Browser(idp)
    try:
        hop = await browser.walk(authorize_url(broker.url, tenant, challenge))
    finally:
        await browser.close()
    assert hop.url.startswith(EXEC_REDIRECT) and "code" in query(hop.url), hop


def _config(broker: RunningBroker, connection_id: str) -> dict[str, Any]:
    return dict(broker.store.connections.get(connection_id).config)


def _ca(broker: RunningBroker, tenant: Any) -> str:
    """The CA bundle as the connection stores it (trimmed): the cache's key."""
    return str(_config(broker, tenant.connection_id)["ca_pem"])


def _audits(broker: RunningBroker, connection_id: str, action: str) -> int:
    return sum(
        1 for e in broker.store.audit.list() if e.action == action and e.target == connection_id
    )


def test_registered_and_interval(settings: Settings) -> None:
    assert "broker.upstream_oidc.refresh" in BACKGROUND_MODULES
    services = build_services(settings)
    try:
        assert refresh.interval(services) == 1800  # the default TTL of 3600 s, halved
        short = build_services(settings.with_overrides(upstream_oidc__discovery_ttl_seconds=60))
        assert refresh.interval(short) == refresh.MIN_INTERVAL_SECONDS
        short.store.close()
    finally:
        services.store.close()


async def test_a_round_warms_the_cache_logins_read(broker: RunningBroker, idp: FakeOidcIdP):
    tenant = make_oidc_tenant(broker, idp)
    rp = _rp(broker)
    log = BackChannelLog(rp)
    assert rp.cache.cached_kids(idp.issuer + "/jwks", _ca(broker, tenant)) == []  # cold

    results = await refresh.run_once(broker.services)
    assert [(r.connection_id, r.ok, r.kids) for r in results] == [
        (tenant.connection_id, True, (idp.signing_kid,))
    ]
    assert log.count(WELL_KNOWN) == 1 and log.count("/jwks") == 1

    log.urls.clear()
    await _login(broker, idp, tenant)
    assert log.count(WELL_KNOWN) == 0 and log.count("/jwks") == 0, log.urls
    assert log.count("/token") == 1  # the spy did see the login's back channel
    # A success after no error writes nothing.
    assert "discovery_error" not in _config(broker, tenant.connection_id)


async def test_drafts_refreshed_inactive_skipped(broker: RunningBroker, idp: FakeOidcIdP):
    draft = make_oidc_tenant(broker, idp, state="draft", domain="draft.example", register=False)
    inactive = make_oidc_tenant(broker, idp, state="inactive", domain="off.example", register=False)
    results = await refresh.run_once(broker.services)
    ids = {r.connection_id for r in results}
    assert draft.connection_id in ids and inactive.connection_id not in ids


async def test_a_rotated_key_is_picked_up(broker: RunningBroker, idp: FakeOidcIdP):
    tenant = make_oidc_tenant(broker, idp)
    rp = _rp(broker)
    old_kid = idp.signing_kid
    await refresh.run_once(broker.services)
    new_kid = idp.rotate_key()  # the IdP publishes the new key and signs with it from now
    [result] = await refresh.run_once(broker.services)
    assert result.ok and set(result.kids) == {old_kid, new_kid}

    log = BackChannelLog(rp)
    await _login(broker, idp, tenant)  # the ID token names new_kid
    assert log.count("/jwks") == 0, log.urls  # known already: no re-fetch on the login


async def test_an_idp_down_keeps_the_last_good_copy(broker: RunningBroker, idp: FakeOidcIdP):
    tenant = make_oidc_tenant(broker, idp)
    rp, ca = _rp(broker), _ca(broker, tenant)
    [good] = await refresh.run_once(broker.services)
    metadata = await rp.cache.metadata(idp.issuer, ca)

    await idp.stop()
    [failed] = await refresh.run_once(broker.services)
    assert not failed.ok and failed.error
    assert await rp.cache.metadata(idp.issuer, ca) is metadata  # the last good copy
    assert rp.cache.cached_kids(metadata.jwks_uri, ca) == list(good.kids)
    config = _config(broker, tenant.connection_id)
    assert config["discovery_error"] == failed.error
    checked_at = config["discovery_checked_at"]
    assert _audits(broker, tenant.connection_id, "connection.discovery_failed") == 1

    # The same failure on the next round writes nothing (no write per round).
    await refresh.run_once(broker.services)
    assert _config(broker, tenant.connection_id)["discovery_checked_at"] == checked_at
    assert _audits(broker, tenant.connection_id, "connection.discovery_failed") == 1

    await idp.start()  # back, on the same port: the error is cleared once
    [back] = await refresh.run_once(broker.services)
    assert back.ok
    assert _config(broker, tenant.connection_id)["discovery_error"] is None
    assert _audits(broker, tenant.connection_id, "connection.discovery_recovered") == 1


async def test_a_bad_document_never_replaces_a_good_one(broker: RunningBroker, idp: FakeOidcIdP):
    tenant = make_oidc_tenant(broker, idp)
    rp, ca = _rp(broker), _ca(broker, tenant)
    await refresh.run_once(broker.services)
    metadata = await rp.cache.metadata(idp.issuer, ca)
    idp.misbehave["discovery_issuer"] = "https://evil.example"
    [result] = await refresh.run_once(broker.services)
    assert not result.ok
    assert await rp.cache.metadata(idp.issuer, ca) is metadata
    assert _config(broker, tenant.connection_id)["discovery_error"] == result.error
    idp.misbehave.clear()
    await _login(broker, idp, tenant)  # logins go on with the last good copy


async def test_the_loop_survives_a_failing_round(
    broker: RunningBroker, idp: FakeOidcIdP, monkeypatch: pytest.MonkeyPatch
):
    tenant = make_oidc_tenant(broker, idp)
    rp, ca = _rp(broker), _ca(broker, tenant)
    real_due = refresh._due
    calls = [0]

    def flaky_due(services: Any) -> Any:
        calls[0] += 1
        if calls[0] == 1:
            raise RuntimeError("store unavailable for a moment")
        return real_due(services)

    monkeypatch.setattr(refresh, "_due", flaky_due)
    new_kid = idp.rotate_key()
    task = asyncio.create_task(refresh.run(broker.services, every=0.05))
    try:
        for _ in range(100):
            if new_kid in rp.cache.cached_kids(idp.issuer + "/jwks", ca):
                break
            await asyncio.sleep(0.05)
        assert new_kid in rp.cache.cached_kids(idp.issuer + "/jwks", ca)
        assert calls[0] >= 2 and not task.done()
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
