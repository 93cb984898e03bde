"""Setup-UI sign-in over real HTTP: first-run setup URL, cookies, CSRF, throttling, idle
timeout, sign-out, and the audit trail (issue 8 §1)."""

from __future__ import annotations

import re

from broker.clock import FixedClock
from broker.core import admin_sessions
from tests.admin.conftest import PASSWORD, AdminClient, create_admin
from tests.conftest import RunningBroker


def _issue(broker: RunningBroker) -> str:
    token = admin_sessions.issue_setup_token(broker.store, broker.services.clock, 3600)
    assert token
    return token


async def test_first_run_setup_link_creates_admin_once(
    broker: RunningBroker, anon: AdminClient
) -> None:
    token = _issue(broker)
    response = await anon.get(f"/admin/setup?token={token}")
    assert response.status == 200 and "Create administrator" in anon.last
    form = {"token": token, "username": "root", "password": PASSWORD, "password_again": PASSWORD}
    response = await anon.post("/admin/setup", form, allow_redirects=False)
    assert response.status == 303 and response.headers["Location"] == "/admin"
    cookie = response.headers.getall("Set-Cookie")
    session_cookie = next(c for c in cookie if c.startswith("broker_admin="))
    assert "HttpOnly" in session_cookie and "SameSite=Strict" in session_cookie
    assert "Secure" not in session_cookie  # plain http on loopback; Secure behind TLS
    assert (await anon.get("/admin")).status == 200 and "root" in anon.last
    # Single use: the same link (and any link once an admin exists) is refused.
    other = AdminClient(anon.base, anon.http)
    response = await other.get(f"/admin/setup?token={token}")
    assert "expired, was already used" in other.last
    assert admin_sessions.issue_setup_token(broker.store, broker.services.clock, 3600) is None
    actions = [e.action for e in broker.store.audit.list(limit=20)]
    assert "admin.setup_completed" in actions and "admin.created" in actions


async def test_setup_token_expires(
    broker: RunningBroker, anon: AdminClient, clock: FixedClock
) -> None:
    token = admin_sessions.issue_setup_token(broker.store, clock, 60)
    await anon.get(f"/admin/setup?token={token}")  # the form, while the link is fresh
    clock.advance(61)
    form = {"token": token, "username": "root", "password": PASSWORD, "password_again": PASSWORD}
    response = await anon.post("/admin/setup", form, allow_redirects=False)
    assert response.status == 400 and "expired" in anon.last
    assert broker.store.admins.count() == 0


async def test_wrong_setup_token_refused(broker: RunningBroker, anon: AdminClient) -> None:
    _issue(broker)
    await anon.get("/admin/login")  # a form token, as any page before sign-in hands out
    form = {"token": "nope", "username": "root", "password": PASSWORD, "password_again": PASSWORD}
    assert (await anon.post("/admin/setup", form)).status == 400
    assert broker.store.admins.count() == 0


async def test_private_pages_need_sign_in(anon: AdminClient) -> None:
    response = await anon.get("/admin/orgs", allow_redirects=False)
    assert response.status == 302 and response.headers["Location"] == "/admin/login"


async def test_sign_in_and_out(broker: RunningBroker, admin: AdminClient) -> None:
    assert (await admin.get("/admin/orgs")).status == 200
    response = await admin.post("/admin/logout", allow_redirects=False)
    assert response.status == 303
    response = await admin.get("/admin/orgs", allow_redirects=False)
    assert response.status == 302
    entries = broker.store.audit.list(limit=10)
    signed_in = next(e for e in entries if e.action == "admin.signed_in")
    assert signed_in.actor.startswith("admin:adm_") and signed_in.remote_addr == "127.0.0.1"
    assert any(e.action == "admin.signed_out" for e in entries)


async def test_unknown_user_and_wrong_password_read_the_same(
    broker: RunningBroker, anon: AdminClient
) -> None:
    create_admin(broker)
    await anon.get("/admin/login")
    first = await anon.post("/admin/login", {"username": "nobody", "password": PASSWORD})
    unknown = anon.last
    second = await anon.post("/admin/login", {"username": "alice", "password": "wrong" * 3})
    assert first.status == second.status == 401
    assert "The username or password is not right." in unknown
    assert "The username or password is not right." in anon.last


async def test_wrong_password_throttling(
    broker: RunningBroker, anon: AdminClient, clock: FixedClock
) -> None:
    create_admin(broker)
    # The defaults of the `admin.login_*` settings (config/broker.example.toml).
    max_failures = broker.settings.get("admin.login_max_failures")
    lockout_seconds = broker.settings.get("admin.login_lockout_seconds")
    assert (max_failures, lockout_seconds) == (5, 900)
    await anon.get("/admin/login")
    for _ in range(max_failures - 1):
        response = await anon.post("/admin/login", {"username": "alice", "password": "x" * 12})
        assert response.status == 401
    response = await anon.post("/admin/login", {"username": "alice", "password": "x" * 12})
    assert response.status == 429 and "Too many failed attempts" in anon.last
    # Locked: even the right password is not checked now.
    response = await anon.post("/admin/login", {"username": "alice", "password": PASSWORD})
    assert response.status == 429 and int(response.headers["Retry-After"]) > 0
    clock.advance(lockout_seconds + 1)
    response = await anon.post(
        "/admin/login", {"username": "alice", "password": PASSWORD}, allow_redirects=False
    )
    assert response.status == 303
    actions = [e.action for e in broker.store.audit.list(limit=50)]
    assert actions.count("admin.sign_in_failed") == max_failures
    assert "admin.sign_in_throttled" in actions


async def test_csrf_refused_without_or_with_a_wrong_token(
    broker: RunningBroker, admin: AdminClient
) -> None:
    await admin.get("/admin/orgs")
    for token in ("", "forged-token", admin.csrf[:-2] + "xx"):
        response = await admin.post("/admin/orgs", {"name": "Evil"}, csrf=token)
        assert response.status == 403 and "did not come from this site" in admin.last
    assert broker.store.organizations.list() == []
    response = await admin.post("/admin/orgs", {"name": "Good"}, allow_redirects=False)
    assert response.status == 303


async def test_csrf_token_is_bound_to_the_session(
    broker: RunningBroker, admin: AdminClient
) -> None:
    create_admin(broker, "bob")
    from tests.admin.conftest import new_client

    other = await new_client(broker)
    try:
        assert await other.sign_in("bob") == 200
        response = await other.post("/admin/orgs", {"name": "Mixed"}, csrf=admin.csrf)
        assert response.status == 403
    finally:
        await other.http.close()


async def test_login_form_needs_its_form_token(broker: RunningBroker, anon: AdminClient) -> None:
    create_admin(broker)
    # A cross-site login POST has no form cookie/field pair (login CSRF).
    response = await anon.http.post(
        anon.base + "/admin/login", data={"username": "alice", "password": PASSWORD}
    )
    assert response.status == 403


async def test_idle_timeout_ends_the_session(
    broker: RunningBroker, admin: AdminClient, clock: FixedClock
) -> None:
    idle = broker.settings.get("admin.idle_timeout_seconds")
    clock.advance(idle - 5)
    assert (await admin.get("/admin/orgs", allow_redirects=False)).status == 200
    clock.advance(idle + 1)
    response = await admin.get("/admin/orgs", allow_redirects=False)
    assert response.status == 302 and response.headers["Location"] == "/admin/login"
    assert any(e.action == "admin.session_expired" for e in broker.store.audit.list(limit=10))


async def test_pages_carry_security_headers(admin: AdminClient) -> None:
    response = await admin.get("/admin/orgs")
    assert response.headers["Cache-Control"] == "no-store"
    assert "script-src 'self'" in response.headers["Content-Security-Policy"]
    assert not re.search(r"<script>(?!</script>)", admin.last)  # no inline script


def test_serve_banner_prints_the_setup_url(broker: RunningBroker, capsys: object) -> None:
    from broker.cli.setup import _first_run_setup_url

    url = _first_run_setup_url(broker.store, broker.settings)
    assert url and url.startswith(broker.url + "/admin/setup?token=")
    create_admin(broker)
    assert _first_run_setup_url(broker.store, broker.settings) is None
