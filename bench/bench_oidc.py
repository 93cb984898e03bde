"""OIDC provider throughput: token endpoint code exchanges/s (RS256 and ES256 clients) and
discovery + JWKS requests/s, with `exec-broker serve` at 1 and 2 workers.

Run: .venv/bin/python bench/bench_oidc.py [--codes 6000] [--concurrency 64]
Codes are minted beforehand through the core (broker.core.grants.issue_code) straight
into the broker's database, so the figure is the token endpoint alone: client
authentication (client_secret_basic), atomic code consumption, PKCE S256 check, ID and
access token signing (both with the client's alg), and one write transaction (the code
consumed, the refresh token recorded; access tokens are self-contained, so nothing is
written for them). The load generator is this process (aiohttp, keep-alive) on the same
2 cores, so it takes its share; `uptime`'s load average is printed with each run,
because other processes on the machine change the figures a lot.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import os
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.common import Home, broker_home, serve, sso_tenant

REDIRECT = "https://exec.test/cb"
VERIFIER = "bench-verifier-" + "x" * 40


def prepare(home: Home, alg: str, count: int) -> tuple[str, str, list[str]]:
    """A tenant, a client signing with `alg`, one broker session, `count` fresh codes."""
    from broker.clock import SystemClock
    from broker.core import audit, clients, grants
    from broker.core.flows import AuthorizeRequest, LoginConfig
    from broker.core.ports import BrokerSession
    from broker.ids import hash_token, new_id

    config = LoginConfig(issuer=home.url, code_ttl=600)  # codes outlive the warm-up
    store, clock = home.store, SystemClock()
    domain = f"{alg.lower()}.bench.test"
    org_id, connection_id = sso_tenant(store, f"Bench {alg}", domain)
    email = f"a@{domain}"
    client, secret, _ = clients.create_client(
        store,
        clock,
        audit.CLI,
        name="Exec",
        redirect_uris=[REDIRECT],
        id_token_signed_response_alg=alg,
    )
    now = clock.now()
    claims = {
        "sub": "u_bench",
        "email": email,
        "email_verified": True,
        "org_id": org_id,
        "connection_id": connection_id,
        "connection_type": "saml",
        "idp_id": "00u",
        "groups": ["eng"],
        "role": "member",
        "seat": "basic",
    }
    session = BrokerSession(
        id=new_id("ses"),
        organization_id=org_id,
        connection_id=connection_id,
        subject="u_bench",
        email=email,
        directory_user_id=None,
        claims=claims,
        auth_time=now,
        created_at=now,
        expires_at=now + 3600,
    )
    challenge = base64.urlsafe_b64encode(hashlib.sha256(VERIFIER.encode()).digest())
    request = AuthorizeRequest(
        client_id=client.id,
        redirect_uri=REDIRECT,
        response_type="code",
        response_mode="query",
        scope="openid email",
        nonce="n",
        code_challenge=challenge.rstrip(b"=").decode(),
        code_challenge_method="S256",
    )
    codes = []
    with store.transaction():
        store.sessions.create(session, hash_token(new_id("ses")))
        for _ in range(count):
            codes.append(
                grants.issue_code(
                    store, now, request=request, session=session, flow_id=None, config=config
                )
            )
    assert secret is not None
    return client.id, secret, codes


async def load(
    url: str, jobs: list[dict[str, Any]], concurrency: int, headers: dict[str, str]
) -> tuple[float, int, int]:
    """(seconds, ok, failed) for running every job with `concurrency` in flight."""
    queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    for job in jobs:
        queue.put_nowait(job)
    ok = failed = 0
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector, headers=headers) as http:

        async def worker() -> None:
            nonlocal ok, failed
            while not queue.empty():
                job = queue.get_nowait()
                if job["method"] == "POST":
                    resp = await http.post(url + job["path"], data=job["data"])
                else:
                    resp = await http.get(url + job["path"])
                await resp.read()
                if resp.status == 200:
                    ok += 1
                else:
                    failed += 1

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return time.perf_counter() - started, ok, failed


def token_jobs(codes: list[str]) -> list[dict[str, Any]]:
    return [
        {
            "method": "POST",
            "path": "/oauth2/token",
            "data": {
                "grant_type": "authorization_code",
                "code": c,
                "redirect_uri": REDIRECT,
                "code_verifier": VERIFIER,
            },
        }
        for c in codes
    ]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--codes", type=int, default=6000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--discovery", type=int, default=10000)
    args = parser.parse_args()
    print(f"codes per run {args.codes}, concurrency {args.concurrency}")
    print(f"load average before: {_load()}")
    for workers in (1, 2):
        with broker_home() as home:
            minted = {alg: prepare(home, alg, args.codes + 200) for alg in ("ES256", "RS256")}
            with serve(home, workers=workers):
                for alg, (client_id, secret, codes) in minted.items():
                    basic = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
                    headers = {"Authorization": f"Basic {basic}"}
                    asyncio.run(load(home.url, token_jobs(codes[:200]), 16, headers))  # warm
                    seconds, ok, failed = asyncio.run(
                        load(home.url, token_jobs(codes[200:]), args.concurrency, headers)
                    )
                    print(
                        f"workers={workers} token endpoint {alg}: {ok / seconds:8.0f} "
                        f"code exchanges/s ({ok} ok, {failed} failed, {seconds:.2f} s)"
                    )
                jobs = [
                    {"method": "GET", "path": p}
                    for _ in range(args.discovery // 2)
                    for p in ("/.well-known/openid-configuration", "/oauth2/jwks")
                ]
                seconds, ok, failed = asyncio.run(load(home.url, jobs, args.concurrency, {}))
                print(
                    f"workers={workers} discovery+JWKS: {ok / seconds:8.0f} requests/s "
                    f"({ok} ok, {failed} failed)"
                )
                print(f"load average: {_load()}")


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


if __name__ == "__main__":
    main()
