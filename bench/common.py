"""Shared bench helpers: a fresh broker home in a temp dir and `exec-broker serve
--workers N` as a real child process on a free loopback port, ready when /readyz says so.

    with broker_home() as home:            # init'ed home; home.settings, home.url
        ...prepare data through the core on home.store...
        with serve(home, workers=2):       # real processes; stopped on exit
            ...load home.url...
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
BIN = Path(sys.executable).parent / "exec-broker"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Home:
    root: Path
    port: int
    settings: Any
    store: Any
    env: dict[str, str]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@contextlib.contextmanager
def broker_home(**env: str) -> Iterator[Home]:
    """`exec-broker init` in a temp dir (quiet logs unless told otherwise)."""
    from broker import settings as settings_module
    from broker.cli import main as cli_main
    from broker.storage.store import SQLiteStore

    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        root, port = Path(tmp), free_port()
        (root / "config").mkdir()
        example = ROOT / "config" / "broker.example.toml"
        (root / "config" / "broker.example.toml").write_text(example.read_text())
        config = root / "config" / "broker.toml"
        os.environ["BROKER_CONFIG"] = str(config)
        with contextlib.redirect_stdout(open(os.devnull, "w")):
            assert cli_main(["init", "--public-url", f"http://127.0.0.1:{port}"]) == 0
        child_env = {
            **os.environ,
            "BROKER_CONFIG": str(config),
            "BROKER_LOG_LEVEL": "warning",
            **env,
        }
        settings = settings_module.load(config)
        store = SQLiteStore.open(settings.database)
        try:
            yield Home(root, port, settings, store, child_env)
        finally:
            store.close()


def wait_ready(url: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url + "/readyz", timeout=1) as resp:
                if resp.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"broker at {url} not ready after {timeout} s")


@contextlib.contextmanager
def serve(home: Home, workers: int = 1) -> Iterator[subprocess.Popen[bytes]]:
    """`exec-broker serve --workers N` on the home's port until the block ends."""
    proc = subprocess.Popen(
        [str(BIN), "serve", "--workers", str(workers), "--port", str(home.port)],
        env=home.env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        wait_ready(home.url)
        if workers > 1:
            time.sleep(1.0)  # let every worker bind (SO_REUSEPORT) before load starts
        yield proc
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def sso_tenant(store: Any, name: str, domain: str) -> tuple[str, str]:
    """An organization ready for logins: `domain` verified, an active, tested SAML
    connection, SSO on. Returns (organization id, connection id)."""
    from broker.clock import SystemClock
    from broker.core import audit, domains, organizations, policy
    from broker.core.models import Connection
    from broker.ids import new_id

    clock = SystemClock()
    org = organizations.create_organization(store, clock, audit.CLI, name)
    record = domains.add_domain(store, clock, audit.CLI, org.id, domain)
    now = clock.now()
    connection = Connection(
        id=new_id("conn"),
        organization_id=org.id,
        type="saml",
        preset="okta",
        name="Okta",
        state="active",
        config={},
        created_at=now,
        updated_at=now,
        tested_at=now,
    )
    with store.transaction():
        store.domains.update(record.id, state="verified", verified_at=now)
        store.connections.create(connection)
    policy.enable_sso(store, clock, audit.CLI, org.id)
    return org.id, connection.id
