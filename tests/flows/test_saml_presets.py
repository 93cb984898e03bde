"""One fixture per provider preset (tests/data/saml/<vendor>/attributes*.json: that vendor's
NameID and attribute names), sent by the pysaml2 IdP through a full SP-initiated login and
checked in the ID token Exec receives."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from broker.core import connections as core_connections
from broker.saml.presets import PRESETS
from tests.fakes.saml_idp import User
from tests.oidc.helpers import Browser
from tests.saml.test_e2e_harness import exec_client, idp, make_saml_tenant
from tests.saml.test_e2e_harness import sp_initiated_login as login

__all__ = ["idp"]
DATA = Path(__file__).resolve().parent.parent / "data" / "saml"
FIXTURES = sorted(DATA.glob("*/attributes*.json"))
# What each vendor signs by default (IDP-NOTES.md "Per vendor, at a glance"): the IdP is set
# up the same way. (Unknown in the notes: Rippling, generic → both.)
SIGNS = {
    "okta": (True, True),
    "duo": (True, True),
    "onelogin": (True, False),
    "pingfederate": (True, False),
    "entra": (False, True),
    "adfs": (False, True),
    "google": (False, True),
    "pingone": (False, True),
    "jumpcloud": (False, True),
    "cyberark": (False, True),
}


def test_every_preset_has_a_fixture_and_the_core_knows_it():
    covered = {json.loads(p.read_text())["preset"] for p in FIXTURES}
    assert covered == set(PRESETS) == set(core_connections.PRESETS)


@pytest.mark.parametrize("fixture", FIXTURES, ids=lambda p: f"{p.parent.name}/{p.stem}")
async def test_preset_maps_vendor_attributes_end_to_end(broker, idp, fixture):
    data = json.loads(fixture.read_text())
    expected = data["expected"]
    domain = expected["email"].split("@")[1]
    tenant = make_saml_tenant(broker, idp, preset=data["preset"], domain=domain)
    idp.next_user = User(
        name_id=data["name_id"],
        name_id_format=data["name_id_format"],
        attributes=data["attributes"],
    )
    idp.options.sign_response, idp.options.sign_assertion = SIGNS.get(data["preset"], (True, True))
    browser, rp = Browser(broker.url), exec_client(broker, tenant)
    try:
        claims = await login(broker, tenant, browser, rp, login_hint=expected["email"])
    finally:
        await browser.close()
        await rp.aclose()
    assert claims["email"] == expected["email"]
    assert claims.get("given_name") == expected["given_name"]
    assert claims.get("family_name") == expected["family_name"]
    assert claims["groups"] == expected["groups"]
    assert claims["idp_id"] == expected["idp_id"]
    attempt = core_connections.recent_attempts(broker.store, tenant.connection_id)[0]
    assert attempt.outcome == "succeeded"
    # Entra's group overage is reported, never a silent "no groups".
    assert ("groups_overage" in attempt.detail) == expected["groups_overage"]
