"""An Exec-side consumer of the broker, runnable as is (needs aiohttp, standardwebhooks).

Two channels, use either or both:
- push: a webhook receiver that verifies the Standard Webhooks signature, drops
  duplicates by `webhook-id` (delivery is at-least-once) and answers 2xx only after the
  event is stored, so that the broker re-sends anything not yet stored;
- pull: a poller of GET /api/v1/events that keeps its cursor in a file and resumes there.

    python examples/exec_consumer.py --broker https://sso.example.com \\
        --client-id cli_... --client-secret brk_cs_... --webhook-secret whsec_... \\
        --listen 127.0.0.1:9000 --cursor-file exec-cursor.txt
"""

from __future__ import annotations

import argparse
import asyncio
import base64
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus

import aiohttp
from aiohttp import web
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError


def basic_auth(client_id: str, secret: str) -> str:
    """HTTP Basic as RFC 6749 §2.3.1 asks: each part form-encoded, then base64."""
    raw = f"{quote_plus(client_id)}:{quote_plus(secret)}".encode()
    return "Basic " + base64.b64encode(raw).decode()


def handle(event: dict[str, Any]) -> None:
    """Exec's reaction: here, print. Real code upserts the object in `event["data"]`."""
    data = event["data"]
    if event["type"] == "organization.updated" and data.get("sso_enabled"):
        print(f"{data['id']}: SSO is on, disable password sign-in")
    print(f"{event['id']} {event['type']} {event.get('organization_id')}")


def webhook_app(secret: str, seen: set[str]) -> web.Application:
    verifier = Webhook(secret)

    async def receive(request: web.Request) -> web.Response:
        body = await request.read()
        try:
            event = verifier.verify(body, dict(request.headers))
        except WebhookVerificationError:
            return web.Response(status=400, text="bad signature")
        msg_id = request.headers["webhook-id"]
        if msg_id not in seen:  # at-least-once: the same id may come again
            handle(event)
            seen.add(msg_id)
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/hooks/exec", receive)
    return app


async def poll_once(
    http: aiohttp.ClientSession, broker: str, cursor: str | None, seen: set[str]
) -> tuple[str | None, int]:
    """Read every page after `cursor`; return the new cursor and how many events came."""
    count = 0
    while True:
        params = {"limit": "500"} | ({"after": cursor} if cursor else {})
        async with http.get(f"{broker}/api/v1/events", params=params) as r:
            r.raise_for_status()
            body = await r.json()
        for event in body["data"]:
            if event["id"] not in seen:
                handle(event)
                seen.add(event["id"])
            count += 1
        cursor = body["next_cursor"]
        if not body["has_more"]:
            return cursor, count


async def main(args: argparse.Namespace) -> None:
    seen: set[str] = set()
    host, port = args.listen.rsplit(":", 1)
    runner = web.AppRunner(webhook_app(args.webhook_secret, seen))
    await runner.setup()
    await web.TCPSite(runner, host, int(port)).start()
    cursor_file = Path(args.cursor_file)
    cursor = cursor_file.read_text().strip() or None if cursor_file.exists() else None
    auth = {"Authorization": basic_auth(args.client_id, args.client_secret)}
    async with aiohttp.ClientSession(headers=auth) as http:
        while True:
            cursor, _ = await poll_once(http, args.broker.rstrip("/"), cursor, seen)
            cursor_file.write_text(cursor or "")
            await asyncio.sleep(args.interval)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--broker", required=True)
    parser.add_argument("--client-id", required=True)
    parser.add_argument("--client-secret", required=True)
    parser.add_argument("--webhook-secret", required=True)
    parser.add_argument("--listen", default="127.0.0.1:9000")
    parser.add_argument("--cursor-file", default="exec-cursor.txt")
    parser.add_argument("--interval", type=float, default=5.0)
    asyncio.run(main(parser.parse_args()))
