"""Fixtures for the setup UI over real HTTP: a broker whose DNS resolver is a
FakeDnsServer on loopback, and an admin browser-like client (cookies + CSRF)."""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from broker.clock import FixedClock
from broker.core import admins, audit
from broker.crypto.secrets import hash_password
from broker.settings import Settings
from tests.conftest import RunningBroker, make_home
from tests.fakes.dns_server import FakeDnsServer

PASSWORD = "correct horse battery staple"
_CSRF = re.compile(r'name="csrf" value="([^"]*)"')


@pytest.fixture
def dns() -> Iterator[FakeDnsServer]:
    with FakeDnsServer() as server:
        yield server


@pytest.fixture
def settings(
    tmp_path: Path, port: int, monkeypatch: pytest.MonkeyPatch, dns: FakeDnsServer
) -> Settings:
    return make_home(
        tmp_path,
        port,
        monkeypatch,
        BROKER_DNS_RESOLVERS=dns.address,
        BROKER_DNS_TIMEOUT_SECONDS="1",
    )


@pytest.fixture
def clock(broker: RunningBroker) -> FixedClock:
    """Pin the running broker's clock so that tests can move time (idle timeout)."""
    fixed = FixedClock(time.time())
    broker.services.clock = fixed
    return fixed


class AdminClient:
    """Cookies and the last page's CSRF token, as a browser would keep them."""

    def __init__(self, base: str, session: aiohttp.ClientSession) -> None:
        self.base = base
        self.http = session
        self.csrf = ""
        self.last = ""

    async def get(self, path: str, **kw: Any) -> aiohttp.ClientResponse:
        response = await self.http.get(self.base + path, **kw)
        self.last = await response.text()
        found = _CSRF.search(self.last)
        if found:
            self.csrf = found[1]
        return response

    async def post(
        self, path: str, data: dict[str, Any] | None = None, *, csrf: str | None = None, **kw: Any
    ) -> aiohttp.ClientResponse:
        form = dict(data or {})
        form.setdefault("csrf", self.csrf if csrf is None else csrf)
        response = await self.http.post(self.base + path, data=form, **kw)
        self.last = await response.text()
        found = _CSRF.search(self.last)
        if found:
            self.csrf = found[1]
        return response

    async def sign_in(self, username: str = "alice", password: str = PASSWORD) -> int:
        await self.get("/admin/login")
        response = await self.post("/admin/login", {"username": username, "password": password})
        return response.status


def create_admin(broker: RunningBroker, username: str = "alice") -> None:
    admins.create_admin(
        broker.store, broker.services.clock, audit.CLI, username, PASSWORD, hash_password
    )


async def new_client(broker: RunningBroker) -> AdminClient:
    jar = aiohttp.CookieJar(unsafe=True)  # cookies for 127.0.0.1, as a browser keeps them
    return AdminClient(broker.url, aiohttp.ClientSession(cookie_jar=jar))


@pytest.fixture
async def anon(broker: RunningBroker) -> AsyncIterator[AdminClient]:
    client = await new_client(broker)
    try:
        yield client
    finally:
        await client.http.close()


@pytest.fixture
async def admin(broker: RunningBroker, anon: AdminClient) -> AdminClient:
    create_admin(broker)
    assert await anon.sign_in() == 200
    return anon
