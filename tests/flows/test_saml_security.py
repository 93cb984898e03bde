"""The ACS's own checks, end to end over loopback: InResponseTo ↔ flow binding, replay
across two workers sharing one database, Rippling's placeholder InResponseTo, and that
only the connection's configured IdP keys are trusted."""

from __future__ import annotations

import asyncio
import base64
import re
from typing import Any

import pytest
from aiohttp import web

from broker.app import build_services, make_app
from broker.core import connections as core_connections
from tests.conftest import free_port
from tests.fakes.saml_idp import FakeSamlIdP
from tests.oidc.helpers import INITIATE, Browser, pkce
from tests.saml.test_e2e_harness import (
    SamlTenant,
    acs_of,
    exec_client,
    idp,
    make_saml_tenant,
    sp_entity_of,
    to_idp_and_back,
)

__all__ = ["idp"]


def _response(idp: FakeSamlIdP, broker: Any, tenant: SamlTenant, **kw: Any) -> str:
    xml = idp.make_response(
        sp_entity_id=sp_entity_of(broker, tenant), acs_url=acs_of(broker, tenant), **kw
    )
    return base64.b64encode(xml).decode()


async def _post(browser: Browser, url: str, saml_response: str, relay: str = "") -> Any:
    resp = await browser.post(url, data={"SAMLResponse": saml_response, "RelayState": relay})
    return resp, await resp.text()


def _last_check(broker: Any, tenant: SamlTenant) -> tuple[str, str | None]:
    attempt = core_connections.recent_attempts(broker.store, tenant.connection_id)[0]
    return attempt.outcome, attempt.check


async def _start_sp_login(broker: Any, tenant: SamlTenant, browser: Browser) -> str:
    """Begin an SP-initiated login up to the IdP; return the AuthnRequest ID we issued."""
    rp = exec_client(broker, tenant)
    verifier, _ = pkce()
    url, _ = rp.create_authorization_url(
        broker.url + "/oauth2/authorize",
        code_verifier=verifier,
        nonce="n",
        login_hint=f"ann@{tenant.domain}",
    )
    await rp.aclose()
    resp = await browser.get(url)
    return resp.headers["Location"]


async def test_in_response_to_never_issued_is_refused(broker, idp):
    tenant = make_saml_tenant(broker, idp)
    browser = Browser(broker.url)
    try:
        resp, text = await _post(
            browser,
            acs_of(broker, tenant),
            _response(idp, broker, tenant, in_response_to="_" + "a" * 40),
        )
    finally:
        await browser.close()
    assert resp.status == 400 and "does not belong to the sign-in you started" in text
    assert _last_check(broker, tenant) == ("refused", "in_response_to")


async def test_in_response_to_of_another_connection_is_refused(broker, idp):
    tenant_a = make_saml_tenant(broker, idp, domain="a.test")
    tenant_b = make_saml_tenant(broker, idp, domain="b.test")
    browser = Browser(broker.url)
    try:
        start = await _start_sp_login(broker, tenant_a, browser)
        await to_idp_and_back(browser, start)
        request_id = re.search(r' ID="([^"]+)"', idp.received_requests[-1])[1]  # type: ignore[index]
        forged = _response(
            idp,
            broker,
            tenant_b,
            in_response_to=request_id,
            name_id="ann@b.test",
            attributes={"email": ["ann@b.test"]},
        )
        resp, _ = await _post(browser, acs_of(broker, tenant_b), forged)
    finally:
        await browser.close()
    assert resp.status == 400
    attempt = core_connections.recent_attempts(broker.store, tenant_b.connection_id)[0]
    assert (attempt.check, attempt.got) == (
        "in_response_to",
        f"a request of {tenant_a.connection_id}",
    )


async def test_relay_state_naming_another_flow_is_refused(broker, idp):
    tenant = make_saml_tenant(broker, idp)
    browser = Browser(broker.url)
    try:
        start = await _start_sp_login(broker, tenant, browser)
        action, fields = await to_idp_and_back(browser, start)
        fields["RelayState"] = "flow_" + "0" * 26
        resp = await browser.post(action, data=fields)
    finally:
        await browser.close()
    assert resp.status == 400
    assert _last_check(broker, tenant) == ("refused", "relay_state")


async def test_same_response_twice_at_one_worker_is_a_replay(broker, idp):
    tenant = make_saml_tenant(broker, idp)
    browser = Browser(broker.url)
    try:
        start = await _start_sp_login(broker, tenant, browser)
        action, fields = await to_idp_and_back(browser, start)
        first = await browser.post(action, data=fields)
        second = await browser.post(action, data=fields)
    finally:
        await browser.close()
    assert first.status == 303 and second.status == 400
    assert _last_check(broker, tenant) == ("refused", "replay")


@pytest.fixture
async def second_worker(broker):
    """Another broker process's worth of app on the same database file and keys."""
    port = free_port()
    settings = broker.settings
    services = build_services(settings)
    app = make_app(settings, services, background=False)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    yield f"http://127.0.0.1:{port}"
    await runner.cleanup()


async def test_replay_across_two_workers_exactly_one_succeeds(broker, idp, second_worker):
    tenant = make_saml_tenant(broker, idp)
    response = _response(idp, broker, tenant)  # unsolicited: only the replay cache stops it
    path = f"/saml/{tenant.connection_id}/acs"
    one, two = Browser(broker.url), Browser(second_worker)
    try:
        results = await asyncio.gather(
            _post(one, broker.url + path, response), _post(two, second_worker + path, response)
        )
    finally:
        await one.close()
        await two.close()
    statuses = sorted(resp.status for resp, _ in results)
    assert statuses == [303, 400], statuses
    attempts = core_connections.recent_attempts(broker.store, tenant.connection_id)
    assert sorted((a.outcome, a.check) for a in attempts) == [
        ("refused", "replay"),
        ("succeeded", None),
    ]


async def test_rippling_placeholder_in_response_to_is_treated_as_unsolicited(broker, idp):
    rippling = make_saml_tenant(broker, idp, preset="rippling", domain="r.test")
    okta = make_saml_tenant(broker, idp, preset="okta", domain="o.test")
    placeholder = "_" + "9" * 32
    browser = Browser(broker.url)
    try:
        resp, _ = await _post(
            browser,
            acs_of(broker, rippling),
            _response(
                idp,
                broker,
                rippling,
                in_response_to=placeholder,
                name_id="ann@r.test",
                attributes={"email": ["ann@r.test"]},
            ),
        )
        refused, _ = await _post(
            browser,
            acs_of(broker, okta),
            _response(
                idp,
                broker,
                okta,
                in_response_to=placeholder,
                name_id="ann@o.test",
                attributes={"email": ["ann@o.test"]},
            ),
        )
    finally:
        await browser.close()
    assert resp.status == 303 and resp.headers["Location"].startswith(INITIATE)
    attempt = core_connections.recent_attempts(broker.store, rippling.connection_id)[0]
    assert attempt.kind == "idp_initiated" and "placeholder" in attempt.detail["note"]
    assert refused.status == 400 and _last_check(broker, okta) == ("refused", "in_response_to")


async def test_rippling_placeholder_refused_when_unsolicited_is_off(broker, idp):
    tenant = make_saml_tenant(broker, idp, preset="rippling", options={"allow_unsolicited": False})
    browser = Browser(broker.url)
    try:
        resp, _ = await _post(
            browser,
            acs_of(broker, tenant),
            _response(idp, broker, tenant, in_response_to="_" + "9" * 32),
        )
    finally:
        await browser.close()
    assert resp.status == 400 and _last_check(broker, tenant) == ("refused", "in_response_to")


async def test_response_signed_by_another_key_is_refused(broker, idp, tmp_path):
    tenant = make_saml_tenant(broker, idp)
    impostor = FakeSamlIdP(idp.entity_id, tmp_path / "impostor")  # same entity ID, own key
    browser = Browser(broker.url)
    try:
        resp, _ = await _post(browser, acs_of(broker, tenant), _response(impostor, broker, tenant))
    finally:
        await browser.close()
    assert resp.status == 400 and _last_check(broker, tenant) == ("refused", "signature")
