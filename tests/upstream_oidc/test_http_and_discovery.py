"""The back channel's safety rules and the discovery/JWKS cache, against real servers on
127.0.0.1 (the FakeOidcIdP over TLS, and a tiny plain-HTTP server for odd answers)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiohttp import web

from broker.upstream_oidc.discovery import DiscoveryError, ProviderCache, parse_metadata
from broker.upstream_oidc.http import FetchPolicy, SafeHttp, UpstreamHttpError
from tests.fakes.oidc_idp import FakeOidcIdP

LOOPBACK = frozenset({"127.0.0.1"})


@pytest.fixture
async def odd_server() -> AsyncIterator[str]:
    async def big(request: web.Request) -> web.Response:
        return web.Response(body=b"x" * 5000)

    async def to_http(request: web.Request) -> web.Response:
        return web.Response(status=302, headers={"Location": "http://127.0.0.1:1/x"})

    app = web.Application()
    app.router.add_get("/big", big)
    app.router.add_get("/redirect", to_http)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    await runner.cleanup()


async def _error(http: SafeHttp, url: str, **kw: object) -> UpstreamHttpError:
    with pytest.raises(UpstreamHttpError) as caught:
        await http.request("GET", url, **kw)  # type: ignore[arg-type]
    return caught.value


async def test_policy_refusals(idp: FakeOidcIdP, odd_server: str) -> None:
    ca = idp.ca_pem.decode()
    strict = SafeHttp(FetchPolicy())
    lenient = SafeHttp(
        FetchPolicy(allowlist=LOOPBACK, max_bytes=1000, allow_insecure_loopback=True)
    )
    try:
        # A private address needs the admin's allow-list, even over HTTPS with the right CA.
        assert (await _error(strict, idp.issuer + "/jwks", ca_pem=ca)).kind == "blocked_address"
        strict.extra_allowlist = LOOPBACK  # the run-time (store) allow-list counts too
        assert (await strict.request("GET", idp.issuer + "/jwks", ca_pem=ca)).status == 200
        # Without the IdP's CA the certificate does not verify.
        assert (await _error(strict, idp.issuer + "/jwks")).kind == "tls"
        # Plain HTTP only with the explicit loopback flag.
        assert (await _error(strict, odd_server + "/big")).kind == "bad_url"
        assert (await _error(lenient, odd_server + "/big")).kind == "too_big"
        # Redirects are re-checked hop by hop, and only followed when asked.
        hop = await lenient.request("GET", odd_server + "/redirect")
        assert hop.status == 302
        err = await _error(lenient, "https://user:pw@127.0.0.1/x")
        assert err.kind == "bad_url"
    finally:
        await strict.close()
        await lenient.close()


async def test_timeout_and_down(idp: FakeOidcIdP) -> None:
    http = SafeHttp(FetchPolicy(allowlist=LOOPBACK, timeout=0.5))
    ca = idp.ca_pem.decode()
    try:
        idp.misbehave["hang"] = True
        assert (await _error(http, idp.issuer + "/jwks", ca_pem=ca)).kind == "timeout"
        idp.misbehave.clear()
        await idp.stop()
        assert (await _error(http, idp.issuer + "/jwks", ca_pem=ca)).kind == "connect"
    finally:
        await http.close()


async def test_discovery_cache_and_stale_fallback(idp: FakeOidcIdP) -> None:
    now = [1000.0]
    http = SafeHttp(FetchPolicy(allowlist=LOOPBACK, timeout=2))
    cache = ProviderCache(http, metadata_ttl=60, max_stale=600, monotonic=lambda: now[0])
    ca = idp.ca_pem.decode()
    try:
        meta = await cache.metadata(idp.issuer, ca)
        assert meta.issuer == idp.issuer and meta.token_endpoint == idp.issuer + "/token"
        assert meta.iss_parameter_supported
        await idp.stop()
        assert await cache.metadata(idp.issuer, ca) is meta  # within the TTL: no fetch
        now[0] += 120  # expired; the refresh fails; the last good document still serves
        assert await cache.metadata(idp.issuer, ca) is meta
        now[0] += 1000  # too stale: the failure shows
        with pytest.raises(UpstreamHttpError):
            await cache.metadata(idp.issuer, ca)
    finally:
        await http.close()


async def test_jwks_kid_lookup(idp: FakeOidcIdP) -> None:
    http = SafeHttp(FetchPolicy(allowlist=LOOPBACK))
    cache = ProviderCache(http, jwks_min_refresh=3600)
    ca = idp.ca_pem.decode()
    try:
        meta = await cache.metadata(idp.issuer, ca)
        key = await cache.signing_key(meta, idp.signing_kid, ca)
        assert key.kid == idp.signing_kid
        assert await cache.signing_key(meta, None, ca) is key  # one key: no kid needed
        new_kid = idp.rotate_key()
        # Re-fetches are rate-limited: within jwks_min_refresh an unknown kid stays unknown.
        with pytest.raises(DiscoveryError) as caught:
            await cache.signing_key(meta, new_kid, ca)
        assert caught.value.kind == "unknown_kid"
        fresh = ProviderCache(http, jwks_min_refresh=0)
        meta = await fresh.metadata(idp.issuer, ca)
        assert (await fresh.signing_key(meta, new_kid, ca)).kid == new_kid
        with pytest.raises(DiscoveryError):  # two keys now: a token without kid is refused
            await fresh.signing_key(meta, None, ca)
    finally:
        await http.close()


def test_parse_metadata_rules() -> None:
    doc = {
        "issuer": "https://idp.example.com",
        "authorization_endpoint": "https://idp.example.com/a",
        "token_endpoint": "https://idp.example.com/t",
        "jwks_uri": "https://idp.example.com/k",
    }
    meta = parse_metadata(doc, "https://idp.example.com")
    assert meta.id_token_signing_algs == ("RS256",) and meta.userinfo_endpoint is None
    with pytest.raises(DiscoveryError) as caught:  # exact match: no trailing-slash leniency
        parse_metadata(doc, "https://idp.example.com/")
    assert caught.value.kind == "issuer_mismatch"
    with pytest.raises(DiscoveryError) as caught:
        parse_metadata(
            {**doc, "token_endpoint": "http://idp.example.com/t"}, "https://idp.example.com"
        )
    assert caught.value.kind == "insecure_endpoint"
    with pytest.raises(DiscoveryError) as caught:
        parse_metadata({k: v for k, v in doc.items() if k != "jwks_uri"}, "https://idp.example.com")
    assert caught.value.kind == "incomplete"
