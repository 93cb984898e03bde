"""Nothing is issued from a session that has ended or whose user policy no longer admits
(security review F1, F6.4; DESIGN §4, §6): a code issued before deprovisioning or logout
is worthless after it, refresh tokens stop with the session, with the connection and
with the domain's verification, and a revocation that commits between the token
endpoint's read and its write wins."""

from __future__ import annotations

import base64
import time
from typing import Any

import aiohttp
import pytest
from authlib.oauth2.rfc6749 import InvalidGrantError
from multidict import MultiDict

from broker.clock import SystemClock
from broker.core import access, audit, policy
from broker.core import connections as core_connections
from broker.oidc.adapter import AiohttpOAuth2Request
from broker.oidc.server import actor_for
from broker.oidc.token import SERVER
from tests.oidc.helpers import REDIRECT, Browser, Tenant, make_tenant, pkce
from tests.oidc.test_provider_negative import authorize_params, basic, exchange, sign_in
from tests.scim.conftest import Scim


@pytest.fixture
async def browser(broker):
    b = Browser(broker.url)
    yield b
    await b.close()


async def refresh(broker: Any, tenant: Tenant, token: str) -> aiohttp.ClientResponse:
    async with aiohttp.ClientSession() as http:
        resp = await http.post(
            broker.url + "/oauth2/token",
            headers=basic(tenant.client_id, tenant.client_secret),
            data={"grant_type": "refresh_token", "refresh_token": token},
        )
        await resp.read()
        return resp


def refresh_rows(broker: Any) -> int:
    return int(broker.store.db.scalar("SELECT COUNT(*) FROM refresh_tokens"))


async def test_code_issued_before_scim_deactivation_is_refused(broker, browser):
    tenant = make_tenant(broker.store)
    enabled = policy.enable_directory_sync(broker.store, SystemClock(), audit.CLI, tenant.org_id)
    base = f"{broker.url}/scim/v2/{enabled.directory_id}"
    async with aiohttp.ClientSession() as http:
        scim = Scim(http, base, enabled.token)
        user = await scim.create_user("alice@acme.test", externalId="00u-alice")
        code, verifier = await sign_in(broker, browser, tenant)
        kept, kept_verifier = await sign_in(broker, browser, tenant, prompt="login")
        live = await (await exchange(broker, tenant, kept, kept_verifier)).json()
        status, _, _ = await scim.call(
            "PATCH",
            f"/Users/{user['id']}",
            {
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                "Operations": [{"op": "replace", "path": "active", "value": False}],
            },
        )
        assert status == 200
    late = await exchange(broker, tenant, code, verifier)
    assert late.status == 400 and (await late.json())["error"] == "invalid_grant"
    refreshed = await refresh(broker, tenant, live["refresh_token"])
    assert refreshed.status == 400 and (await refreshed.json())["error"] == "invalid_grant"


async def test_code_issued_before_logout_is_refused(broker, browser):
    tenant = make_tenant(broker.store)
    code, verifier = await sign_in(broker, browser, tenant)
    page = await browser.get("/oauth2/logout")  # no hint: the user confirms
    csrf = (await page.text()).split('name="confirm" value="')[1].split('"')[0]
    assert (await browser.post("/oauth2/logout", data={"confirm": csrf})).status == 200
    assert (
        broker.store.db.scalar("SELECT COUNT(*) FROM broker_sessions WHERE ended_at IS NULL") == 0
    )
    late = await exchange(broker, tenant, code, verifier)
    assert late.status == 400 and (await late.json())["error"] == "invalid_grant"
    assert refresh_rows(broker) == 0


async def test_refresh_after_logout_is_refused(broker, browser):
    tenant = make_tenant(broker.store)
    code, verifier = await sign_in(broker, browser, tenant)
    tokens = await (await exchange(broker, tenant, code, verifier)).json()
    assert (await refresh(broker, tenant, tokens["refresh_token"])).status == 200
    session_id = broker.store.db.scalar("SELECT id FROM broker_sessions")
    access.end_session(broker.store, broker.services.clock, session_id, reason="rp_logout")
    code2, verifier2 = await sign_in(broker, browser, tenant)  # a new session meanwhile
    fresh = await (await exchange(broker, tenant, code2, verifier2)).json()
    assert (await refresh(broker, tenant, fresh["refresh_token"])).status == 200
    # Every token of the ended session is refused, even one not yet rotated.
    rows = broker.store.db.all(
        "SELECT token_hash FROM refresh_tokens WHERE session_id = ? AND rotated_at IS NULL",
        (session_id,),
    )
    assert rows and all(broker.store.grants.find_refresh(r[0]).revoked_at for r in rows)


def _racing(broker: Any, tenant: Tenant, **form: str) -> Any:
    """A token request validated (the code or refresh token read) but not yet answered,
    as a second worker would hold it while a revocation commits."""
    raw = base64.b64encode(f"{tenant.client_id}:{tenant.client_secret}".encode()).decode()
    request = AiohttpOAuth2Request(
        "POST", broker.url + "/oauth2/token", {"Authorization": f"Basic {raw}"}, {}, MultiDict(form)
    )
    request.actor = actor_for("127.0.0.1", "race")
    grant = broker.app[SERVER].get_token_grant(request)
    grant.validate_token_request()
    return grant


async def test_logout_committing_between_read_and_write_wins(broker, browser):
    tenant = make_tenant(broker.store)
    code, verifier = await sign_in(broker, browser, tenant)
    grant = _racing(
        broker,
        tenant,
        grant_type="authorization_code",
        code=code,
        redirect_uri=REDIRECT,
        code_verifier=verifier,
    )
    session_id = broker.store.db.scalar("SELECT id FROM broker_sessions")
    access.end_session(broker.store, broker.services.clock, session_id, reason="rp_logout")
    with pytest.raises(InvalidGrantError):
        grant.create_token_response()
    assert refresh_rows(broker) == 0


async def test_deprovisioning_between_read_and_rotation_wins(broker, browser):
    tenant = make_tenant(broker.store)
    code, verifier = await sign_in(broker, browser, tenant)
    tokens = await (await exchange(broker, tenant, code, verifier)).json()
    grant = _racing(
        broker, tenant, grant_type="refresh_token", refresh_token=tokens["refresh_token"]
    )
    access.revoke_user(
        broker.store,
        broker.services.clock,
        organization_id=tenant.org_id,
        email="alice@acme.test",
        reason="dsync_deactivated",
    )
    with pytest.raises(InvalidGrantError):
        grant.create_token_response()
    assert (
        broker.store.db.scalar("SELECT COUNT(*) FROM refresh_tokens WHERE revoked_at IS NULL") == 0
    )


async def test_deactivating_the_connection_ends_sessions_and_refresh(broker, browser):
    tenant = make_tenant(broker.store, backchannel_uri="http://127.0.0.1:9/bc")
    code, verifier = await sign_in(broker, browser, tenant)
    tokens = await (await exchange(broker, tenant, code, verifier)).json()
    pending_code, pending_verifier = await sign_in(broker, browser, tenant)
    core_connections.deactivate(
        broker.store, broker.services.clock, audit.CLI, tenant.connection_id
    )
    assert (
        broker.store.db.scalar("SELECT COUNT(*) FROM broker_sessions WHERE ended_at IS NULL") == 0
    )
    assert [d.reason for d in broker.store.logout_outbox.pending()] == ["connection_deactivated"]
    assert (await refresh(broker, tenant, tokens["refresh_token"])).status == 400
    assert (await exchange(broker, tenant, pending_code, pending_verifier)).status == 400


async def test_domain_no_longer_verified_stops_session_and_refresh(broker, browser):
    tenant = make_tenant(broker.store)
    code, verifier = await sign_in(broker, browser, tenant)
    tokens = await (await exchange(broker, tenant, code, verifier)).json()
    domain = broker.store.domains.find(tenant.org_id, tenant.domain)
    broker.store.domains.update(domain.id, state="pending", verified_at=None)
    assert (await refresh(broker, tenant, tokens["refresh_token"])).status == 400
    _, challenge = pkce()
    resp = await browser.get("/oauth2/authorize", params=authorize_params(tenant, challenge))
    assert not resp.headers["Location"].startswith(REDIRECT)  # not answered from the session


async def test_refresh_outlives_an_expired_but_not_ended_session(broker, browser):
    """The checks above look at ended sessions, not expired ones: refresh tokens are
    meant to outlive the 8-hour session."""
    tenant = make_tenant(broker.store)
    code, verifier = await sign_in(broker, browser, tenant)
    tokens = await (await exchange(broker, tenant, code, verifier)).json()
    broker.store.db.execute("UPDATE broker_sessions SET expires_at = ?", (time.time() - 1,))
    assert (await refresh(broker, tenant, tokens["refresh_token"])).status == 200
