"""The client credentials grant (RFC 6749 §4.4) for Exec's server-to-server API calls,
driven by a standard client (Authlib's httpx client, not our code), over the real server:
the RFC 9068 access token it gets opens the API for the client's organizations only;
other scopes, unknown clients and clients without credentials are refused."""

from __future__ import annotations

import base64
import time
from typing import Any

import aiohttp
import pytest
from authlib.integrations.base_client.errors import OAuthError
from authlib.integrations.httpx_client import AsyncOAuth2Client
from authlib.oauth2.rfc7523 import PrivateKeyJWT
from joserfc import jwt
from joserfc.jwk import ECKey, KeySet

from broker.core import api_access, audit, clients
from tests.api.conftest import ApiClient, make_client, make_org
from tests.conftest import RunningBroker


def token_url(broker: RunningBroker) -> str:
    return broker.url + "/oauth2/token"


async def fetch(broker: RunningBroker, client: ApiClient, **kw: Any) -> dict[str, Any]:
    async with AsyncOAuth2Client(client.id, client.secret, scope=kw.pop("scope", "api")) as rp:
        return dict(await rp.fetch_token(token_url(broker), grant_type="client_credentials", **kw))


async def api_get(broker: RunningBroker, path: str, access_token: str) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as http:
        headers = {"Authorization": f"Bearer {access_token}"}
        async with http.get(broker.url + path, headers=headers) as r:
            return r.status, await r.json()


async def raw_token(
    broker: RunningBroker, data: dict[str, str], headers: dict[str, str] | None = None
) -> aiohttp.ClientResponse:
    async with aiohttp.ClientSession() as http:
        resp = await http.post(token_url(broker), data=data, headers=headers or {})
        await resp.read()
        return resp


def verified(broker: RunningBroker, token: str) -> jwt.Token:
    jwks = broker.services.keyring.public_jwks()
    return jwt.decode(token, KeySet.import_key_set(jwks))  # type: ignore[arg-type]


async def test_token_opens_the_api_for_bound_organizations(broker: RunningBroker) -> None:
    mine, other = make_org(broker, "Mine"), make_org(broker, "Other")
    client = make_client(broker, [mine])
    make_client(broker, [other])
    token = await fetch(broker, client)
    assert token["token_type"].lower() == "bearer" and token["scope"] == "api"
    assert 0 < token["expires_in"] <= int(broker.settings.get("oidc.access_token_ttl_seconds"))
    assert "refresh_token" not in token and "id_token" not in token
    decoded = verified(broker, token["access_token"])
    assert decoded.header["typ"] == "at+jwt" and decoded.header["alg"] == "RS256"
    claims = decoded.claims
    assert claims["iss"] == broker.settings.public_url
    assert claims["aud"] == api_access.audience(broker.settings.public_url)
    assert claims["aud"] == broker.url + "/api/v1"
    assert claims["sub"] == claims["client_id"] == client.id
    assert claims["scope"] == "api" and claims["jti"]
    assert claims["iat"] <= time.time() < claims["exp"]
    assert claims["exp"] - claims["iat"] == token["expires_in"]
    status, body = await api_get(broker, "/api/v1/organizations", token["access_token"])
    assert status == 200, body
    assert [o["id"] for o in body["data"]] == [mine]
    status, _ = await api_get(broker, f"/api/v1/organizations/{other}", token["access_token"])
    assert status == 404
    # Nothing is stored for such a token: it is self-contained.
    assert broker.store.db.scalar("SELECT COUNT(*) FROM access_tokens") == 0


async def test_client_alg_signs_the_token(broker: RunningBroker) -> None:
    org = make_org(broker, "Acme")
    client, secret, _ = clients.create_client(
        broker.store,
        broker.services.clock,
        audit.CLI,
        name="Exec",
        redirect_uris=["https://exec.test/cb"],
        organization_ids=[org],
        id_token_signed_response_alg="ES256",
    )
    assert secret is not None
    token = await fetch(broker, ApiClient(client.id, secret, None, (org,)))
    assert verified(broker, token["access_token"]).header["alg"] == "ES256"
    status, _ = await api_get(broker, f"/api/v1/organizations/{org}", token["access_token"])
    assert status == 200


async def test_private_key_jwt_client(broker: RunningBroker) -> None:
    org = make_org(broker, "Acme")
    key = ECKey.generate_key("P-256", parameters={"kid": "exec-1", "alg": "ES256"}, private=True)
    client, secret, _ = clients.create_client(
        broker.store,
        broker.services.clock,
        audit.CLI,
        name="Exec",
        redirect_uris=["https://exec.test/cb"],
        organization_ids=[org],
        token_endpoint_auth_method="private_key_jwt",
        jwks={"keys": [key.as_dict(private=False)]},
    )
    assert secret is None
    async with AsyncOAuth2Client(
        client.id,
        key,
        scope="api",
        token_endpoint_auth_method=PrivateKeyJWT(token_url(broker), alg="ES256"),
    ) as rp:
        token = await rp.fetch_token(token_url(broker), grant_type="client_credentials")
    status, body = await api_get(broker, "/api/v1/organizations", token["access_token"])
    assert status == 200 and [o["id"] for o in body["data"]] == [org]


@pytest.mark.parametrize("scope", ["openid", "api openid", "admin", ""])
async def test_other_scopes_are_invalid_scope(broker: RunningBroker, scope: str) -> None:
    client = make_client(broker, [make_org(broker, "Acme")])
    data = {"grant_type": "client_credentials", "scope": scope}
    resp = await raw_token(broker, data, client.basic)
    assert resp.status == 400
    assert (await resp.json())["error"] == "invalid_scope"


async def test_standard_client_sees_invalid_scope(broker: RunningBroker) -> None:
    client = make_client(broker, [make_org(broker, "Acme")])
    with pytest.raises(OAuthError) as caught:
        await fetch(broker, client, scope="openid email")
    assert caught.value.error == "invalid_scope"


async def test_unknown_and_public_clients_are_invalid_client(broker: RunningBroker) -> None:
    client = make_client(broker, [make_org(broker, "Acme")])
    data = {"grant_type": "client_credentials", "scope": "api"}
    attempts: dict[str, tuple[dict[str, str], dict[str, str]]] = {
        "unknown client": (data, _basic("cli_unknown", client.secret)),
        "wrong secret": (data, _basic(client.id, "brk_cs_wrong")),
        "public (client_id only, no credentials)": ({**data, "client_id": client.id}, {}),
        "no client at all": (data, {}),
    }
    for why, (form, headers) in attempts.items():
        resp = await raw_token(broker, form, headers)
        assert resp.status == 401, why
        assert (await resp.json())["error"] == "invalid_client", why
        assert resp.headers["Cache-Control"] == "no-store"
        assert "WWW-Authenticate" in resp.headers
    with pytest.raises(OAuthError) as caught:
        await fetch(broker, ApiClient("cli_unknown", "brk_cs_x", None, ()))
    assert caught.value.error == "invalid_client"


async def test_code_flow_tokens_do_not_open_the_api(broker: RunningBroker) -> None:
    """An access token for userinfo (the code flow's audience) is refused by the API even
    when its scope names `api`."""
    from broker.oidc import tokens

    client = make_client(broker, [make_org(broker, "Acme")])
    token, _, _ = tokens.access_token(
        broker.services.keyring,
        issuer=broker.url,
        client_id=client.id,
        alg="RS256",
        subject="u_x",
        scope="openid api",
        ttl=300,
        auth_time=time.time(),
        sid="ses_x",
        org_id=None,
        grant_id="fam_x",
    )
    status, _ = await api_get(broker, "/api/v1/organizations", token)
    assert status == 401


async def test_revocation_records_the_token(broker: RunningBroker) -> None:
    """RFC 7009 at /oauth2/revoke: the API token's jti is recorded as revoked (the API's
    bearer check can consult core.grants.token_revoked)."""
    from broker.core import grants

    client = make_client(broker, [make_org(broker, "Acme")])
    token = await fetch(broker, client)
    jti = verified(broker, token["access_token"]).claims["jti"]
    assert not grants.token_revoked(broker.store, jti)
    async with aiohttp.ClientSession() as http:
        resp = await http.post(
            broker.url + "/oauth2/revoke",
            data={"token": token["access_token"]},
            headers=client.basic,
        )
        assert resp.status == 200
    assert grants.token_revoked(broker.store, jti)


async def test_discovery_advertises_the_grant(broker: RunningBroker) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.get(broker.url + "/.well-known/openid-configuration") as r:
            meta = await r.json()
    assert "client_credentials" in meta["grant_types_supported"]
    assert "api" in meta["scopes_supported"]


def _basic(client_id: str, secret: str) -> dict[str, str]:
    raw = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    return {"Authorization": f"Basic {raw}"}
