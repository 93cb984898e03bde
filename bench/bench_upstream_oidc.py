"""Upstream OIDC login throughput: Exec's authorize request → broker → the customer's OIDC
IdP (tests/fakes/oidc_idp.FakeOidcIdP over TLS with its own CA) → broker callback → code
at Exec's redirect URI, with `exec-broker serve` at 1 and 2 workers; then one login
profiled in process: the time of each browser hop and, inside the callback, of the
token exchange (an IdP round trip), ID token verification (JWKS cached), and the core's
store work (flow, policy, session, code).

Run: .venv/bin/python bench/bench_upstream_oidc.py [--logins 600] [--concurrency 32]
Each login is a fresh browser (cookie jar) making four requests: /oauth2/authorize,
/oidc/{c}/start, the IdP's /authorize, /oidc/{c}/callback; the callback makes the
broker's back-channel token request. The IdP and the load generator run in this process
on the same machine, so they take their share of the CPU.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import statistics
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import aiohttp
from yarl import URL

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.common import Home, broker_home, serve
from tests.fakes.oidc_idp import FakeOidcIdP

EXEC_REDIRECT = "https://exec.test/cb"
VERIFIER = "bench-verifier-" + "x" * 40


def prepare(home: Home, idp: FakeOidcIdP) -> tuple[str, str]:
    """A tenant with a verified domain, an active OIDC connection to the fake IdP, SSO on,
    and Exec's client; returns (client_id, connection_id)."""
    from broker.clock import SystemClock
    from broker.core import audit, clients, oidc_connections, organizations
    from broker.core.models import Domain
    from broker.crypto.secrets import SecretBox
    from broker.ids import new_id

    store, clock = home.store, SystemClock()
    org = organizations.create_organization(store, clock, audit.CLI, "Bench")
    now = clock.now()
    with store.transaction():
        store.domains.create(
            Domain(
                id=new_id("dom"),
                organization_id=org.id,
                domain="example.com",
                state="verified",
                verification_token="t",
                created_at=now,
                verified_at=now,
            )
        )
        store.organizations.update(org.id, sso_enabled=True)
    box = SecretBox.load(home.settings.certs_dir)
    conn = oidc_connections.create_oidc_connection(
        store,
        clock,
        audit.CLI,
        oidc_connections.OidcConnectionInput(
            organization_id=org.id,
            preset="okta",
            issuer=idp.issuer,
            client_id="broker",
            client_secret="bench-secret",
            ca_pem=idp.ca_pem.decode(),
        ),
        seal=box.encrypt,
    )
    with store.transaction():
        store.connections.update(conn.id, state="active", tested_at=now)
    idp.register_client("broker", "bench-secret", [f"{home.url}/oidc/{conn.id}/callback"])
    client, _, _ = clients.create_client(
        store, clock, audit.CLI, name="Exec", redirect_uris=[EXEC_REDIRECT]
    )
    return client.id, conn.id


def authorize_url(base: str, client_id: str) -> str:
    challenge = base64.urlsafe_b64encode(hashlib.sha256(VERIFIER.encode()).digest())
    return f"{base}/oauth2/authorize?" + urlencode(
        {
            "response_type": "code",
            "client_id": client_id,
            "redirect_uri": EXEC_REDIRECT,
            "scope": "openid email profile",
            "state": "s",
            "nonce": "n",
            "code_challenge": challenge.rstrip(b"=").decode(),
            "code_challenge_method": "S256",
            "login_hint": "ada@example.com",
        }
    )


async def one_login(
    url: str, ssl_ctx: Any, connector: aiohttp.BaseConnector, hops: list[float] | None = None
) -> bool:
    """A browser: fresh cookie jar, redirects followed by hand until Exec's URI."""
    async with aiohttp.ClientSession(
        cookie_jar=aiohttp.CookieJar(unsafe=True), connector=connector, connector_owner=False
    ) as http:
        for _ in range(8):
            started = time.perf_counter()
            async with http.get(url, allow_redirects=False, ssl=ssl_ctx) as resp:
                await resp.read()
                location = resp.headers.get("Location")
            if hops is not None:
                hops.append(time.perf_counter() - started)
            if location is None:
                return False
            url = str(URL(url).join(URL(location)))
            if url.startswith(EXEC_REDIRECT):
                return "code=" in url
    return False


async def load(url: str, idp: FakeOidcIdP, logins: int, concurrency: int) -> tuple[int, float]:
    ssl_ctx = idp.client_ssl_context()
    connector = aiohttp.TCPConnector(limit=concurrency * 2)
    queue = iter(range(logins))
    ok = 0

    async def worker() -> None:
        nonlocal ok
        for _ in queue:
            succeeded = await one_login(url, ssl_ctx, connector)  # not `ok += await`: racy
            ok += succeeded

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    await connector.close()
    return ok, elapsed


async def profile(home: Home, idp: FakeOidcIdP, client_id: str, rounds: int) -> None:
    """The broker in this process, so that the callback's own timings can be read."""
    from aiohttp import web

    from broker.app import build_services, make_app
    from broker.upstream_oidc.routes import RELYING_PARTY

    # The child processes get the allow-list from the environment; this process from here.
    settings = home.settings.with_overrides(network__private_hosts_allowlist=("127.0.0.1",))
    services = build_services(settings)
    app = make_app(settings, services, background=False)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", home.port).start()
    rp = app[RELYING_PARTY]
    names = ["authorize (broker)", "start (broker)", "IdP /authorize", "callback (broker)"]
    hop_samples: list[list[float]] = [[] for _ in names]
    phases: dict[str, list[float]] = {}
    ssl_ctx = idp.client_ssl_context()
    connector = aiohttp.TCPConnector()
    try:
        await one_login(authorize_url(home.url, client_id), ssl_ctx, connector)  # warm caches
        for _ in range(rounds):
            hops: list[float] = []
            assert await one_login(authorize_url(home.url, client_id), ssl_ctx, connector, hops)
            for i, value in enumerate(hops[: len(names)]):
                hop_samples[i].append(value)
            for name, value in rp.last_timings.items():
                phases.setdefault(name, []).append(value)
    finally:
        await connector.close()
        await runner.cleanup()
    print(f"profile of one login, median of {rounds} (in process, keep-alive):")
    for name, samples in zip(names, hop_samples, strict=True):
        print(f"  hop {name:<22} {statistics.median(samples) * 1000:7.2f} ms")
    for name in ("load_flow", "token_exchange", "id_token", "userinfo", "core", "total"):
        if name in phases:
            print(f"    callback: {name:<18} {statistics.median(phases[name]) * 1000:7.2f} ms")


async def main_async(args: argparse.Namespace) -> None:
    env = {"BROKER_NETWORK_PRIVATE_HOSTS_ALLOWLIST": "127.0.0.1"}
    async with FakeOidcIdP(tls=True, code_ttl=600) as idp:
        with broker_home(**env) as home:
            client_id, _ = prepare(home, idp)
            await profile(home, idp, client_id, args.profile_rounds)
            for workers in (1, 2):
                with serve(home, workers=workers):
                    url = authorize_url(home.url, client_id)
                    await load(url, idp, min(50, args.logins), args.concurrency)  # warm-up
                    ok, seconds = await load(url, idp, args.logins, args.concurrency)
                    print(
                        f"workers={workers}: {ok / seconds:7.1f} logins/s "
                        f"({ok}/{args.logins} ok in {seconds:.2f} s, "
                        f"concurrency {args.concurrency})"
                    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--logins", type=int, default=600)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--profile-rounds", type=int, default=50)
    asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()
