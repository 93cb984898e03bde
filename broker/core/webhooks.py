"""Webhook delivery rules: signing, the cursor per endpoint, retries, failing endpoints.

Design (docs/api/webhooks.md). Each client with a webhook URL is one endpoint with one
cursor, `acked_seq`, over the events table. The worker that holds the endpoint's lease
(an atomic UPDATE ... WHERE lease_expires_at < now, so one worker at a time across
processes) sends the first event after the cursor that belongs to one of the client's
organizations, and moves the cursor past it only on a 2xx. So events reach an endpoint
strictly in commit order (hence in order per organization), none is skipped, and an
event is re-sent until acknowledged: at-least-once, with `webhook-id` = the event id
for the receiver's de-duplication. A failure schedules a retry with exponential backoff
and jitter (capped); when the head event has failed for `failing_after` (3 days by
default) the endpoint is marked failing and a `webhook_endpoint.failing` event is
recorded for the UI. Retries continue at the capped interval: nothing is dropped
before the events retention purges it.

Signatures follow Standard Webhooks: `webhook-signature: v1,<base64 HMAC-SHA256 over
"{id}.{timestamp}.{body}">` with the secret `whsec_<base64 key>`.

The URL is the admin's, but what it answers is readable by Exec (the delivery log keeps
an excerpt), so delivery is SSRF-safe (DESIGN.md §6, the worker uses broker.web.safe_http):
HTTPS only, a URL resolving to a private, loopback or link-local address is refused unless
its host is on the network allow-list (a failed attempt logged as `BLOCKED_ERROR`, never
a request), no redirect followed, and at most `EXCERPT_BYTES` of an answer ever kept.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from broker.clock import Clock, iso
from broker.core import audit, events
from broker.core.models import Event
from broker.core.ports import Store, WebhookDelivery, WebhookEndpointState
from broker.errors import InvalidInput, NotFound
from broker.ids import new_id

SECRET_PREFIX = "whsec_"
SECRET_CONTEXT = "webhook"
LEASE_SECONDS = 60.0  # longer than one HTTP attempt (timeout) plus the store writes
EXCERPT_BYTES = 500  # of an answer, kept in the delivery log (which Exec can read)
BLOCKED_ERROR = (
    "blocked: the webhook URL resolves to a private address not on the network allow-list"
)


@dataclass(frozen=True)
class RetryPolicy:
    base_seconds: float = 5.0
    max_seconds: float = 3600.0
    failing_after_seconds: float = 3 * 86400.0

    def delay(self, failures: int, rand: Callable[[], float]) -> float:
        """Exponential backoff with "equal jitter": half fixed, half random, so that
        retries of many endpoints spread out but never come sooner than half the step."""
        step = min(self.max_seconds, self.base_seconds * 2 ** max(0, failures - 1))
        return step / 2 + rand() * step / 2


@dataclass(frozen=True)
class Work:
    """One message to send: the next event of the stream, or a manual re-send."""

    client_id: str
    url: str
    secret_enc: str
    event: Event
    resend_id: str | None = None


@dataclass(frozen=True)
class Outcome:
    """What one HTTP attempt got (the edge measures it)."""

    ok: bool
    http_status: int | None
    latency_ms: float
    response_excerpt: str
    error: str | None = None


def excerpt(raw: bytes) -> str:
    """What the delivery log keeps of an answer: its first `EXCERPT_BYTES` as text
    (invalid UTF-8 replaced), never longer than `EXCERPT_BYTES` once encoded."""
    return clip_excerpt(raw[:EXCERPT_BYTES].decode("utf-8", "replace"))


def clip_excerpt(text: str) -> str:
    """`text` cut to `EXCERPT_BYTES` of UTF-8 on a character boundary (U+FFFD takes three
    bytes, so decoded text can be longer than the bytes it came from)."""
    return text.encode()[:EXCERPT_BYTES].decode("utf-8", "ignore")


# -- secrets and signatures ------------------------------------------------------------


def new_secret() -> str:
    """`whsec_` + standard base64 of 32 random bytes, the form Standard Webhooks libraries
    decode (they base64-decode what follows the prefix and use the bytes as HMAC key)."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def _key(secret: str) -> bytes:
    if not secret.startswith(SECRET_PREFIX):
        raise InvalidInput("webhook secrets start with whsec_")
    return base64.b64decode(secret[len(SECRET_PREFIX) :])


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(_key(secret), f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256)
    return "v1," + base64.b64encode(mac.digest()).decode()


def headers(secret: str, msg_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(secret, msg_id, timestamp, body),
        "content-type": "application/json",
    }


def message(event: Event) -> dict[str, Any]:
    """The JSON Exec receives for an event, by webhook and by the events API alike."""
    return {
        "object": "event",
        "id": event.id,
        "type": event.type,
        "organization_id": event.organization_id,
        "created_at": iso(event.created_at),
        "data": event.data,
    }


# -- the worker's steps (each runs on the store thread) --------------------------------


def sync_endpoints(store: Store, now: float) -> int:
    """Give every client with a webhook URL its cursor row; return how many were added."""
    missing = store.webhooks.clients_without_state()
    if not missing:
        return 0
    with store.transaction():
        for client_id in missing:
            store.webhooks.create_state(client_id, now)
    return len(missing)


def due_endpoints(store: Store, now: float) -> list[str]:
    """Endpoints whose retry time has come, that are not leased and have work waiting."""
    due = []
    for state in store.webhooks.states():
        if state.next_attempt_at > now or state.lease_expires_at > now:
            continue
        if store.webhooks.pending_resends(state.client_id, 1) or _next_events(store, state, 1):
            due.append(state.client_id)
    return due


def acquire(store: Store, client_id: str, owner: str, now: float) -> bool:
    with store.transaction():
        return store.webhooks.take_lease(client_id, owner, now, now + LEASE_SECONDS)


def release(store: Store, client_id: str, owner: str) -> None:
    with store.transaction():
        store.webhooks.release_lease(client_id, owner)


def _next_events(store: Store, state: WebhookEndpointState, limit: int) -> list[Event]:
    client = store.clients.get(state.client_id)
    if not client.organization_ids:
        return []
    return store.events.after(state.acked_seq, limit, organization_ids=client.organization_ids)


def next_work(store: Store, client_id: str, owner: str, now: float, limit: int) -> list[Work]:
    """The next messages for a leased endpoint: manual re-sends first, then the stream in
    seq order. Empty when there is nothing to do or the lease was lost."""
    state = store.webhooks.state(client_id)
    if state.lease_owner != owner or state.lease_expires_at <= now:
        return []
    client = store.clients.get(client_id)
    if not client.webhook_url or not client.webhook_secret_enc:
        return []
    work = []
    for delivery in store.webhooks.pending_resends(client_id, limit):
        found = store.events.after(delivery.event_seq - 1, 1)
        if found and found[0].seq == delivery.event_seq:
            work.append(
                Work(
                    client_id, client.webhook_url, client.webhook_secret_enc, found[0], delivery.id
                )
            )
        else:  # purged by retention since the re-send was asked for
            with store.transaction():
                store.webhooks.finish_delivery(
                    delivery.id,
                    ok=False,
                    http_status=None,
                    latency_ms=0.0,
                    excerpt="",
                    error="event no longer retained",
                    at=now,
                )
    if work:
        return work
    return [
        Work(client_id, client.webhook_url, client.webhook_secret_enc, e)
        for e in _next_events(store, state, limit)
    ]


def record_outcome(
    store: Store,
    clock: Clock,
    work: Work,
    owner: str,
    outcome: Outcome,
    policy: RetryPolicy,
    rand: Callable[[], float],
) -> bool:
    """Log the attempt and move the endpoint on; return True to continue with the next
    message, False to stop (failure scheduled for retry, or the lease was lost)."""
    now = clock.now()
    with store.transaction():
        state = store.webhooks.state(work.client_id)
        if state.lease_owner != owner:
            return False  # another worker took over after our lease lapsed: it re-sends
        if work.resend_id is not None:
            store.webhooks.finish_delivery(
                work.resend_id,
                ok=outcome.ok,
                http_status=outcome.http_status,
                latency_ms=outcome.latency_ms,
                excerpt=outcome.response_excerpt,
                error=outcome.error,
                at=now,
            )
            store.webhooks.extend_lease(work.client_id, owner, now + LEASE_SECONDS)
            return True  # a failed manual re-send is logged, not retried
        store.webhooks.log_delivery(_delivery(work, outcome, state.attempts + 1, now))
        if outcome.ok:
            store.webhooks.acknowledge(
                work.client_id, owner, work.event.seq, now, now + LEASE_SECONDS
            )
            return True
        failures = state.attempts + 1
        first = state.first_failure_at if state.first_failure_at is not None else now
        failing = now - first >= policy.failing_after_seconds
        store.webhooks.schedule_retry(
            work.client_id,
            attempts=failures,
            first_failure_at=first,
            next_attempt_at=now + policy.delay(failures, rand),
            state="failing" if failing else "retrying",
            error=outcome.error or f"HTTP {outcome.http_status}",
            at=now,
        )
        if failing and state.state != "failing":
            client = store.clients.get(work.client_id)
            events.record(
                store,
                "webhook_endpoint.failing",
                None,
                {
                    "object": "webhook_endpoint",
                    "client_id": work.client_id,
                    "url": client.webhook_url,
                    "failing_since": iso(first),
                    "stuck_event_id": work.event.id,
                    "attempts": failures,
                    "last_error": outcome.error or f"HTTP {outcome.http_status}",
                },
                now,
            )
            audit.record(
                store,
                audit.SYSTEM,
                "webhook.endpoint_failing",
                now,
                target=work.client_id,
                attempts=failures,
            )
        return False


def record_outcomes(
    store: Store,
    clock: Clock,
    done: list[tuple[Work, Outcome]],
    owner: str,
    policy: RetryPolicy,
    rand: Callable[[], float],
) -> bool:
    """`record_outcome` for several attempts in one transaction (the worker acknowledges
    in small batches: one write per batch instead of per event). A crash before the
    batch commits only means those events are sent again: still at-least-once."""
    with store.transaction():
        for work, outcome in done:
            if not record_outcome(store, clock, work, owner, outcome, policy, rand):
                return False
    return True


def _delivery(work: Work, outcome: Outcome, attempt: int, now: float) -> WebhookDelivery:
    return WebhookDelivery(
        id=new_id("dlv"),
        client_id=work.client_id,
        event_seq=work.event.seq,
        event_id=work.event.id,
        event_type=work.event.type,
        kind="stream",
        status="succeeded" if outcome.ok else "failed",
        attempt=attempt,
        url=work.url,
        http_status=outcome.http_status,
        latency_ms=outcome.latency_ms,
        response_excerpt=outcome.response_excerpt,
        error=outcome.error,
        created_at=now,
        finished_at=now,
    )


def purge(store: Store, now: float, retention_days: int) -> int:
    """Drop events and delivery logs older than the retention."""
    cutoff = now - retention_days * 86400
    with store.transaction():
        removed = store.events.purge_before(cutoff)
        store.webhooks.purge_deliveries_before(cutoff)
    return removed


# -- operator actions (CLI, UI) ---------------------------------------------------------


def endpoint(store: Store, client_id: str) -> dict[str, Any]:
    """The endpoint as the CLI and the API show it (never the secret)."""
    client = store.clients.get(client_id)
    if not client.webhook_url:
        raise NotFound(f"client {client_id} has no webhook endpoint")
    try:
        state = store.webhooks.state(client_id)
    except NotFound:
        state = None
    head = store.events.after(
        state.acked_seq if state else 0, 1, organization_ids=client.organization_ids
    )
    return {
        "object": "webhook_endpoint",
        "client_id": client.id,
        "url": client.webhook_url,
        "state": state.state if state else "ok",
        "acked_event_seq": state.acked_seq if state else 0,
        "next_event_id": head[0].id if head and client.organization_ids else None,
        "consecutive_failures": state.attempts if state else 0,
        "failing_since": iso(state.first_failure_at)
        if state and state.state == "failing" and state.first_failure_at
        else None,
        "next_attempt_at": iso(state.next_attempt_at) if state and state.attempts else None,
        "last_success_at": iso(state.last_success_at) if state and state.last_success_at else None,
        "last_error": state.last_error if state else None,
    }


def deliveries(store: Store, client_id: str, limit: int = 50) -> list[WebhookDelivery]:
    store.clients.get(client_id)
    return store.webhooks.deliveries(client_id, limit)


def resend(
    store: Store, clock: Clock, actor: audit.Actor, client_id: str, event_id: str
) -> WebhookDelivery:
    """Queue a manual re-send of one event to the client's endpoint (out of band: the
    stream's cursor does not move)."""
    now = clock.now()
    with store.transaction():
        client = store.clients.get(client_id)
        if not client.webhook_url:
            raise NotFound(f"client {client_id} has no webhook endpoint")
        event = store.webhooks.event_by_id(event_id)
        if event.organization_id not in client.organization_ids:
            raise NotFound(f"event {event_id[:64]!r} not found")
        delivery = WebhookDelivery(
            id=new_id("dlv"),
            client_id=client_id,
            event_seq=event.seq,
            event_id=event.id,
            event_type=event.type,
            kind="resend",
            status="pending",
            attempt=1,
            url=client.webhook_url,
            created_at=now,
        )
        store.webhooks.log_delivery(delivery)
        audit.record(
            store,
            actor,
            "webhook.resend_requested",
            now,
            organization_id=event.organization_id,
            target=client_id,
            event_id=event.id,
        )
    return delivery


def rotate_secret(
    store: Store, clock: Clock, actor: audit.Actor, client_id: str, seal: Callable[[str], str]
) -> str:
    """A new signing secret, returned once; deliveries after commit use it."""
    secret = new_secret()
    now = clock.now()
    with store.transaction():
        client = store.clients.get(client_id)
        if not client.webhook_url:
            raise NotFound(f"client {client_id} has no webhook endpoint")
        store.clients.update(client_id, webhook_secret_enc=seal(secret), updated_at=now)
        audit.record(store, actor, "webhook.secret_rotated", now, target=client_id)
    return secret
