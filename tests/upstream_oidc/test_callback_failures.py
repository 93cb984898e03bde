"""Every way an upstream OIDC login must fail, over real sockets: the broker, a real
FakeOidcIdP misbehaving on purpose, a browser walking the redirects. Each failure is a
clear page with a correlation id; the detail (expected vs got) is in the audit log under
that id; nothing is half-created (no broker session, no code for Exec)."""

from __future__ import annotations

from typing import Any

import pytest

from broker.core import audit, connections, login
from tests.fakes.oidc_idp import FakeOidcIdP
from tests.upstream_oidc.helpers import (
    EXEC_REDIRECT,
    Browser,
    Hop,
    OidcTenant,
    authorize_url,
    make_oidc_tenant,
    pkce,
    query,
)


def _sessions(broker: Any) -> int:
    return int(broker.store.db.one("SELECT count(*) AS n FROM broker_sessions")["n"])


def _audit_detail(broker: Any, request_id: str) -> dict[str, Any]:
    entries = broker.store.audit.list(correlation_id=request_id)
    assert entries, f"no audit entry for correlation id {request_id}"
    return dict(entries[0].detail)


async def _walk(broker: Any, idp: FakeOidcIdP, tenant: OidcTenant) -> Hop:
    _, challenge = pkce()
    browser = Browser(idp)
    try:
        return await browser.walk(authorize_url(broker.url, tenant, challenge))
    finally:
        await browser.close()


async def _assert_refused(
    broker: Any,
    idp: FakeOidcIdP,
    tenant: OidcTenant,
    reason: str,
    status: int = 400,
    text: str | None = None,
) -> dict[str, Any]:
    before = _sessions(broker)
    hop = await _walk(broker, idp, tenant)
    assert hop.status == status, (hop.status, hop.url, hop.body[:200])
    assert hop.request_id and hop.request_id in hop.body  # the correlation id is shown
    if text:
        assert text in hop.body
    detail = _audit_detail(broker, hop.request_id)
    assert detail["reason"] == reason, detail
    assert _sessions(broker) == before  # nothing half-created
    flow_id = detail.get("flow_id")
    if flow_id:
        assert broker.store.flows.get(flow_id).status == "refused"
    return detail


async def test_a_good_login_first(broker, idp):
    tenant = make_oidc_tenant(broker, idp)
    hop = await _walk(broker, idp, tenant)
    assert hop.url.startswith(EXEC_REDIRECT) and "code" in query(hop.url)
    assert _sessions(broker) == 1


@pytest.mark.parametrize(
    ("knobs", "reason"),
    [
        ({"id_token_iss": "https://evil.example"}, "id_token_wrong_issuer"),
        ({"id_token_aud": "someone-else"}, "id_token_wrong_audience"),
        ({"id_token_aud": ["broker-rp", "someone-else"]}, "id_token_wrong_audience"),
        ({"id_token_bad_signature": True}, "id_token_bad_signature"),
        ({"id_token_expired": True}, "id_token_expired"),
        ({"id_token_nonce": "not-the-flows-nonce"}, "id_token_nonce_mismatch"),
        ({"id_token_omit_nonce": True}, "id_token_nonce_mismatch"),
        ({"id_token_alg_none": True}, "id_token_bad_algorithm"),
    ],
)
async def test_bad_id_tokens_are_refused(broker, idp, knobs, reason):
    tenant = make_oidc_tenant(broker, idp)
    idp.misbehave.update(knobs)
    detail = await _assert_refused(broker, idp, tenant, reason)
    assert detail["detail"]  # expected vs got, for the admin


async def test_wrong_issuer_in_discovery(broker, idp):
    tenant = make_oidc_tenant(broker, idp)
    idp.misbehave["discovery_issuer"] = "https://login.example.net"
    detail = await _assert_refused(broker, idp, tenant, "discovery_issuer_mismatch", 502)
    assert "https://login.example.net" in detail["detail"]
    assert idp.authorize_requests == []  # the browser never went to the IdP


async def test_unknown_kid_refreshes_the_jwks_and_unpublished_keys_fail(broker, idp):
    tenant = make_oidc_tenant(broker, idp)
    assert (await _walk(broker, idp, tenant)).url.startswith(EXEC_REDIRECT)  # JWKS cached
    idp.rotate_key()  # published: the unknown kid makes the broker re-fetch the JWKS
    assert (await _walk(broker, idp, tenant)).url.startswith(EXEC_REDIRECT)
    idp.rotate_key(publish=False)  # signs with a kid the JWKS does not list
    detail = await _assert_refused(broker, idp, tenant, "id_token_unknown_kid")
    assert idp.signing_kid in detail["detail"]
    idp.publish_keys()
    assert (await _walk(broker, idp, tenant)).url.startswith(EXEC_REDIRECT)


async def test_idp_error_access_denied(broker, idp):
    tenant = make_oidc_tenant(broker, idp)
    idp.misbehave["authorize_error"] = "access_denied"
    await _assert_refused(
        broker, idp, tenant, "idp_access_denied", text="You were not allowed to sign in"
    )


async def test_token_endpoint_refusal(broker, idp):
    tenant = make_oidc_tenant(broker, idp)
    idp.misbehave["token_error"] = "invalid_grant"
    detail = await _assert_refused(broker, idp, tenant, "token_refused", 502)
    assert "invalid_grant" in detail["detail"]


async def test_userinfo_about_someone_else(broker, idp):
    tenant = make_oidc_tenant(broker, idp)
    idp.misbehave.update(id_token_minimal=True, userinfo_sub="someone-else")
    await _assert_refused(broker, idp, tenant, "userinfo_sub", 502)


async def test_email_outside_the_verified_domains(broker, idp):
    tenant = make_oidc_tenant(broker, idp)
    idp.next_user = dict(idp.next_user, email="mallory@other.example")
    await _assert_refused(broker, idp, tenant, "domain_not_verified", 403)


async def test_idp_down(broker, idp):
    tenant = make_oidc_tenant(broker, idp)
    await idp.stop()
    await _assert_refused(
        broker, idp, tenant, "idp_unreachable_connect", 502, text="could not be reached"
    )


async def _to_callback(browser: Browser, broker: Any, tenant: OidcTenant) -> str:
    """Walk until the IdP sends the browser back to the broker's callback (not fetched)."""
    _, challenge = pkce()
    hop = await browser.walk(authorize_url(broker.url, tenant, challenge), stop_at=tenant.callback)
    assert hop.url.startswith(tenant.callback), hop
    return hop.url


async def test_idp_hangs_at_the_token_endpoint(broker, idp):
    tenant = make_oidc_tenant(broker, idp)
    browser = Browser(idp)
    try:
        callback = await _to_callback(browser, broker, tenant)
        idp.misbehave["hang"] = True
        hop = await browser.get(callback)
    finally:
        await browser.close()
    assert hop.status == 504 and hop.request_id in hop.body
    assert _audit_detail(broker, hop.request_id)["reason"] == "idp_unreachable_timeout"
    assert _sessions(broker) == 0


async def test_state_mismatch_and_other_browser_leave_the_real_login_alone(broker, idp):
    tenant = make_oidc_tenant(broker, idp)
    browser = Browser(idp)
    intruder = Browser(idp)
    try:
        callback = await _to_callback(browser, broker, tenant)
        params = query(callback)
        flow_id = params["state"].split(".")[0]
        forged = callback.replace(params["state"].split(".")[1], "forged-secret")
        hop = await browser.get(forged)
        assert hop.status == 400
        assert _audit_detail(broker, hop.request_id)["reason"] == "state_mismatch"
        hop = await intruder.get(callback)  # right state, wrong browser (no binding cookie)
        assert hop.status == 400
        assert _audit_detail(broker, hop.request_id)["reason"] == "browser_mismatch"
        assert broker.store.flows.get(flow_id).status == "upstream"  # still usable
        hop = await browser.get(callback)
        assert hop.status == 303 and hop.location and hop.location.startswith(EXEC_REDIRECT)
        replay = await browser.get(callback)  # the same answer twice: refused
        assert replay.status == 400
        assert _sessions(broker) == 1
    finally:
        await browser.close()
        await intruder.close()


async def test_test_login_on_a_draft_connection(broker, idp):
    tenant = make_oidc_tenant(broker, idp, state="draft", sso=False, preset="entra")
    idp.next_user = dict(
        idp.next_user, oid="oid-123", roles=["Admin"], _claim_names={"groups": "src1"}
    )
    services = broker.services
    flow_id = await services.run(
        login.create_test_login,
        broker.store,
        services.clock,
        tenant.connection_id,
        audit.CLI,
        services.login_config,
    )
    result_path = connections.test_result_path(tenant.connection_id, flow_id)
    browser = Browser(idp)
    try:
        start = f"{broker.url}/oidc/{tenant.connection_id}/start?flow={flow_id}"
        hop = await browser.walk(start, stop_at=f"{broker.url}/admin/connections/")
        # The one result page: the setup UI's, for signed-in admins only.
        assert hop.url == broker.url + result_path
        page = await browser.get(hop.url)
        assert page.status == 302 and page.location == "/admin/login"
    finally:
        await browser.close()
    result = login.test_login_result(broker.store, flow_id)
    assert result["status"] == "succeeded", result
    assert result["identity"]["idp_subject"] == "oid-123"  # Entra: the immutable oid
    assert result["identity"]["groups_overage"] is True
    assert "Admin" in result["identity"]["groups"]
    assert result["profile"]["email"] == "ada@example.com"
    assert broker.store.connections.get(tenant.connection_id).tested_at is not None
    assert _sessions(broker) == 0  # a test login never creates a session


async def test_a_refused_test_login_ends_on_the_result_page(broker, idp):
    tenant = make_oidc_tenant(broker, idp, state="draft", sso=False)
    idp.misbehave["id_token_nonce"] = "not-the-nonce"
    services = broker.services
    flow_id = await services.run(
        login.create_test_login,
        broker.store,
        services.clock,
        tenant.connection_id,
        audit.CLI,
        services.login_config,
    )
    browser = Browser(idp)
    try:
        start = f"{broker.url}/oidc/{tenant.connection_id}/start?flow={flow_id}"
        hop = await browser.walk(start, stop_at=f"{broker.url}/admin/connections/")
    finally:
        await browser.close()
    assert hop.url == broker.url + connections.test_result_path(tenant.connection_id, flow_id)
    result = login.test_login_result(broker.store, flow_id)
    assert result["status"] == "refused" and "nonce" in result["reason"], result
    assert broker.store.connections.get(tenant.connection_id).tested_at is None


async def test_an_inactive_connection_is_refused(broker, idp):
    tenant = make_oidc_tenant(broker, idp)
    browser = Browser(idp)
    try:
        callback = await _to_callback(browser, broker, tenant)
        with broker.store.transaction():
            broker.store.connections.update(tenant.connection_id, state="inactive")
        hop = await browser.get(callback)
    finally:
        await browser.close()
    assert hop.status == 403
    assert _audit_detail(broker, hop.request_id)["reason"] == "connection_inactive"
    assert _sessions(broker) == 0
