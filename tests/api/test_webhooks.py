"""Webhook delivery over real sockets: a loopback receiver that accepts, fails, hangs
and goes down; signatures checked with the `standardwebhooks` package."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest
from aiohttp import web
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from broker.app import build_services, make_app
from broker.core import audit, organizations
from tests.api.conftest import clock, make_client, make_org
from tests.api.sink import WebhookSink
from tests.conftest import RunningBroker, free_port


def emit(broker: RunningBroker, org_id: str, n: int) -> list[str]:
    """n organization.updated events, each in its own transaction, as the core writes them."""
    for i in range(n):
        organizations.set_default_seat(
            broker.store, clock, audit.CLI, org_id, "full" if i % 2 else "basic"
        )
    return stream_ids(broker, [org_id])[-n:]


def stream_ids(broker: RunningBroker, org_ids: list[str]) -> list[str]:
    return [e.id for e in broker.store.events.after(0, 100_000, organization_ids=org_ids)]


async def test_delivers_in_order_signed_with_the_standard(
    broker: RunningBroker, sink: WebhookSink
) -> None:
    org = make_org(broker, "Acme")
    client = make_client(broker, [org], sink.url)
    assert client.webhook_secret and client.webhook_secret.startswith("whsec_")
    emit(broker, org, 3)
    expected = stream_ids(broker, [org])
    got = await sink.wait_for(len(expected))
    verifier = Webhook(client.webhook_secret)
    bodies = [verifier.verify(r.body, r.headers) for r in got]
    assert [b["id"] for b in bodies] == expected
    assert [r.headers["webhook-id"] for r in got] == expected
    assert bodies[0]["type"] == "organization.created"
    # Full object, not just an id: Exec never needs to call back.
    assert bodies[-1]["data"]["object"] == "organization"
    assert "sso_enabled" in bodies[-1]["data"] and "domains" in bodies[-1]["data"]
    # A tampered body or another secret fails the standard verification.
    with pytest.raises(WebhookVerificationError):
        verifier.verify(got[0].body.replace(b"Acme", b"Evil"), got[0].headers)
    other = make_client(broker, [org], sink.url)
    with pytest.raises(WebhookVerificationError):
        Webhook(other.webhook_secret or "").verify(got[0].body, got[0].headers)


async def test_failures_timeouts_and_recovery_keep_order_and_lose_nothing(
    broker: RunningBroker, sink: WebhookSink
) -> None:
    org_a, org_b = make_org(broker, "A"), make_org(broker, "B")
    client = make_client(broker, [org_a, org_b], sink.url)
    sink.fail_next = 3
    emit(broker, org_a, 2)
    emit(broker, org_b, 2)
    await asyncio.sleep(0.3)
    sink.mode = "hang"  # longer than webhooks.timeout_seconds = 1
    sink.hang_seconds = 1.5
    emit(broker, org_a, 2)
    await asyncio.sleep(1.2)
    sink.mode = "ok"
    emit(broker, org_b, 2)
    expected = stream_ids(broker, [org_a, org_b])
    got = await sink.wait_for(len(expected), timeout=30)
    await asyncio.sleep(0.3)  # nothing more should arrive
    accepted = [r.headers["webhook-id"] for r in sink.accepted()]
    # Exactly once per id as accepted by the receiver, in commit order; and so in order
    # per organization.
    assert accepted == expected
    assert len(set(accepted)) == len(accepted)
    failed = [r for r in sink.received if r.status >= 500]
    assert len(failed) >= 3
    # Every retry of one event carries the same webhook-id (receivers de-duplicate on it).
    assert {r.headers["webhook-id"] for r in failed} <= set(expected)
    verifier = Webhook(client.webhook_secret or "")
    for r in got:
        verifier.verify(r.body, r.headers)
    log = broker.store.webhooks.deliveries(client.id, 500)
    statuses = {d.status for d in log}
    assert statuses == {"succeeded", "failed"}
    failed_logs = [d for d in log if d.status == "failed"]
    assert any(
        d.http_status == 500 and "receiver unhappy" in (d.response_excerpt or "")
        for d in failed_logs
    )
    assert all(len((d.response_excerpt or "").encode()) <= 500 for d in log)
    assert any(d.error == "timed out" for d in failed_logs)
    assert all(d.latency_ms is not None for d in log)
    state = broker.store.webhooks.state(client.id)
    assert state.state == "ok" and state.acked_seq > 0


async def test_receiver_down_then_back_loses_nothing(broker: RunningBroker) -> None:
    sink = WebhookSink()  # not started: connection refused
    org = make_org(broker, "Acme")
    make_client(broker, [org], sink.url)
    emit(broker, org, 5)
    await asyncio.sleep(1.0)
    state = broker.store.webhooks.state(next(iter(c.id for c in broker.store.clients.list())))
    assert state.state == "retrying" and state.attempts >= 2 and state.acked_seq == 0
    await sink.start()
    try:
        emit(broker, org, 2)
        expected = stream_ids(broker, [org])
        await sink.wait_for(len(expected), timeout=20)
        assert [r.headers["webhook-id"] for r in sink.accepted()] == expected
    finally:
        await sink.stop()


async def test_redirects_are_not_followed(broker: RunningBroker, sink: WebhookSink) -> None:
    sink.mode = "redirect"
    org = make_org(broker, "Acme")
    client = make_client(broker, [org], sink.url)
    for _ in range(100):
        log = broker.store.webhooks.deliveries(client.id, 10)
        if log:
            break
        await asyncio.sleep(0.05)
    assert log and log[-1].http_status == 302 and log[-1].status == "failed"
    assert broker.store.webhooks.state(client.id).acked_seq == 0


# This broker's threshold is 1 s instead of 3 days (same rule: webhooks.failing_after).
@pytest.mark.parametrize("settings", [{"webhooks__failing_after_seconds": 1}], indirect=True)
async def test_endpoint_marked_failing_after_threshold(
    broker: RunningBroker, sink: WebhookSink
) -> None:
    sink.mode = "fail"
    org = make_org(broker, "Acme")
    client = make_client(broker, [org], sink.url)
    failing = []
    for _ in range(200):
        failing = [
            e for e in broker.store.events.after(0, 1000) if e.type == "webhook_endpoint.failing"
        ]
        if failing:
            break
        await asyncio.sleep(0.05)
    assert failing, "no webhook_endpoint.failing event"
    assert failing[0].data["client_id"] == client.id
    assert broker.store.webhooks.state(client.id).state == "failing"
    # It keeps retrying; when the receiver recovers the endpoint is ok again.
    sink.mode = "ok"
    await sink.wait_for(1, timeout=10)
    for _ in range(100):
        if broker.store.webhooks.state(client.id).state == "ok":
            break
        await asyncio.sleep(0.05)
    assert broker.store.webhooks.state(client.id).state == "ok"
    assert (
        len([e for e in broker.store.events.after(0, 1000) if e.type == "webhook_endpoint.failing"])
        == 1
    )


async def test_manual_resend_through_the_api(broker: RunningBroker, sink: WebhookSink) -> None:
    org = make_org(broker, "Acme")
    client = make_client(broker, [org], sink.url)
    first = (await sink.wait_for(1))[0].headers["webhook-id"]
    async with aiohttp.ClientSession(headers=client.basic) as http:
        async with http.post(
            f"{broker.url}/api/v1/webhook_endpoint/resend", json={"event_id": first}
        ) as r:
            assert r.status == 202
            queued = await r.json()
        assert queued["kind"] == "resend" and queued["status"] == "pending"
        got = await sink.wait_for(2)
        assert got[1].headers["webhook-id"] == first
        async with http.get(f"{broker.url}/api/v1/webhook_endpoint/deliveries") as r:
            log = (await r.json())["data"]
        assert {d["kind"] for d in log} == {"stream", "resend"}
        assert all(d["status"] == "succeeded" and d["http_status"] == 204 for d in log)
        async with http.get(f"{broker.url}/api/v1/webhook_endpoint") as r:
            shown = await r.json()
        assert shown["state"] == "ok" and shown["url"] == sink.url
        assert "secret" not in str(shown)
        # Another organization's event cannot be re-sent to this client.
        other_org = make_org(broker, "Other")
        foreign = stream_ids(broker, [other_org])[0]
        async with http.post(
            f"{broker.url}/api/v1/webhook_endpoint/resend", json={"event_id": foreign}
        ) as r:
            assert r.status == 404


async def test_two_workers_share_delivery_safely(
    broker: RunningBroker, sink: WebhookSink, port: int
) -> None:
    """A second broker process's worth of services and worker on the same database: the
    lease keeps one delivery at a time per endpoint, so order and once-per-id hold."""
    second = make_app(broker.settings, build_services(broker.settings))
    runner = web.AppRunner(second, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", free_port()).start()
    try:
        org_a, org_b = make_org(broker, "A"), make_org(broker, "B")
        make_client(broker, [org_a, org_b], sink.url)
        sink.fail_next = 2
        for _ in range(4):
            emit(broker, org_a, 10)
            emit(broker, org_b, 10)
            await asyncio.sleep(0.05)
        expected = stream_ids(broker, [org_a, org_b])
        await sink.wait_for(len(expected), timeout=30)
        await asyncio.sleep(0.3)
        assert [r.headers["webhook-id"] for r in sink.accepted()] == expected
    finally:
        await runner.cleanup()
