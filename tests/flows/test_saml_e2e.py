"""SAML SP end to end over real sockets: Authlib's OIDC client (as Exec) → broker
/oauth2/authorize → /saml/{id}/start → a pysaml2 IdP on loopback (signing with its own key)
→ POST to our ACS → code → token → ID token claims checked against the JWKS."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from broker.core import audit
from broker.core import connections as core_connections
from tests.fakes.saml_idp import FakeSamlIdP, post_form
from tests.oidc.helpers import INITIATE, Browser, pkce, query
from tests.saml.test_e2e_harness import (
    acs_of,
    exec_client,
    make_saml_tenant,
    parse_form,
    redeem,
    sp_entity_of,
    sp_initiated_login,
)

# The shared request-id middleware stores plain string keys on requests (not ours).


@pytest.fixture
async def idp(tmp_path: Path) -> AsyncIterator[FakeSamlIdP]:
    fake = FakeSamlIdP("https://idp.example.test/saml", tmp_path / "idp")
    runner = await fake.start()
    yield fake
    await runner.cleanup()


async def test_sp_initiated_redirect_binding(broker, idp):
    tenant = make_saml_tenant(broker, idp, preset="okta")
    browser, rp = Browser(broker.url), exec_client(broker, make_tenant := tenant)
    try:
        claims = await sp_initiated_login(
            broker, make_tenant, browser, rp, login_hint="ann@acme.test"
        )
    finally:
        await browser.close()
        await rp.aclose()
    assert claims["email"] == "ann@acme.test" and claims["email_verified"] is True
    assert claims["given_name"] == "Ann" and claims["family_name"] == "Example"
    assert claims["groups"] == ["Engineering", "Everyone"]
    assert claims["org_id"] == tenant.org_id and claims["connection_id"] == tenant.connection_id
    assert claims["connection_type"] == "saml" and claims["idp_id"] == "ann@acme.test"
    assert claims["acr"].endswith(":PasswordProtectedTransport") and claims["amr"] == ["pwd"]
    request = idp.received_requests[-1]
    assert "ForceAuthn" not in request and "Signature" not in request
    attempts = core_connections.recent_attempts(broker.store, tenant.connection_id)
    assert [(a.kind, a.outcome) for a in attempts] == [("sp_initiated", "succeeded")]


async def test_post_binding_signed_request_and_force_authn(broker, idp):
    tenant = make_saml_tenant(
        broker, idp, preset="generic", options={"binding": "post", "sign_requests": True}
    )
    browser, rp = Browser(broker.url), exec_client(broker, tenant)
    try:
        claims = await sp_initiated_login(
            broker, tenant, browser, rp, login_hint="ann@acme.test", prompt="login"
        )
    finally:
        await browser.close()
        await rp.aclose()
    assert claims["email"] == "ann@acme.test"
    request = idp.received_requests[-1]
    assert 'ForceAuthn="true"' in request and "SignatureValue" in request
    assert "RequestedAuthnContext" not in request  # off by default (AD FS MSIS7102)


async def test_idp_initiated_login_reaches_exec_by_third_party_initiation(broker, idp):
    tenant = make_saml_tenant(broker, idp, preset="okta")
    browser, rp = Browser(broker.url), exec_client(broker, tenant)
    try:
        page = idp.unsolicited_form(
            sp_entity_id=sp_entity_of(broker, tenant), acs_url=acs_of(broker, tenant)
        )
        action, fields = parse_form(page)
        resp = await browser.post(action, data=fields)
        assert resp.status == 303, await resp.text()
        initiate = resp.headers["Location"]
        assert initiate.startswith(INITIATE)
        assert query(initiate) == {"iss": broker.url, "login_hint": "ann@acme.test"}
        # Exec starts its own authorize request (its state and nonce); the session answers.
        verifier, _ = pkce()
        url, state = rp.create_authorization_url(
            broker.url + "/oauth2/authorize",
            code_verifier=verifier,
            nonce="n-idp",
            login_hint=query(initiate)["login_hint"],
        )
        resp = await browser.get(url)
        assert resp.status == 302 and query(resp.headers["Location"])["state"] == state
        claims = await redeem(broker, rp, resp.headers["Location"], verifier, "n-idp")
    finally:
        await browser.close()
        await rp.aclose()
    assert claims["email"] == "ann@acme.test" and claims["connection_id"] == tenant.connection_id
    attempts = core_connections.recent_attempts(broker.store, tenant.connection_id)
    assert [(a.kind, a.outcome) for a in attempts] == [("idp_initiated", "succeeded")]


async def test_unsolicited_refused_when_connection_disallows_it(broker, idp):
    tenant = make_saml_tenant(broker, idp, options={"allow_unsolicited": False})
    browser = Browser(broker.url)
    try:
        page = idp.unsolicited_form(
            sp_entity_id=sp_entity_of(broker, tenant), acs_url=acs_of(broker, tenant)
        )
        action, fields = parse_form(page)
        resp = await browser.post(action, data=fields)
        text = await resp.text()
    finally:
        await browser.close()
    assert resp.status == 400 and "not allowed for this connection" in text
    assert resp.headers["X-Request-Id"] in text  # the correlation id is shown
    attempt = core_connections.recent_attempts(broker.store, tenant.connection_id)[0]
    assert (attempt.outcome, attempt.check) == ("refused", "unsolicited")
    assert attempt.correlation_id == resp.headers["X-Request-Id"]
    entries = broker.store.audit.list(correlation_id=attempt.correlation_id)
    assert any(e.action == "login.refused" and e.detail["reason"] == "unsolicited" for e in entries)


async def test_activation_needs_test_login_unless_without_test(broker, idp):
    tenant = make_saml_tenant(broker, idp, active=False, with_client=False)
    from broker.errors import PolicyError

    with pytest.raises(PolicyError):
        core_connections.activate(
            broker.store, broker.services.clock, audit.CLI, tenant.connection_id
        )
    connection = core_connections.activate(
        broker.store, broker.services.clock, audit.CLI, tenant.connection_id, without_test=True
    )
    assert connection.state == "active" and connection.config["activated_without_test"]
    events = [e.type for e in broker.store.events.after(0, 100, organization_ids=[tenant.org_id])]
    assert "connection.created" in events and "connection.activated" in events
    assert post_form  # the IdP helper stays importable for the other modules
