"""Webhook delivery is SSRF-safe (DESIGN.md §6): the admin's URL goes through
broker.web.safe_http, because what it answers is readable by Exec in the delivery log.

Real receivers on 127.0.0.1 (tests/api/sink.py). The API fixtures allow-list 127.0.0.1
and allow plain http to loopback (tests/api/conftest.py); the tests here take either away
and check that the worker refuses before any request is made, logs the refusal as a
failed attempt and keeps running; and that a huge answer is read only as far as the
excerpt. Private, link-local and mixed DNS answers are checked with an injected resolver
and never connected to.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import aiohttp
import pytest

from broker.api.webhook_worker import READ_LIMIT, WebhookHttp, delivery_error
from broker.core import webhooks
from broker.core.ports import WebhookDelivery
from broker.errors import InvalidInput
from broker.web.safe_http import FetchPolicy, Resolver, SafeHttpError
from tests.api.conftest import clock, make_client, make_org
from tests.api.sink import HUGE_BYTES, HUGE_PREFIX, WebhookSink
from tests.conftest import RunningBroker

NO_ALLOWLIST = {"network__private_hosts_allowlist": ()}


async def wait_for_log(
    broker: RunningBroker, client_id: str, count: int, timeout: float = 10.0
) -> list[WebhookDelivery]:
    """The delivery log once it holds `count` attempts, newest first."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        log = broker.store.webhooks.deliveries(client_id, 100)
        if len(log) >= count:
            return log
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"{len(log)} of {count} delivery attempts logged")
        await asyncio.sleep(0.02)


async def deliveries_seen_by_exec(broker: RunningBroker, basic: dict[str, str]) -> list[dict]:
    async with aiohttp.ClientSession(headers=basic) as http:
        async with http.get(f"{broker.url}/api/v1/webhook_endpoint/deliveries") as r:
            assert r.status == 200
            return list((await r.json())["data"])


def assert_blocked(log: list[WebhookDelivery]) -> None:
    for d in log:
        assert d.status == "failed" and d.error == webhooks.BLOCKED_ERROR
        assert d.http_status is None and d.response_excerpt == ""


@pytest.mark.parametrize("settings", [NO_ALLOWLIST], indirect=True)
async def test_loopback_off_the_allowlist_is_refused_until_the_admin_allows_it(
    broker: RunningBroker, sink: WebhookSink
) -> None:
    org = make_org(broker, "Acme")
    client = make_client(broker, [org], sink.url)
    log = await wait_for_log(broker, client.id, 3)  # retried: the worker keeps running
    assert_blocked(log)
    assert sink.received == []  # refused before connecting: not one request
    state = broker.store.webhooks.state(client.id)
    assert state.state == "retrying" and state.acked_seq == 0
    assert state.last_error == webhooks.BLOCKED_ERROR
    # Exec reads the refusal through the API: the fixed words, no address, no answer.
    seen = await deliveries_seen_by_exec(broker, client.basic)
    assert seen and all(d["error"] == webhooks.BLOCKED_ERROR for d in seen)
    assert all(d["response_excerpt"] == "" and d["http_status"] is None for d in seen)
    # The admin puts the host on the store's allow-list (`exec-broker network allow-host`);
    # the worker re-reads it and the same event goes through.
    with broker.store.transaction():
        broker.store.network_hosts.add("127.0.0.1", clock.now(), "test")
    got = await sink.wait_for(1)
    assert got[0].headers["webhook-id"] == log[-1].event_id
    latest = (await wait_for_log(broker, client.id, len(log) + 1))[0]
    assert latest.status == "succeeded" and latest.http_status == 204


async def test_loopback_on_the_allowlist_is_delivered(
    broker: RunningBroker, sink: WebhookSink
) -> None:
    assert broker.settings.get("network.private_hosts_allowlist") == ("127.0.0.1",)
    org = make_org(broker, "Acme")
    client = make_client(broker, [org], sink.url)
    await sink.wait_for(1)
    log = await wait_for_log(broker, client.id, 1)
    assert [(d.status, d.http_status, d.error) for d in log] == [("succeeded", 204, None)]


async def test_the_allowlist_matches_host_names_exactly(
    broker: RunningBroker, sink: WebhookSink
) -> None:
    """`localhost` resolves to loopback, but only 127.0.0.1 is allow-listed."""
    org = make_org(broker, "Acme")
    client = make_client(broker, [org], f"http://localhost:{sink.port}/hooks/exec")
    assert_blocked(await wait_for_log(broker, client.id, 2))
    assert sink.received == []


@pytest.mark.parametrize("settings", [{"webhooks__allow_insecure_loopback": False}], indirect=True)
async def test_plain_http_needs_the_insecure_loopback_flag(
    broker: RunningBroker, sink: WebhookSink
) -> None:
    org = make_org(broker, "Acme")
    client = make_client(broker, [org], sink.url)
    log = await wait_for_log(broker, client.id, 2)
    assert {d.error for d in log} == {"refused: The webhook URL does not use HTTPS."}
    assert all(d.status == "failed" and d.http_status is None for d in log)
    assert sink.received == []


async def test_a_huge_answer_is_read_only_as_far_as_the_excerpt(
    broker: RunningBroker, sink: WebhookSink
) -> None:
    sink.mode = "huge"  # 200 with a 10 MB body, streamed
    org = make_org(broker, "Acme")
    client = make_client(broker, [org], sink.url)
    log = await wait_for_log(broker, client.id, 1)
    assert [(d.status, d.http_status) for d in log] == [("succeeded", 200)]
    expected = HUGE_PREFIX[: webhooks.EXCERPT_BYTES]
    assert log[0].response_excerpt == expected
    assert broker.store.webhooks.state(client.id).acked_seq > 0
    # The broker hung up after the excerpt: the receiver could not send the rest.
    for _ in range(250):
        if sink.huge_finished and sink.huge_finished[0] is not None:
            break
        await asyncio.sleep(0.02)
    assert sink.huge_finished == [False]
    assert sink.huge_sent[0] < HUGE_BYTES // 4
    seen = await deliveries_seen_by_exec(broker, client.basic)
    assert [d["response_excerpt"] for d in seen] == [expected]


def answers(texts: Sequence[str]) -> Resolver:
    async def resolve(host: str, port: int) -> Sequence[str]:
        return list(texts)

    return resolve


@pytest.mark.parametrize(
    "addresses",
    [
        ["10.0.0.7"],
        ["192.168.1.20"],
        ["169.254.169.254"],  # cloud metadata (link-local)
        ["127.0.0.1"],
        ["fd00::7"],
        ["::ffff:10.0.0.7"],
    ],
)
async def test_private_answers_are_refused_before_connecting(addresses: list[str]) -> None:
    policy = FetchPolicy(timeout=1.0, max_bytes=READ_LIMIT)
    async with WebhookHttp(policy, answers(addresses)) as http:
        with pytest.raises(SafeHttpError) as refused:
            await http.post("https://hooks.example.test/exec", b"{}", {})
    assert refused.value.kind == "blocked_address"
    assert delivery_error(refused.value) == webhooks.BLOCKED_ERROR
    # The addresses go to the process log (detail), never to the delivery log.
    assert addresses[-1] not in delivery_error(refused.value)


async def test_a_webhook_url_is_checked_when_it_is_set(broker: RunningBroker) -> None:
    org = make_org(broker, "Acme")
    for bad in (
        "http://10.0.0.7/hooks",  # plain http only to loopback
        "http://exec.test/hooks",
        "ftp://exec.test/hooks",
        "https://exec.test/hooks#frag",
    ):
        with pytest.raises(InvalidInput):
            make_client(broker, [org], bad)
    assert broker.store.clients.list() == []
