"""Fixtures of the API tests: a broker with fast webhook retries, organizations and
clients made through the core, a loopback webhook receiver, and HTTP helpers."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from broker.clock import SystemClock
from broker.core import audit, clients, organizations
from broker.settings import Settings
from tests.api.sink import WebhookSink
from tests.conftest import RunningBroker, make_home

clock = SystemClock()

# The receivers of these tests listen on http://127.0.0.1: plain http to loopback is an
# explicit opt-in, and 127.0.0.1 must be on the network allow-list, or the worker refuses
# to deliver (broker/api/webhook_worker.py). Set in the environment, so that the CLI
# commands a test runs see the same settings as the broker.
LOOPBACK_RECEIVERS = {
    "BROKER_WEBHOOKS_ALLOW_INSECURE_LOOPBACK": "true",
    "BROKER_NETWORK_PRIVATE_HOSTS_ALLOWLIST": "127.0.0.1",
}


@pytest.fixture
def settings(
    tmp_path: Path, port: int, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> Settings:
    """Loopback receivers allowed, and retries in tens of milliseconds so that outages fit
    in a test; a test may override more with
    `@pytest.mark.parametrize("settings", [{...}], indirect=True)`."""
    home = make_home(tmp_path, port, monkeypatch, **LOOPBACK_RECEIVERS)
    return home.with_overrides(
        webhooks__retry_base_ms=50,
        webhooks__retry_max_seconds=1,
        webhooks__timeout_seconds=1,
        webhooks__poll_interval_ms=20,
        **getattr(request, "param", {}),
    )


@dataclass
class ApiClient:
    id: str
    secret: str
    webhook_secret: str | None
    organization_ids: tuple[str, ...]

    @property
    def basic(self) -> dict[str, str]:
        raw = base64.b64encode(f"{self.id}:{self.secret}".encode()).decode()
        return {"Authorization": f"Basic {raw}"}


def make_org(broker: RunningBroker, name: str) -> str:
    return organizations.create_organization(broker.store, clock, audit.CLI, name).id


def make_client(
    broker: RunningBroker, org_ids: list[str], webhook_url: str | None = None
) -> ApiClient:
    box = broker.services.secret_box
    client, secret, wh = clients.create_client(
        broker.store,
        clock,
        audit.CLI,
        name="Exec",
        redirect_uris=["https://exec.test/cb"],
        organization_ids=org_ids,
        webhook_url=webhook_url,
        seal=lambda s: box.encrypt(s, "webhook"),
    )
    assert secret is not None
    return ApiClient(client.id, secret, wh, tuple(org_ids))


@pytest.fixture
async def sink() -> AsyncIterator[WebhookSink]:
    receiver = WebhookSink()
    await receiver.start()
    yield receiver
    await receiver.stop()
