"""The sign-in throttle's settings over real HTTP (issue 8 §1, OWASP Authentication Cheat
Sheet "Account lockout"): `admin.login_max_failures` per username + address, and
`admin.login_max_failures_per_user` across addresses, so rotating them does not help.

This broker trusts 127.0.0.1 as a proxy, so each request's X-Forwarded-For is its address.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from broker.clock import FixedClock
from broker.settings import Settings
from tests.admin.conftest import PASSWORD, AdminClient, create_admin
from tests.conftest import RunningBroker, make_home
from tests.fakes.dns_server import FakeDnsServer

WRONG = "x" * 12


@pytest.fixture
def settings(
    tmp_path: Path, port: int, monkeypatch: pytest.MonkeyPatch, dns: FakeDnsServer
) -> Settings:
    return make_home(
        tmp_path,
        port,
        monkeypatch,
        BROKER_DNS_RESOLVERS=dns.address,
        BROKER_SERVER_TRUSTED_PROXIES="127.0.0.1/32",
        BROKER_ADMIN_LOGIN_MAX_FAILURES="2",
        BROKER_ADMIN_LOGIN_MAX_FAILURES_PER_USER="5",
        BROKER_ADMIN_LOGIN_LOCKOUT_SECONDS="120",
        BROKER_ADMIN_LOGIN_WINDOW_SECONDS="600",
    )


async def _try(anon: AdminClient, password: str, addr: str, username: str = "alice") -> int:
    response = await anon.post(
        "/admin/login",
        {"username": username, "password": password},
        headers={"X-Forwarded-For": addr},
        allow_redirects=False,
    )
    return response.status


async def test_pair_locks_after_the_configured_failures(
    broker: RunningBroker, anon: AdminClient, clock: FixedClock
) -> None:
    create_admin(broker)
    await anon.get("/admin/login")
    assert await _try(anon, WRONG, "198.51.100.7") == 401
    assert await _try(anon, WRONG, "198.51.100.7") == 429  # the 2nd failure locks the pair
    # The third attempt is refused even with the right password (it is not checked).
    assert await _try(anon, PASSWORD, "198.51.100.7") == 429
    assert "Too many failed attempts" in anon.last and "about 2 minutes" in anon.last
    # Only that pair: the same username from another address still signs in.
    assert await _try(anon, PASSWORD, "198.51.100.8") == 303
    # The lock ends after `admin.login_lockout_seconds`.
    clock.advance(121)
    assert await _try(anon, PASSWORD, "198.51.100.7") == 303


async def test_rotating_addresses_meets_the_per_user_ceiling(
    broker: RunningBroker, anon: AdminClient, clock: FixedClock
) -> None:
    create_admin(broker)
    create_admin(broker, "bob")
    await anon.get("/admin/login")
    # One guess per address: no pair reaches its limit of 2, the username reaches 5.
    for n in range(1, 5):
        assert await _try(anon, WRONG, f"203.0.113.{n}") == 401
    assert await _try(anon, WRONG, "203.0.113.5") == 429
    # Locked from any address, whatever the password, and without checking it.
    assert await _try(anon, PASSWORD, "203.0.113.6") == 429
    failed = [e for e in broker.store.audit.list(limit=50) if e.action == "admin.sign_in_failed"]
    assert len(failed) == 5
    # Other usernames are not affected by alice's lock.
    assert await _try(anon, PASSWORD, "203.0.113.6", username="bob") == 303
    anon.http.cookie_jar.clear()
    await anon.get("/admin/login")
    # The username's lock ends after `admin.login_lockout_seconds` too.
    clock.advance(121)
    assert await _try(anon, PASSWORD, "203.0.113.7") == 303


async def test_a_right_password_does_not_clear_other_addresses_failures(
    broker: RunningBroker, anon: AdminClient
) -> None:
    create_admin(broker)
    await anon.get("/admin/login")
    for n in range(1, 5):  # 4 failures, each from its own address
        assert await _try(anon, WRONG, f"192.0.2.{n}") == 401
    assert await _try(anon, PASSWORD, "192.0.2.50") == 303  # the real admin, elsewhere
    anon.http.cookie_jar.clear()
    await anon.get("/admin/login")
    # The username-wide count still holds the 4: the next failure anywhere locks it.
    assert await _try(anon, WRONG, "192.0.2.9") == 429
