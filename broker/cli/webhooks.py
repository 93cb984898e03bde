"""webhook show · deliveries · resend · rotate-secret (a client's webhook endpoint).

Twins of the UI's webhook page and of /api/v1/webhook_endpoint. `resend` queues the
event; the running server's delivery worker sends it (and logs the attempt).
"""

from __future__ import annotations

import argparse
from typing import Any

from broker.cli.common import Command, clock, emit, load_settings, open_store, table
from broker.clock import iso
from broker.core import audit, webhooks
from broker.crypto.secrets import SecretBox


def register(sub: Any) -> None:
    cli = sub.add_parser("webhook", help="a client's webhook endpoint").add_subparsers(
        dest="webhook_command", metavar="ACTION", required=True
    )
    p = cli.add_parser("show", help="endpoint URL, delivery state, cursor")
    p.add_argument("--client", required=True)
    Command(p, show)
    p = cli.add_parser("deliveries", help="the delivery log, newest first")
    p.add_argument("--client", required=True)
    p.add_argument("--limit", type=int, default=20)
    Command(p, deliveries)
    p = cli.add_parser("resend", help="queue one event to be sent again")
    p.add_argument("--client", required=True)
    p.add_argument("--event", required=True, help="event id (evt_...)")
    Command(p, resend)
    p = cli.add_parser("rotate-secret", help="new signing secret, printed once")
    p.add_argument("--client", required=True)
    Command(p, rotate_secret)


def show(args: argparse.Namespace) -> int:
    store = open_store(load_settings(args))
    try:
        shown = webhooks.endpoint(store, args.client)
    finally:
        store.close()
    emit(
        args,
        shown,
        "\n".join(
            f"{k + ':':24}{'-' if v is None else v}" for k, v in shown.items() if k != "object"
        ),
    )
    return 0


def deliveries(args: argparse.Namespace) -> int:
    store = open_store(load_settings(args))
    try:
        found = webhooks.deliveries(store, args.client, max(1, min(args.limit, 1000)))
    finally:
        store.close()
    rows = [
        [
            iso(d.created_at),
            d.event_id,
            d.event_type,
            d.kind,
            d.status,
            str(d.http_status or "-"),
            f"{d.latency_ms:.0f}ms" if d.latency_ms else "-",
            (d.error or d.response_excerpt or "")[:40].replace("\n", " "),
        ]
        for d in found
    ]
    emit(
        args,
        found,
        table(rows, ["AT", "EVENT", "TYPE", "KIND", "STATUS", "HTTP", "LATENCY", "DETAIL"]),
    )
    return 0


def resend(args: argparse.Namespace) -> int:
    store = open_store(load_settings(args))
    try:
        delivery = webhooks.resend(store, clock, audit.CLI, args.client, args.event)
    finally:
        store.close()
    emit(
        args,
        delivery,
        f"queued {delivery.id}: {args.event} will be sent again to "
        f"{delivery.url} by the running server",
    )
    return 0


def rotate_secret(args: argparse.Namespace) -> int:
    settings = load_settings(args)
    box = SecretBox.load(settings.certs_dir)
    store = open_store(settings)
    try:
        secret = webhooks.rotate_secret(
            store, clock, audit.CLI, args.client, lambda s: box.encrypt(s, webhooks.SECRET_CONTEXT)
        )
    finally:
        store.close()
    emit(
        args,
        {"client_id": args.client, "webhook_secret": secret},
        f"webhook_secret: {secret}\nStore it now: it is not shown again. "
        "Deliveries from now on are signed with it.",
    )
    return 0
