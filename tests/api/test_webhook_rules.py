"""The delivery rules of core.webhooks on a real store with a pinned clock: leases,
cursor moves, backoff with jitter, failing after 3 days, an hour-long outage."""

from __future__ import annotations

import pytest

from broker.clock import FixedClock
from broker.core import audit, clients, organizations, webhooks
from broker.core.webhooks import Outcome, RetryPolicy
from broker.crypto.secrets import SecretBox
from broker.settings import Settings
from broker.storage.store import SQLiteStore

T0 = 1_800_000_000.0
OK = Outcome(True, 204, 3.0, "")
DOWN = Outcome(False, None, 1.0, "", "ClientConnectorError: refused")


@pytest.fixture
def endpoint(store: SQLiteStore, settings: Settings) -> tuple[str, FixedClock]:
    clock = FixedClock(T0)
    box = SecretBox.load(settings.certs_dir)
    org = organizations.create_organization(store, clock, audit.CLI, "Acme")
    client, _, _ = clients.create_client(
        store,
        clock,
        audit.CLI,
        name="Exec",
        redirect_uris=["https://exec.test/cb"],
        organization_ids=[org.id],
        webhook_url="https://exec.test/hooks",
        seal=lambda s: box.encrypt(s, "webhook"),
    )
    for _ in range(3):
        organizations.set_default_seat(store, clock, audit.CLI, org.id, "full")
    assert webhooks.sync_endpoints(store, clock.now()) == 1
    return client.id, clock


def test_backoff_grows_with_jitter_and_is_capped() -> None:
    policy = RetryPolicy(base_seconds=5, max_seconds=3600)
    assert policy.delay(1, lambda: 0.0) == 2.5 and policy.delay(1, lambda: 1.0) == 5
    assert policy.delay(4, lambda: 0.0) == 20 and policy.delay(4, lambda: 1.0) == 40
    assert policy.delay(30, lambda: 1.0) == 3600 and policy.delay(30, lambda: 0.0) == 1800


def test_lease_admits_one_worker_until_it_expires(
    store: SQLiteStore, endpoint: tuple[str, FixedClock]
) -> None:
    client_id, clock = endpoint
    assert webhooks.due_endpoints(store, clock.now()) == [client_id]
    assert webhooks.acquire(store, client_id, "w1", clock.now())
    assert not webhooks.acquire(store, client_id, "w2", clock.now())
    assert webhooks.due_endpoints(store, clock.now()) == []
    assert webhooks.next_work(store, client_id, "w2", clock.now(), 10) == []
    work = webhooks.next_work(store, client_id, "w1", clock.now(), 10)
    assert [w.event.type for w in work] == ["organization.created"] + ["organization.updated"] * 3
    clock.advance(webhooks.LEASE_SECONDS + 1)  # w1 stalled: its lease lapses
    assert webhooks.acquire(store, client_id, "w2", clock.now())
    # The stale worker's late answer moves nothing; w2 sends the same event again.
    assert not webhooks.record_outcome(store, clock, work[0], "w1", OK, RetryPolicy(), lambda: 0.5)
    assert store.webhooks.state(client_id).acked_seq == 0
    again = webhooks.next_work(store, client_id, "w2", clock.now(), 10)
    assert again[0].event.id == work[0].event.id
    assert webhooks.record_outcome(store, clock, again[0], "w2", OK, RetryPolicy(), lambda: 0.5)
    assert store.webhooks.state(client_id).acked_seq == again[0].event.seq


def test_an_hour_down_loses_nothing_and_three_days_mark_failing(
    store: SQLiteStore, endpoint: tuple[str, FixedClock]
) -> None:
    client_id, clock = endpoint
    policy = RetryPolicy(base_seconds=5, max_seconds=3600, failing_after_seconds=3 * 86400)
    attempts = 0

    def fail_until(deadline: float) -> None:
        nonlocal attempts
        while clock.now() < deadline:
            state = store.webhooks.state(client_id)
            clock.current = max(clock.now(), state.next_attempt_at)
            assert webhooks.acquire(store, client_id, "w", clock.now())
            work = webhooks.next_work(store, client_id, "w", clock.now(), 10)
            assert not webhooks.record_outcome(
                store, clock, work[0], "w", DOWN, policy, lambda: 0.5
            )
            webhooks.release(store, client_id, "w")
            attempts += 1

    fail_until(T0 + 3600)
    state = store.webhooks.state(client_id)
    assert state.state == "retrying" and state.acked_seq == 0 and 5 <= attempts <= 20
    assert state.next_attempt_at - clock.now() <= 3600
    fail_until(T0 + 3 * 86400 + 1)
    state = store.webhooks.state(client_id)
    assert state.state == "failing"
    failing = [e for e in store.events.after(0, 100) if e.type == "webhook_endpoint.failing"]
    assert len(failing) == 1 and failing[0].data["client_id"] == client_id
    # Once the receiver answers, every event is still there, in order.
    clock.current = state.next_attempt_at
    assert webhooks.acquire(store, client_id, "w", clock.now())
    sent = []
    while work := webhooks.next_work(store, client_id, "w", clock.now(), 10):
        for item in work:
            assert webhooks.record_outcome(store, clock, item, "w", OK, policy, lambda: 0.5)
            sent.append(item.event.id)
    org_events = [e.id for e in store.events.after(0, 100) if e.organization_id]
    assert sent == org_events
    assert store.webhooks.state(client_id).state == "ok"


def test_signature_matches_the_standard_library() -> None:
    from datetime import UTC, datetime

    from standardwebhooks import Webhook

    secret = webhooks.new_secret()
    body = b'{"id":"evt_1","type":"organization.updated"}'
    ours = webhooks.sign(secret, "evt_1", 1_700_000_000, body)
    theirs = Webhook(secret).sign(
        "evt_1", datetime.fromtimestamp(1_700_000_000, UTC), body.decode()
    )
    assert ours == theirs


def test_excerpt_is_at_most_its_bytes_on_a_character_boundary() -> None:
    limit = webhooks.EXCERPT_BYTES
    assert webhooks.excerpt(b"a" * (limit + 100)) == "a" * limit
    # Invalid UTF-8 becomes U+FFFD (3 bytes each): still no more than the limit.
    assert len(webhooks.excerpt(b"\xff" * (limit + 1)).encode()) <= limit
    # A multi-byte character cut by the limit is dropped, not half kept.
    assert webhooks.excerpt(b"a" * (limit - 1) + "é".encode() * 3) == "a" * (limit - 1)
    assert webhooks.clip_excerpt("€" * 200) == "€" * (limit // 3)


def test_the_delivery_log_never_stores_more_than_the_excerpt(
    store: SQLiteStore, endpoint: tuple[str, FixedClock]
) -> None:
    """Whoever writes an attempt, the stored excerpt (which Exec can read) is clipped."""
    client_id, clock = endpoint
    assert webhooks.acquire(store, client_id, "w", clock.now())
    work = webhooks.next_work(store, client_id, "w", clock.now(), 1)[0]
    big = Outcome(False, 500, 1.0, "é" * 2000, "HTTP 500")
    assert not webhooks.record_outcome(store, clock, work, "w", big, RetryPolicy(), lambda: 0.5)
    logged = store.webhooks.deliveries(client_id, 10)
    assert [d.response_excerpt for d in logged] == ["é" * (webhooks.EXCERPT_BYTES // 2)]
