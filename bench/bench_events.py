"""Event lag (SCIM write acknowledged → webhook received) and events API read throughput.

Run: .venv/bin/python bench/bench_events.py [--users 10000] [--concurrency 4]
A fresh `exec-broker init` home in a temp dir; `exec-broker serve` in its own process on
a free loopback port; this process is the IdP (SCIM POST /Users, `concurrency` at a
time) and Exec (a loopback webhook receiver). Lag is measured per user from the SCIM
201 to the arrival of its `dsync.user.created` webhook. Then the events API is read
from the first cursor to the end in pages of 1000 (HTTP Basic).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
BIN = Path(sys.executable).parent / "exec-broker"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def prepare(home: Path, port: int, hook_url: str) -> dict[str, Any]:
    from broker import settings as settings_module
    from broker.cli import main as cli_main
    from broker.clock import SystemClock
    from broker.core import audit, clients, directories, organizations
    from broker.crypto.secrets import SecretBox
    from broker.storage.store import SQLiteStore

    (home / "config").mkdir(parents=True)
    example = ROOT / "config" / "broker.example.toml"
    (home / "config" / "broker.example.toml").write_text(example.read_text())
    os.environ["BROKER_CONFIG"] = str(home / "config" / "broker.toml")
    assert cli_main(["init", "--public-url", f"http://127.0.0.1:{port}"]) == 0
    settings = settings_module.load()
    store = SQLiteStore.open(settings.database)
    clock = SystemClock()
    box = SecretBox.load(settings.certs_dir)
    org = organizations.create_organization(store, clock, audit.CLI, "Bench")
    client, secret, _ = clients.create_client(
        store,
        clock,
        audit.CLI,
        name="Exec",
        redirect_uris=["https://exec.test/cb"],
        organization_ids=[org.id],
        webhook_url=hook_url,
        seal=lambda s: box.encrypt(s, "webhook"),
    )
    directory_id, token = directories.activate(store, org.id, clock.now())
    store.close()
    return {"client_id": client.id, "secret": secret, "directory_id": directory_id, "token": token}


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p))]


async def bench(users: int, concurrency: int) -> None:
    port, hook_port = free_port(), free_port()
    arrived: dict[str, float] = {}

    async def receive(request: web.Request) -> web.Response:
        body = await request.json()
        if body["type"] == "dsync.user.created":
            arrived[body["data"]["id"]] = time.perf_counter()
        return web.Response(status=204)

    receiver = web.Application()
    receiver.router.add_post("/hooks", receive)
    runner = web.AppRunner(receiver, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", hook_port).start()

    with tempfile.TemporaryDirectory() as tmp:
        ids = prepare(Path(tmp), port, f"http://127.0.0.1:{hook_port}/hooks")
        env = {
            **os.environ,
            "BROKER_LOG_LEVEL": "warning",
            "BROKER_PORT": str(port),
            # The receiver is this process on http://127.0.0.1: plain http to loopback is
            # an explicit opt-in, and loopback must be on the network allow-list, or the
            # broker's SSRF rules refuse every delivery (broker/api/webhook_worker.py).
            "BROKER_WEBHOOKS_ALLOW_INSECURE_LOOPBACK": "true",
            "BROKER_NETWORK_PRIVATE_HOSTS_ALLOWLIST": "127.0.0.1",
        }
        server = subprocess.Popen([str(BIN), "serve"], env=env, stdout=subprocess.DEVNULL)
        base = f"http://127.0.0.1:{port}"
        try:
            async with aiohttp.ClientSession() as http:
                for _ in range(200):
                    try:
                        async with http.get(base + "/readyz") as r:
                            if r.status == 200:
                                break
                    except aiohttp.ClientError:
                        pass
                    await asyncio.sleep(0.05)
                acked = await scim_writes(http, base, ids, users, concurrency)
                deadline = time.perf_counter() + 120
                while len(arrived) < len(acked) and time.perf_counter() < deadline:
                    await asyncio.sleep(0.05)
                lags = [(arrived[u] - t) * 1000 for u, t in acked.items() if u in arrived]
                print(f"users written:        {len(acked)} (concurrency {concurrency})")
                print(f"webhooks received:    {len(lags)}")
                if lags:
                    print(f"event lag p50:        {pct(lags, 0.50):.1f} ms")
                    print(f"event lag p99:        {pct(lags, 0.99):.1f} ms")
                    print(f"event lag max:        {max(lags):.1f} ms")
                await read_throughput(http, base, ids)
        finally:
            server.terminate()
            server.wait(timeout=20)
            await runner.cleanup()


async def scim_writes(
    http: aiohttp.ClientSession, base: str, ids: dict[str, Any], users: int, concurrency: int
) -> dict[str, float]:
    acked: dict[str, float] = {}
    url = f"{base}/scim/v2/{ids['directory_id']}/Users"
    headers = {"Authorization": f"Bearer {ids['token']}", "Content-Type": "application/scim+json"}
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(users):
        queue.put_nowait(i)
    started = time.perf_counter()

    async def writer() -> None:
        while not queue.empty():
            i = queue.get_nowait()
            body = {
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                "userName": f"user{i}@bench.test",
                "active": True,
                "name": {"givenName": "U", "familyName": str(i)},
                "emails": [{"value": f"user{i}@bench.test", "primary": True}],
            }
            async with http.post(url, json=body, headers=headers) as r:
                created = await r.json()
                if r.status == 201:
                    acked[created["id"]] = time.perf_counter()
                elif r.status != 429:
                    raise RuntimeError(f"SCIM {r.status}: {created}")
                else:
                    queue.put_nowait(i)
                    await asyncio.sleep(float(r.headers.get("Retry-After", "0.1")))

    await asyncio.gather(*(writer() for _ in range(concurrency)))
    took = time.perf_counter() - started
    print(f"SCIM writes:          {len(acked) / took:.0f} users/s")
    return acked


async def read_throughput(http: aiohttp.ClientSession, base: str, ids: dict[str, Any]) -> None:
    auth = base64.b64encode(f"{ids['client_id']}:{ids['secret']}".encode()).decode()
    headers = {"Authorization": f"Basic {auth}"}
    cursor, count, pages = None, 0, 0
    started = time.perf_counter()
    while True:
        params = {"limit": "1000"} | ({"after": cursor} if cursor else {})
        async with http.get(f"{base}/api/v1/events", params=params, headers=headers) as r:
            body = await r.json()
        count += len(body["data"])
        pages += 1
        cursor = body["next_cursor"]
        if not body["has_more"]:
            break
    took = time.perf_counter() - started
    print(
        f"events API read:      {count} events in {pages} pages, {took:.2f} s "
        f"= {count / took:.0f} events/s"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=4)
    args = parser.parse_args()
    asyncio.run(bench(args.users, args.concurrency))


if __name__ == "__main__":
    main()
