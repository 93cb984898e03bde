"""GET /api/v1/events: cursors, filters, and no skipped event while two processes write."""

from __future__ import annotations

import asyncio
import itertools
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp

from broker.core import audit, domains, organizations
from tests.api.conftest import ApiClient, clock, make_client, make_org
from tests.conftest import RunningBroker

WRITER = Path(__file__).with_name("writer.py")


async def page(
    http: aiohttp.ClientSession, broker: RunningBroker, client: ApiClient, **params: Any
) -> tuple[int, Any]:
    async with http.get(broker.url + "/api/v1/events", params=params, headers=client.basic) as r:
        return r.status, await r.json()


async def test_pages_follow_the_cursor(broker: RunningBroker) -> None:
    org = make_org(broker, "Acme")
    client = make_client(broker, [org])
    for i in range(9):
        organizations.set_default_seat(
            broker.store, clock, audit.CLI, org, "full" if i % 2 else "basic"
        )
    seen: list[str] = []
    cursors: list[str] = []
    after = None
    async with aiohttp.ClientSession() as http:
        while True:
            params = {"limit": 4} | ({"after": after} if after else {})
            status, body = await page(http, broker, client, **params)
            assert status == 200
            seen += [e["id"] for e in body["data"]]
            cursors.append(body["next_cursor"])
            if not body["has_more"]:
                break
            after = body["next_cursor"]
        assert len(seen) == 10 and len(set(seen)) == 10  # created + 9 updates
        assert cursors == sorted(cursors)  # opaque but monotonic
        # Polling again from the last cursor returns nothing new, and the cursor stays.
        status, body = await page(http, broker, client, after=cursors[-1])
        assert body["data"] == [] and body["next_cursor"] == cursors[-1]
        # A new event appears after it.
        organizations.set_default_seat(broker.store, clock, audit.CLI, org, "full")
        status, body = await page(http, broker, client, after=cursors[-1])
        assert [e["type"] for e in body["data"]] == ["organization.updated"]


async def test_filters_and_bad_parameters(broker: RunningBroker) -> None:
    org = make_org(broker, "Acme")
    client = make_client(broker, [org])
    domains.add_domain(broker.store, clock, audit.CLI, org, "acme.test")
    for _ in range(3):
        organizations.set_default_seat(broker.store, clock, audit.CLI, org, "full")
    async with aiohttp.ClientSession() as http:
        status, body = await page(http, broker, client, types="organization_domain.created")
        assert status == 200 and [e["type"] for e in body["data"]] == [
            "organization_domain.created"
        ]
        assert body["data"][0]["data"]["domain"] == "acme.test"
        # A short filtered page moves the cursor past the rows that did not match.
        _, everything = await page(http, broker, client)
        assert body["next_cursor"] == everything["next_cursor"]
        status, body = await page(
            http, broker, client, types="organization.created,organization_domain.created"
        )
        assert len(body["data"]) == 2
        status, body = await page(http, broker, client, organization_id=org, limit=1)
        assert status == 200 and len(body["data"]) == 1 and body["has_more"] is True
        for bad in (
            {"after": "12"},
            {"after": ""},
            {"after": "evc_zzzzzzzzzzzzzzzz"},
            {"limit": "0"},
            {"limit": "1001"},
            {"limit": "x"},
            {"types": "user.exploded"},
        ):
            status, body = await page(http, broker, client, **bad)
            assert status == 400, bad
            assert body["error"] == "invalid_request"


async def test_no_event_skipped_while_two_processes_write(broker: RunningBroker) -> None:
    org = make_org(broker, "Acme")
    client = make_client(broker, [org])
    per_writer = 150
    start_at = time.time() + 1.5  # both processes are up by then
    writers = [
        subprocess.Popen(
            [
                sys.executable,
                str(WRITER),
                str(broker.settings.database),
                org,
                str(per_writer),
                name,
                str(start_at),
            ],
            env={**os.environ, "PYTHONPATH": str(WRITER.parents[2])},
        )
        for name in ("w1", "w2")
    ]
    seen: list[dict[str, Any]] = []
    after = None
    expected_total = 1 + 2 * per_writer  # organization.created + the writers' events
    async with aiohttp.ClientSession() as http:
        for _ in range(3000):
            params = {"limit": 7} | ({"after": after} if after else {})
            status, body = await page(http, broker, client, **params)
            assert status == 200
            seen += body["data"]
            after = body["next_cursor"]
            if len(seen) >= expected_total and all(w.poll() is not None for w in writers):
                break
            if not body["data"]:
                await asyncio.sleep(0.005)
    for w in writers:
        assert w.wait(timeout=30) == 0
    ids = [e["id"] for e in seen]
    committed = [e.id for e in broker.store.events.after(0, 10_000, organization_ids=[org])]
    assert len(ids) == len(set(ids)), "an event was returned twice"
    assert ids == committed, "the reader skipped or reordered an event"
    assert sorted(e["cursor"] for e in seen) == [e["cursor"] for e in seen]
    # Both writers interleaved (the test exercised concurrency at all).
    by_writer = [e["data"].get("writer") for e in seen if e["type"] == "dsync.user.updated"]
    assert {"w1", "w2"} <= set(by_writer)
    switches = sum(1 for x, y in itertools.pairwise(by_writer) if x != y)
    assert switches >= 2
