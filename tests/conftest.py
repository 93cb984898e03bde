"""Shared fixtures: an initialised broker home in a temp dir, its store, and the real
server running on 127.0.0.1 with a free port (the issuer is that URL)."""

from __future__ import annotations

import asyncio.selector_events
import ipaddress
import socket
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from aiohttp import web

from broker import settings as settings_module
from broker.app import build_services, make_app
from broker.cli import main as cli_main
from broker.settings import Settings
from broker.storage.store import SQLiteStore
from broker.web.services import Services


# Tests and benchmarks may reach loopback only. Refuse any other destination inside the
# test process, so that a regression in the SSRF checks can never make a test dial out.
def _loopback_only(address: object) -> None:
    if not isinstance(address, tuple) or not address:
        return  # AF_UNIX and friends
    host = str(address[0]).split("%")[0]
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return  # a name: resolution, not a connection, happens first
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    if not ip.is_loopback:
        raise ConnectionRefusedError(f"tests may only connect to loopback, not {host}")


_socket_connect = socket.socket.connect
_socket_connect_ex = socket.socket.connect_ex
_loop_sock_connect = asyncio.selector_events.BaseSelectorEventLoop.sock_connect


def _guarded_connect(self: socket.socket, address: object) -> None:
    _loopback_only(address)
    return _socket_connect(self, address)  # type: ignore[arg-type]


def _guarded_connect_ex(self: socket.socket, address: object) -> int:
    _loopback_only(address)
    return _socket_connect_ex(self, address)  # type: ignore[arg-type]


async def _guarded_sock_connect(self: object, sock: socket.socket, address: object) -> None:
    _loopback_only(address)
    return await _loop_sock_connect(self, sock, address)  # type: ignore[arg-type]


socket.socket.connect = _guarded_connect  # type: ignore[method-assign]
socket.socket.connect_ex = _guarded_connect_ex  # type: ignore[method-assign]
asyncio.selector_events.BaseSelectorEventLoop.sock_connect = _guarded_sock_connect  # type: ignore[method-assign]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def make_home(root: Path, port: int, monkeypatch: pytest.MonkeyPatch, **env: str) -> Settings:
    """`exec-broker init` in `root`, exactly as an admin would run it."""
    config = root / "config" / "broker.toml"
    monkeypatch.setenv("BROKER_CONFIG", str(config))
    monkeypatch.setenv("BROKER_PORT", str(port))
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    (root / "config").mkdir(parents=True, exist_ok=True)
    example = Path(__file__).resolve().parent.parent / "config" / "broker.example.toml"
    (root / "config" / "broker.example.toml").write_text(example.read_text())
    assert cli_main(["init", "--public-url", f"http://127.0.0.1:{port}"]) == 0
    return settings_module.load(config)


@pytest.fixture
def port() -> int:
    return free_port()


@pytest.fixture
def settings(tmp_path: Path, port: int, monkeypatch: pytest.MonkeyPatch) -> Settings:
    return make_home(tmp_path, port, monkeypatch)


@pytest.fixture
def store(settings: Settings) -> Iterator[SQLiteStore]:
    opened = SQLiteStore.open(settings.database)
    yield opened
    opened.close()


@dataclass
class RunningBroker:
    url: str
    settings: Settings
    services: Services
    app: web.Application

    @property
    def store(self) -> SQLiteStore:
        return self.services.store  # type: ignore[return-value]


@pytest.fixture
async def broker(settings: Settings, port: int) -> AsyncIterator[RunningBroker]:
    """The real app on a real socket (127.0.0.1:port), background tasks included."""
    services = build_services(settings)
    app = make_app(settings, services)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    try:
        yield RunningBroker(f"http://127.0.0.1:{port}", settings, services, app)
    finally:
        await runner.cleanup()
