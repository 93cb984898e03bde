"""Entra ID group overage end to end (broker.saml.acs `_overage_groups`): above 150 groups
Entra replaces the groups claim with `groups.link` (IDP-NOTES.md; the recorded attributes are
tests/data/saml/entra/attributes-overage.json). With Directory Sync on, the user's groups
come from the directory that SCIM (real HTTP, directory token) filled in; the login goes
pysaml2 IdP → ACS → our OIDC provider, and the ID token Exec receives is checked. The
admin is always told that the IdP sent an overage link, never a silent "no groups"."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import aiohttp

from broker.core import connections as core_connections
from tests.fakes.saml_idp import FakeSamlIdP, User
from tests.oidc.helpers import Browser
from tests.saml.test_e2e_harness import SamlTenant, exec_client, idp, make_saml_tenant
from tests.saml.test_e2e_harness import sp_initiated_login as login
from tests.scim.conftest import Scim, enable

__all__ = ["idp"]
FIXTURE = Path(__file__).resolve().parent.parent / "data" / "saml" / "entra"
OVERAGE = json.loads((FIXTURE / "attributes-overage.json").read_text())
GROUPS_LINK = "http://schemas.microsoft.com/claims/groups.link"
GROUPS_CLAIM = "http://schemas.microsoft.com/ws/2008/06/identity/claims/groups"
OBJECT_ID = OVERAGE["expected"]["idp_id"]
EMAIL = OVERAGE["expected"]["email"]


def entra_tenant(broker: Any, idp: FakeSamlIdP) -> SamlTenant:
    """An Entra-preset connection; the IdP signs the assertion only (Entra's default)."""
    tenant = make_saml_tenant(broker, idp, preset="entra", domain=EMAIL.split("@")[1])
    assert GROUPS_LINK in OVERAGE["attributes"] and GROUPS_CLAIM not in OVERAGE["attributes"]
    idp.next_user = User(
        name_id=OVERAGE["name_id"],
        name_id_format=OVERAGE["name_id_format"],
        attributes=OVERAGE["attributes"],
    )
    idp.options.sign_response, idp.options.sign_assertion = False, True
    return tenant


async def sign_in(broker: Any, tenant: SamlTenant) -> dict[str, Any]:
    browser, rp = Browser(broker.url), exec_client(broker, tenant)
    try:
        return await login(broker, tenant, browser, rp, login_hint=EMAIL)
    finally:
        await browser.close()
        await rp.aclose()


async def provision(broker: Any, tenant: SamlTenant, group_names: list[str]) -> str:
    """Turn Directory Sync on and provision the user (externalId = Entra object id, as
    Entra's SCIM client sends it) plus `group_names` with the user as member, over HTTP."""
    directory = enable(broker.store, tenant.org_id, broker.url)
    async with aiohttp.ClientSession() as http:
        scim = Scim(http, directory.base, directory.token)
        user = await scim.create_user(EMAIL, externalId=OBJECT_ID)
        for name in group_names:
            group = await scim.create_group(name, [user["id"]])
            assert [m["value"] for m in group.get("members", [])] == [user["id"]]
        # Another user's group: must not leak into our user's claim.
        other = await scim.create_user("grace.hopper@" + EMAIL.split("@")[1])
        await scim.create_group("Not Ada's", [other["id"]])
    return str(user["id"])


def last_attempt(broker: Any, tenant: SamlTenant) -> Any:
    return core_connections.recent_attempts(broker.store, tenant.connection_id)[0]


async def test_overage_groups_come_from_directory_sync(broker, idp):
    tenant = entra_tenant(broker, idp)
    user_id = await provision(broker, tenant, ["Engineering", "Finance Approvers"])

    claims = await sign_in(broker, tenant)

    assert claims["email"] == EMAIL and claims["idp_id"] == OBJECT_ID
    assert claims["directory_user_id"] == user_id
    assert sorted(claims["groups"]) == ["Engineering", "Finance Approvers"]
    attempt = last_attempt(broker, tenant)
    assert attempt.outcome == "succeeded"
    assert attempt.detail["groups_overage"] == "groups taken from Directory Sync"


async def test_overage_with_no_directory_groups_is_flagged_not_silent(broker, idp):
    tenant = entra_tenant(broker, idp)
    user_id = await provision(broker, tenant, [])

    claims = await sign_in(broker, tenant)

    # The directory is the source of truth with Directory Sync on: it says "no groups",
    # and that is what Exec gets; the admin sees that the IdP had sent an overage link.
    assert claims["directory_user_id"] == user_id
    assert claims["groups"] == []
    attempt = last_attempt(broker, tenant)
    assert attempt.outcome == "succeeded"
    assert attempt.detail["groups_overage"] == "groups taken from Directory Sync"


async def test_overage_without_directory_sync_says_no_groups_available(broker, idp):
    tenant = entra_tenant(broker, idp)

    claims = await sign_in(broker, tenant)

    assert claims["groups"] == [] and "directory_user_id" not in claims
    attempt = last_attempt(broker, tenant)
    assert attempt.outcome == "succeeded"
    assert "not in Directory Sync: no groups available" in attempt.detail["groups_overage"]
