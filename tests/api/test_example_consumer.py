"""examples/exec_consumer.py works against the real broker: its receiver verifies the
broker's webhooks and its poller reads the same events."""

from __future__ import annotations

import asyncio
import importlib.util
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from tests.api.conftest import make_client, make_org
from tests.conftest import RunningBroker, free_port

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "exec_consumer.py"


def load_example():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("exec_consumer", EXAMPLE)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


async def test_example_consumer(broker: RunningBroker, capsys: pytest.CaptureFixture[str]) -> None:
    example = load_example()
    port = free_port()
    pushed: set[str] = set()
    org = make_org(broker, "Acme")
    url = f"http://127.0.0.1:{port}/hooks/exec"
    # A client with a webhook, bound to the organization.
    client = make_client(broker, [org], url)
    runner = web.AppRunner(example.webhook_app(client.webhook_secret, pushed))
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        for _ in range(200):
            if pushed:
                break
            await asyncio.sleep(0.05)
        assert len(pushed) == 1
        pulled: set[str] = set()
        auth = {"Authorization": example.basic_auth(client.id, client.secret)}
        async with aiohttp.ClientSession(headers=auth) as http:
            cursor, count = await example.poll_once(http, broker.url, None, pulled)
            assert count == 1 and pulled == pushed
            cursor2, count = await example.poll_once(http, broker.url, cursor, pulled)
            assert count == 0 and cursor2 == cursor
        # A forged delivery is refused by the example's verification.
        async with aiohttp.ClientSession() as http:
            async with http.post(
                url,
                data=b"{}",
                headers={
                    "webhook-id": "evt_x",
                    "webhook-timestamp": "1",
                    "webhook-signature": "v1,AAAA",
                },
            ) as r:
                assert r.status == 400
    finally:
        await runner.cleanup()
    assert "organization.created" in capsys.readouterr().out
