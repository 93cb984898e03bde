"""`max_age` reaches a SAML IdP (security review F6.2; OIDC Core §3.1.2.1): when the
broker session is older than the authorize request's max_age, the AuthnRequest carries
ForceAuthn and the new ID token's auth_time is that new authentication. The upstream
OIDC side is in test_upstream_reauthentication.py."""

from __future__ import annotations

import asyncio
import re

from tests.oidc.helpers import Browser
from tests.saml.test_e2e_harness import exec_client, idp, make_saml_tenant, sp_initiated_login

__all__ = ["idp"]


def _force_authn(request_xml: str) -> bool:
    return re.search(r'\bForceAuthn="(true|1)"', request_xml) is not None


async def test_saml_max_age_forces_authn_and_moves_auth_time(broker, idp):
    tenant = make_saml_tenant(broker, idp)
    browser, rp = Browser(broker.url), exec_client(broker, tenant)
    try:
        first = await sp_initiated_login(broker, tenant, browser, rp, login_hint="ann@acme.test")
        assert not _force_authn(idp.received_requests[-1])
        await asyncio.sleep(1.1)  # the session is now older than max_age=1
        second = await sp_initiated_login(
            broker, tenant, browser, rp, login_hint="ann@acme.test", max_age="1"
        )
        assert _force_authn(idp.received_requests[-1])
    finally:
        await browser.close()
        await rp.aclose()
    assert second["auth_time"] > first["auth_time"]
    assert second["sid"] != first["sid"]  # a new broker session from the new login
