"""`exec-broker webhook show|deliveries|resend|rotate-secret`, run as an admin would."""

from __future__ import annotations

import json

import pytest
from standardwebhooks import Webhook

from broker.cli import main as cli_main
from broker.core import audit, clients, organizations, webhooks
from broker.crypto.secrets import SecretBox
from broker.settings import Settings
from broker.storage.store import SQLiteStore
from tests.api.conftest import clock


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, object]:
    code = cli_main([*argv, "--json"])
    out = capsys.readouterr().out
    return code, json.loads(out) if out.strip() else None


def test_webhook_commands(
    store: SQLiteStore, settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    box = SecretBox.load(settings.certs_dir)
    org = organizations.create_organization(store, clock, audit.CLI, "Acme")
    client, _, first_secret = clients.create_client(
        store,
        clock,
        audit.CLI,
        name="Exec",
        redirect_uris=["https://exec.test/cb"],
        organization_ids=[org.id],
        webhook_url="https://exec.test/hooks",
        seal=lambda s: box.encrypt(s, "webhook"),
    )
    code, shown = run(capsys, "webhook", "show", "--client", client.id)
    assert code == 0 and shown["url"] == "https://exec.test/hooks" and shown["state"] == "ok"
    assert "secret" not in json.dumps(shown)
    event_id = store.events.after(0, 1)[0].id
    code, queued = run(capsys, "webhook", "resend", "--client", client.id, "--event", event_id)
    assert code == 0 and queued["kind"] == "resend" and queued["status"] == "pending"
    code, log = run(capsys, "webhook", "deliveries", "--client", client.id)
    assert code == 0 and [d["event_id"] for d in log] == [event_id]
    code, rotated = run(capsys, "webhook", "rotate-secret", "--client", client.id)
    secret = rotated["webhook_secret"]
    assert code == 0 and secret != first_secret
    stored = store.clients.get(client.id).webhook_secret_enc or ""
    assert box.decrypt(stored, "webhook") == secret
    Webhook(secret)  # the standard library accepts its format
    body = b"{}"
    sig = webhooks.sign(secret, "evt_1", 1, body)
    assert sig.startswith("v1,")
    assert cli_main(["webhook", "show", "--client", "cli_nope"]) == 1
    assert cli_main(["webhook", "resend", "--client", client.id, "--event", "evt_nope"]) == 1
