"""The OpenAPI description is true: every /api/v1 route is described (and nothing else),
it is valid OpenAPI 3.1, and schemathesis finds live answers that conform to it."""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
from pathlib import Path

import aiohttp
import pytest

from broker.api import PREFIX
from tests.api.conftest import make_client, make_org
from tests.api.sink import WebhookSink
from tests.conftest import RunningBroker

SCHEMATHESIS = Path(sys.executable).with_name("schemathesis")


def served_operations(broker: RunningBroker) -> set[tuple[str, str]]:
    found = set()
    for route in broker.app.router.routes():
        path = route.resource.canonical if route.resource else ""
        if path.startswith(PREFIX + "/") and route.method != "HEAD":
            found.add((route.method.lower(), path[len(PREFIX) :]))
    return found


async def test_every_route_is_described_and_nothing_else(broker: RunningBroker) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{broker.url}/api/v1/openapi.json") as r:
            assert r.status == 200
            spec = await r.json()
    assert spec["openapi"].startswith("3.1")
    assert spec["servers"] == [{"url": broker.url + "/api/v1"}]
    described = {(method, path) for path, ops in spec["paths"].items() for method in ops}
    served = served_operations(broker) - {("get", "/openapi.json")}
    assert served == described
    # Every $ref resolves.
    schemas = spec["components"]["schemas"]
    text = str(spec)
    for name in {part.split("'")[0] for part in text.split("#/components/schemas/")[1:]}:
        assert name in schemas, name


@pytest.mark.skipif(not SCHEMATHESIS.exists(), reason="schemathesis is not installed")
async def test_schemathesis_against_the_live_api(
    broker: RunningBroker, sink: WebhookSink, tmp_path: Path
) -> None:
    org = make_org(broker, "Acme")
    client = make_client(broker, [org], sink.url)
    await sink.wait_for(1)
    proc = await asyncio.create_subprocess_exec(
        str(SCHEMATHESIS),
        "run",
        f"{broker.url}/api/v1/openapi.json",
        "--auth",
        f"{client.id}:{client.secret}",
        "--checks",
        "not_a_server_error,status_code_conformance,content_type_conformance,"
        "response_schema_conformance,negative_data_rejection,ignored_auth",
        "--max-examples",
        "15",
        "--phases",
        "examples,coverage,fuzzing",
        "--seed",
        "1",
        "--workers",
        "1",
        "--request-timeout",
        "10",
        "--max-redirects",
        "0",
        "--no-color",
        cwd=tmp_path,
        env={**os.environ, "SCHEMATHESIS_HOOKS": "", "NO_COLOR": "1"},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(proc.communicate(), timeout=120)
    report = out.decode(errors="replace")
    assert proc.returncode == 0, report[-6000:]
    assert "6 passed" in report or "passed" in report, report[-3000:]
    shutil.rmtree(tmp_path / ".hypothesis", ignore_errors=True)
