"""With Directory Sync on, a login links only to users of the organization's current
directory (DESIGN §4): rows left unlinked by an earlier Directory Sync period do not admit
anyone, and the IdP provisioning such a user again re-links the same `usr_` row."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest

from broker.clock import SystemClock
from broker.core import audit, login, policy
from broker.core.models import UpstreamIdentity
from broker.errors import LoginRefused
from tests.oidc.helpers import Browser, identity, make_tenant, pkce, query
from tests.oidc.test_provider_negative import authorize_params
from tests.scim.conftest import Scim


async def _complete(broker: Any, tenant: Any, email: str, subject: str) -> login.LoginOutcome:
    browser = Browser(broker.url)
    try:
        _, challenge = pkce()
        resp = await browser.get(
            "/oauth2/authorize", params=authorize_params(tenant, challenge, login_hint=email)
        )
        flow_id = query(resp.headers["Location"])["flow"]
        return await broker.services.run(
            login.complete_upstream,
            broker.store,
            broker.services.clock,
            connection_id=tenant.connection_id,
            flow_id=flow_id,
            identity=identity(tenant, email=email, subject=subject),
            actor=audit.Actor("test"),
            config=broker.services.login_config,
        )
    finally:
        await browser.close()


async def test_user_unlinked_by_an_earlier_sync_period_is_refused_then_relinked(
    broker: Any, session: aiohttp.ClientSession
) -> None:
    store, clock = broker.store, SystemClock()
    tenant = make_tenant(store)
    first = policy.enable_directory_sync(store, clock, audit.CLI, tenant.org_id)
    scim = Scim(session, f"{broker.url}/scim/v2/{first.directory_id}", first.token)
    bob = (await scim.create_user("bob@acme.test", externalId="00u-bob"))["id"]
    # Directory Sync off (bob's row is unlinked, still 'active'), then on again; the IdP
    # now provisions only alice (bob was deprovisioned at the IdP meanwhile).
    policy.disable_directory_sync(store, clock, audit.CLI, tenant.org_id)
    again = policy.enable_directory_sync(store, clock, audit.CLI, tenant.org_id)
    scim = Scim(session, f"{broker.url}/scim/v2/{again.directory_id}", again.token)
    alice = (await scim.create_user("alice@acme.test", externalId="00u-alice"))["id"]
    assert (
        store.users.get_any(bob).state == "active" and store.users.get_any(bob).directory_id is None
    )

    with pytest.raises(LoginRefused) as refused:
        await _complete(broker, tenant, "bob@acme.test", "00u-bob")
    assert refused.value.reason == "not_in_directory"
    org = store.organizations.get(tenant.org_id)
    for idp_id, email in (("00u-bob", None), (None, "bob@acme.test"), ("00u-bob", "x@acme.test")):
        assert store.users.find_for_login(org.id, idp_id, email) is None
    # alice, provisioned in the current directory, is admitted and linked.
    outcome = await _complete(broker, tenant, "alice@acme.test", "00u-alice")
    assert "code=" in outcome.redirect_url
    assert store.sessions.get(outcome.session_id).directory_user_id == alice

    # The IdP provisions bob again: the same usr_ row is linked, and he is admitted.
    assert (await scim.create_user("bob@acme.test", externalId="00u-bob"))["id"] == bob
    assert store.users.get_any(bob).directory_id == again.directory_id
    outcome = await _complete(broker, tenant, "bob@acme.test", "00u-bob")
    assert store.sessions.get(outcome.session_id).directory_user_id == bob


async def test_unlinked_rows_are_not_found_while_sync_is_off_or_for_other_orgs(
    broker: Any, session: aiohttp.ClientSession
) -> None:
    store, clock = broker.store, SystemClock()
    tenant = make_tenant(store)
    on = policy.enable_directory_sync(store, clock, audit.CLI, tenant.org_id)
    scim = Scim(session, f"{broker.url}/scim/v2/{on.directory_id}", on.token)
    ann = (await scim.create_user("ann@acme.test", externalId="00u-ann"))["id"]
    assert store.users.find_for_login(tenant.org_id, "00u-ann", None).id == ann
    other = make_tenant(store, domain="other.test")
    policy.enable_directory_sync(store, clock, audit.CLI, other.org_id)
    assert store.users.find_for_login(other.org_id, "00u-ann", "ann@acme.test") is None
    policy.disable_directory_sync(store, clock, audit.CLI, tenant.org_id)
    assert store.users.find_for_login(tenant.org_id, "00u-ann", "ann@acme.test") is None
    # The login gate with Directory Sync on again and ann not re-provisioned.
    policy.enable_directory_sync(store, clock, audit.CLI, tenant.org_id)
    org = store.organizations.get(tenant.org_id)
    who = UpstreamIdentity(
        connection_id=tenant.connection_id, idp_subject="00u-ann", email="ann@acme.test"
    )
    with pytest.raises(LoginRefused) as refused:
        login._directory_user(store, org, who, "ann@acme.test")
    assert refused.value.reason == "not_in_directory"
