"""Unauthenticated POSTs to a SAML ACS write (almost) nothing (security review F4a):
connection ids are public, so a response refused before an IdP signature verified gets
no `authentication.sso_failed` event (webhooks carry those to Exec) and no audit row,
only a throttled entry in the connection's recent attempts. A signed response refused
for a real user still reaches the audit log and the event feed."""

from __future__ import annotations

import base64

import aiohttp

from broker.core import connections as core_connections
from tests.oidc.helpers import Browser
from tests.saml.test_e2e_harness import acs_of, idp, make_saml_tenant, parse_form, sp_entity_of

__all__ = ["idp"]


def _counts(broker) -> tuple[int, int]:
    db = broker.store.db
    return db.scalar("SELECT COUNT(*) FROM events"), db.scalar("SELECT COUNT(*) FROM audit_log")


async def test_junk_and_forged_responses_emit_no_event_and_no_audit(broker, idp):
    tenant = make_saml_tenant(broker, idp)
    unsigned = idp.make_response(  # well-formed, but nobody signed it
        sp_entity_id=sp_entity_of(broker, tenant),
        acs_url=acs_of(broker, tenant),
        sign_response=False,
        sign_assertion=False,
    )
    bodies = ["!!", base64.b64encode(b"<x/>").decode(), base64.b64encode(unsigned).decode()]
    events0, audit0 = _counts(broker)
    async with aiohttp.ClientSession() as http:
        for i in range(60):
            async with http.post(
                acs_of(broker, tenant), data={"SAMLResponse": bodies[i % len(bodies)]}
            ) as resp:
                assert resp.status == 400
    assert _counts(broker) == (events0, audit0)
    attempts = core_connections.recent_attempts(broker.store, tenant.connection_id, 100)
    assert 0 < len(attempts) <= core_connections.UNVERIFIED_BURST
    assert {a.check for a in attempts} >= {"malformed", "signature"}


async def test_signed_but_refused_login_is_audited_and_announced(broker, idp):
    tenant = make_saml_tenant(broker, idp, options={"allow_unsolicited": False})
    events0, audit0 = _counts(broker)
    browser = Browser(broker.url)
    try:
        page = idp.unsolicited_form(
            sp_entity_id=sp_entity_of(broker, tenant), acs_url=acs_of(broker, tenant)
        )
        action, fields = parse_form(page)
        assert (await browser.post(action, data=fields)).status == 400
    finally:
        await browser.close()
    types = [row[0] for row in broker.store.db.all("SELECT type FROM events")]
    assert types.count("authentication.sso_failed") == 1
    events1, audit1 = _counts(broker)
    assert events1 == events0 + 1 and audit1 > audit0
