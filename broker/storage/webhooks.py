"""Webhook endpoint cursors, leases and the delivery log; the events API's page query.

The lease is one conditional UPDATE (`... WHERE lease_expires_at <= now OR lease_owner
= me`): SQLite runs it under the write lock, so of two workers racing for an endpoint
exactly one sees a changed row. The events page and the snapshot's highest seq come from
ONE statement, hence one read snapshot: the returned head never covers a row the page
could not see (storage/events.py explains why seq order is commit order). Response
excerpts are clipped to `EXCERPT_BYTES` on every write, whoever wrote them: Exec reads
them back through the deliveries API.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any

from broker.core.models import Event
from broker.core.ports import WebhookDelivery, WebhookEndpointState
from broker.core.webhooks import clip_excerpt
from broker.errors import NotFound
from broker.storage.db import Database
from broker.storage.rows import insert, loads


def _state(row: sqlite3.Row) -> WebhookEndpointState:
    return WebhookEndpointState(
        client_id=row["client_id"],
        acked_seq=row["acked_seq"],
        state=row["state"],
        attempts=row["attempts"],
        next_attempt_at=row["next_attempt_at"],
        lease_owner=row["lease_owner"],
        lease_expires_at=row["lease_expires_at"],
        first_failure_at=row["first_failure_at"],
        last_success_at=row["last_success_at"],
        last_error=row["last_error"],
    )


def _delivery(row: sqlite3.Row) -> WebhookDelivery:
    return WebhookDelivery(
        id=row["id"],
        client_id=row["client_id"],
        event_seq=row["event_seq"],
        event_id=row["event_id"],
        event_type=row["event_type"],
        kind=row["kind"],
        status=row["status"],
        attempt=row["attempt"],
        url=row["url"],
        created_at=row["created_at"],
        http_status=row["http_status"],
        latency_ms=row["latency_ms"],
        response_excerpt=row["response_excerpt"],
        error=row["error"],
        finished_at=row["finished_at"],
    )


def _event(row: sqlite3.Row) -> Event:
    return Event(
        seq=row["seq"],
        id=row["id"],
        type=row["type"],
        organization_id=row["organization_id"],
        data=loads(row["data"], {}),
        created_at=row["created_at"],
    )


def _marks(values: Sequence[Any]) -> str:
    return ", ".join("?" for _ in values)


class WebhookRepo:
    def __init__(self, db: Database) -> None:
        self.db = db

    # -- cursors and leases ----------------------------------------------------------

    def clients_without_state(self) -> list[str]:
        rows = self.db.all(
            "SELECT c.id FROM clients c LEFT JOIN webhook_endpoints w ON w.client_id = c.id"
            " WHERE c.webhook_url IS NOT NULL AND w.client_id IS NULL ORDER BY c.id"
        )
        return [r[0] for r in rows]

    def create_state(self, client_id: str, now: float) -> None:
        self.db.execute(
            "INSERT OR IGNORE INTO webhook_endpoints (client_id, created_at, updated_at)"
            " VALUES (?, ?, ?)",
            (client_id, now, now),
        )

    def states(self) -> list[WebhookEndpointState]:
        rows = self.db.all(
            "SELECT w.* FROM webhook_endpoints w JOIN clients c ON c.id = w.client_id"
            " WHERE c.webhook_url IS NOT NULL AND c.webhook_secret_enc IS NOT NULL"
            " ORDER BY w.client_id"
        )
        return [_state(r) for r in rows]

    def state(self, client_id: str) -> WebhookEndpointState:
        row = self.db.one("SELECT * FROM webhook_endpoints WHERE client_id = ?", (client_id,))
        if row is None:
            raise NotFound(f"no webhook endpoint state for client {client_id}")
        return _state(row)

    def take_lease(self, client_id: str, owner: str, now: float, until: float) -> bool:
        cur = self.db.execute(
            "UPDATE webhook_endpoints SET lease_owner = ?, lease_expires_at = ?"
            " WHERE client_id = ? AND (lease_expires_at <= ? OR lease_owner = ?)",
            (owner, until, client_id, now, owner),
        )
        return cur.rowcount == 1

    def extend_lease(self, client_id: str, owner: str, until: float) -> None:
        self.db.execute(
            "UPDATE webhook_endpoints SET lease_expires_at = ?"
            " WHERE client_id = ? AND lease_owner = ?",
            (until, client_id, owner),
        )

    def release_lease(self, client_id: str, owner: str) -> None:
        self.db.execute(
            "UPDATE webhook_endpoints SET lease_owner = NULL, lease_expires_at = 0"
            " WHERE client_id = ? AND lease_owner = ?",
            (client_id, owner),
        )

    def acknowledge(
        self, client_id: str, owner: str, seq: int, now: float, lease_until: float
    ) -> None:
        # `acked_seq < ?` keeps the cursor monotonic even if a stale worker got here.
        self.db.execute(
            "UPDATE webhook_endpoints SET acked_seq = ?, state = 'ok', attempts = 0,"
            " first_failure_at = NULL, next_attempt_at = 0, last_success_at = ?,"
            " last_error = NULL, lease_expires_at = ?, updated_at = ?"
            " WHERE client_id = ? AND lease_owner = ? AND acked_seq < ?",
            (seq, now, lease_until, now, client_id, owner, seq),
        )

    def schedule_retry(
        self,
        client_id: str,
        *,
        attempts: int,
        first_failure_at: float,
        next_attempt_at: float,
        state: str,
        error: str,
        at: float,
    ) -> None:
        self.db.execute(
            "UPDATE webhook_endpoints SET attempts = ?, first_failure_at = ?,"
            " next_attempt_at = ?, state = ?, last_error = ?, updated_at = ?"
            " WHERE client_id = ?",
            (attempts, first_failure_at, next_attempt_at, state, error[:500], at, client_id),
        )

    # -- the delivery log ------------------------------------------------------------

    def log_delivery(self, delivery: WebhookDelivery) -> None:
        insert(
            self.db,
            "webhook_deliveries",
            {
                "id": delivery.id,
                "client_id": delivery.client_id,
                "event_seq": delivery.event_seq,
                "event_id": delivery.event_id,
                "event_type": delivery.event_type,
                "kind": delivery.kind,
                "status": delivery.status,
                "attempt": delivery.attempt,
                "url": delivery.url,
                "http_status": delivery.http_status,
                "latency_ms": delivery.latency_ms,
                "response_excerpt": None
                if delivery.response_excerpt is None
                else clip_excerpt(delivery.response_excerpt),
                "error": delivery.error,
                "created_at": delivery.created_at,
                "finished_at": delivery.finished_at,
            },
            f"delivery {delivery.id}",
        )

    def finish_delivery(
        self,
        delivery_id: str,
        *,
        ok: bool,
        http_status: int | None,
        latency_ms: float,
        excerpt: str,
        error: str | None,
        at: float,
    ) -> None:
        self.db.execute(
            "UPDATE webhook_deliveries SET status = ?, http_status = ?, latency_ms = ?,"
            " response_excerpt = ?, error = ?, finished_at = ? WHERE id = ?",
            (
                "succeeded" if ok else "failed",
                http_status,
                latency_ms,
                clip_excerpt(excerpt),
                error,
                at,
                delivery_id,
            ),
        )

    def pending_resends(self, client_id: str, limit: int) -> list[WebhookDelivery]:
        rows = self.db.all(
            "SELECT * FROM webhook_deliveries WHERE client_id = ? AND status = 'pending'"
            " ORDER BY created_at, id LIMIT ?",
            (client_id, limit),
        )
        return [_delivery(r) for r in rows]

    def deliveries(self, client_id: str, limit: int) -> list[WebhookDelivery]:
        rows = self.db.all(
            "SELECT * FROM webhook_deliveries WHERE client_id = ?"
            " ORDER BY created_at DESC, id DESC LIMIT ?",
            (client_id, limit),
        )
        return [_delivery(r) for r in rows]

    def purge_deliveries_before(self, at: float) -> int:
        return self.db.execute(
            "DELETE FROM webhook_deliveries WHERE created_at < ?", (at,)
        ).rowcount

    # -- events, as the API reads them ---------------------------------------------

    def event_by_id(self, event_id: str) -> Event:
        row = self.db.one("SELECT * FROM events WHERE id = ?", (event_id,))
        if row is None:
            raise NotFound(f"event {event_id[:64]!r} not found")
        return _event(row)

    def event_page(
        self, after: int, limit: int, types: Sequence[str], organization_ids: Sequence[str]
    ) -> tuple[list[Event], int]:
        if not organization_ids:
            return [], after
        where = f"seq > ? AND organization_id IN ({_marks(organization_ids)})"
        params: list[Any] = [after, *organization_ids]
        if types:
            where += f" AND type IN ({_marks(types)})"
            params += list(types)
        # The head is read by the same statement as the page: one snapshot.
        rows = self.db.all(
            "SELECT e.*, h.head FROM (SELECT coalesce(max(seq), 0) AS head FROM events) h"
            f" LEFT JOIN (SELECT * FROM events WHERE {where} ORDER BY seq LIMIT ?) e"
            " ON 1 ORDER BY e.seq",
            [*params, limit],
        )
        head = int(rows[0]["head"]) if rows else after
        return [_event(r) for r in rows if r["seq"] is not None], head
