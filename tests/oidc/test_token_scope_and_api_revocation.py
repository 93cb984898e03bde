"""A user's tokens carry only the user scopes, never `api` (security review F6.6), and the
Exec API refuses an API token its client revoked (F7, RFC 7009)."""

from __future__ import annotations

import aiohttp
from joserfc import jwt

from broker.core import api_access
from tests.api.conftest import make_client, make_org
from tests.oidc.helpers import Browser, make_tenant
from tests.oidc.test_provider_negative import basic, exchange, sign_in


async def test_authorization_code_flow_never_grants_api(broker):
    tenant = make_tenant(broker.store)
    browser = Browser(broker.url)
    try:
        code, verifier = await sign_in(
            broker, browser, tenant, scope=f"openid {api_access.API_SCOPE} email bogus"
        )
    finally:
        await browser.close()
    flow_scope = broker.store.db.scalar("SELECT scope FROM auth_codes")
    assert flow_scope == "openid email"
    tokens = await (await exchange(broker, tenant, code, verifier)).json()
    assert tokens["scope"] == "openid email"
    claims = jwt.decode(tokens["access_token"], broker.services.keyring.verification_keys()).claims
    assert api_access.API_SCOPE not in claims["scope"].split()
    async with aiohttp.ClientSession() as http:
        resp = await http.get(
            broker.url + "/api/v1/organizations",
            headers={"Authorization": f"Bearer {tokens['access_token']}"},
        )
        assert resp.status == 401


async def test_revoked_api_token_is_refused(broker):
    org = make_org(broker, "Mine")
    client = make_client(broker, [org])
    async with aiohttp.ClientSession() as http:
        resp = await http.post(
            broker.url + "/oauth2/token",
            headers=basic(client.id, client.secret),
            data={"grant_type": "client_credentials", "scope": "api"},
        )
        token = (await resp.json())["access_token"]
        bearer = {"Authorization": f"Bearer {token}"}
        async with http.get(broker.url + "/api/v1/organizations", headers=bearer) as r:
            assert r.status == 200
        revoked = await http.post(
            broker.url + "/oauth2/revoke",
            data={"token": token},
            headers=basic(client.id, client.secret),
        )
        assert revoked.status == 200
        async with http.get(broker.url + "/api/v1/organizations", headers=bearer) as r:
            assert r.status == 401
