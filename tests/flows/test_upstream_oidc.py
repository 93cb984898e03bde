"""End to end over real sockets: Exec's standard client (Authlib's requests client, not
our code) → broker /oauth2/authorize → /oidc/{connection}/start → the customer's OIDC IdP
(FakeOidcIdP over TLS with its own CA) → /oidc/{connection}/callback → Exec's redirect URI
→ /oauth2/token, and the ID token's claims checked against the broker's JWKS.

Authlib's requests client is synchronous: it runs in a worker thread so that the broker
and the IdP keep serving on the test's event loop.
"""

from __future__ import annotations

import asyncio
from typing import Any

import requests
from authlib.integrations.requests_client import OAuth2Session
from joserfc import jwt
from joserfc.jwk import KeySet

from tests.fakes.oidc_idp import FakeOidcIdP
from tests.upstream_oidc import conftest as upstream
from tests.upstream_oidc.helpers import (
    EXEC_REDIRECT,
    Browser,
    make_oidc_tenant,
    query,
)

# The fixtures of tests/upstream_oidc (loopback allowed, fake IdP with TLS), reused here.
settings = upstream.settings
idp = upstream.idp


def _exec_client(broker_url: str, tenant: Any) -> tuple[OAuth2Session, dict[str, Any], str]:
    session = OAuth2Session(
        client_id=tenant.client_id,
        client_secret=tenant.client_secret,
        redirect_uri=EXEC_REDIRECT,
        scope="openid email profile",
        code_challenge_method="S256",
    )
    session.trust_env = False
    meta = requests.get(f"{broker_url}/.well-known/openid-configuration", timeout=5).json()
    return session, meta, ""


async def _login(broker: Any, idp: FakeOidcIdP, tenant: Any) -> tuple[dict[str, Any], Any]:
    session, meta, _ = await asyncio.to_thread(_exec_client, broker.url, tenant)
    verifier = "v" * 43 + "-exec"
    url, state = session.create_authorization_url(
        meta["authorization_endpoint"],
        code_verifier=verifier,
        nonce="exec-nonce-1",
        login_hint="ada@example.com",
    )
    browser = Browser(idp)
    try:
        hop = await browser.walk(url)
    finally:
        await browser.close()
    assert hop.url.startswith(EXEC_REDIRECT), (hop.status, hop.body[:300])
    assert query(hop.url)["state"] == state
    token = await asyncio.to_thread(
        session.fetch_token,
        meta["token_endpoint"],
        authorization_response=hop.url,
        code_verifier=verifier,
    )
    jwks = await asyncio.to_thread(lambda: requests.get(meta["jwks_uri"], timeout=5).json())
    decoded = jwt.decode(token["id_token"], KeySet.import_key_set(jwks))
    jwt.JWTClaimsRegistry(
        iss={"essential": True, "value": broker.url},
        aud={"essential": True, "value": tenant.client_id},
        nonce={"essential": True, "value": "exec-nonce-1"},
    ).validate(decoded.claims)
    return dict(decoded.claims), browser


async def test_exec_signs_in_through_an_upstream_oidc_idp(broker, idp):
    tenant = make_oidc_tenant(broker, idp, preset="okta")
    idp.next_user = dict(idp.next_user, acr="urn:mfa", amr=["pwd", "otp"])
    claims, _ = await _login(broker, idp, tenant)
    assert claims["email"] == "ada@example.com" and claims["email_verified"] is True
    assert claims["given_name"] == "Ada" and claims["family_name"] == "Lovelace"
    assert claims["org_id"] == tenant.org_id
    assert claims["connection_id"] == tenant.connection_id
    assert claims["connection_type"] == "oidc"
    assert claims["idp_id"] == "00u1fake0user"
    assert claims["groups"] == ["Engineering", "Everyone"]
    assert claims["acr"] == "urn:mfa" and claims["amr"] == ["pwd", "otp"]
    # What the broker sent the IdP: PKCE S256, its own state and nonce, the preset's scope.
    sent = idp.authorize_requests[-1]
    assert sent["code_challenge_method"] == "S256" and len(sent["code_challenge"]) == 43
    assert sent["state"].split(".")[0].startswith("flow_")
    assert "groups" in sent["scope"].split() and sent["login_hint"] == "ada@example.com"
    assert idp.token_requests[-1]["auth_method"] == "client_secret_basic"
    # Claims were all in the ID token: no userinfo round trip.
    assert idp.userinfo_requests == []


async def test_profile_claims_from_userinfo_and_private_key_jwt(broker, idp):
    tenant = make_oidc_tenant(broker, idp, auth="private_key_jwt")
    idp.misbehave["id_token_minimal"] = True
    claims, _ = await _login(broker, idp, tenant)
    assert claims["email"] == "ada@example.com" and claims["given_name"] == "Ada"
    assert claims["groups"] == ["Engineering", "Everyone"]
    assert len(idp.userinfo_requests) == 1
    assert idp.token_requests[-1]["auth_method"] == "private_key_jwt"
