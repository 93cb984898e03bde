"""API authentication (Basic client credentials, RFC 9068 bearer tokens) and isolation
between clients, over the real server."""

from __future__ import annotations

import base64
import time
from typing import Any

import aiohttp
from joserfc import jwt
from joserfc.jwk import RSAKey

from tests.api.conftest import ApiClient, make_client, make_org
from tests.conftest import RunningBroker


async def get(broker: RunningBroker, path: str, headers: dict[str, str]) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as http:
        async with http.get(broker.url + path, headers=headers) as r:
            return r.status, await r.json()


def basic(client_id: str, secret: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()}


def token(broker: RunningBroker, client: ApiClient, **overrides: Any) -> str:
    loaded = broker.services.keyring.signing_key("RS256")
    header = {"alg": "RS256", "kid": loaded.record.kid, "typ": "at+jwt"}
    header.update(overrides.pop("_header", {}))
    now = int(time.time())
    claims = {
        "iss": broker.url,
        "aud": broker.url + "/api/v1",
        "sub": client.id,
        "client_id": client.id,
        "scope": "api",
        "iat": now,
        "exp": now + 300,
        "jti": "t1",
    }
    claims.update(overrides)
    claims = {k: v for k, v in claims.items() if v is not None}
    return jwt.encode(header, claims, overrides.pop("_key", None) or loaded.key)


def bearer(value: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {value}"}


async def test_basic_credentials(broker: RunningBroker) -> None:
    org = make_org(broker, "Acme")
    client = make_client(broker, [org])
    status, body = await get(broker, "/api/v1/organizations", client.basic)
    assert status == 200 and [o["id"] for o in body["data"]] == [org]
    for headers in (
        {},
        basic(client.id, client.secret + "x"),
        basic("cli_unknown", client.secret),
        {"Authorization": "Basic !!!"},
        {"Authorization": "Digest x"},
        basic(client.id, ""),
    ):
        async with aiohttp.ClientSession() as http:
            async with http.get(broker.url + "/api/v1/organizations", headers=headers) as r:
                assert r.status == 401, headers
                assert (
                    "Basic" in r.headers["WWW-Authenticate"]
                    or "Bearer" in r.headers["WWW-Authenticate"]
                )
                body = await r.json()
                assert body["error"] == "unauthorized" and client.secret not in str(body)


async def test_bearer_access_tokens(broker: RunningBroker) -> None:
    org = make_org(broker, "Acme")
    client = make_client(broker, [org])
    status, body = await get(broker, f"/api/v1/organizations/{org}", bearer(token(broker, client)))
    assert status == 200 and body["id"] == org
    foreign = RSAKey.generate_key(2048, private=True)
    kid = broker.services.keyring.signing_key("RS256").record.kid
    refused = {
        "wrong issuer": token(broker, client, iss="https://evil.test"),
        "wrong audience": token(broker, client, aud="https://exec.test"),
        "no api scope": token(broker, client, scope="openid email"),
        "expired": token(broker, client, exp=int(time.time()) - 5),
        "no client_id": token(broker, client, client_id=None),
        "unknown client": token(broker, client, client_id="cli_gone"),
        "an ID token": token(broker, client, _header={"typ": "JWT"}),
        "foreign key, our kid": jwt.encode(
            {"alg": "RS256", "kid": kid, "typ": "at+jwt"},
            {
                "iss": broker.url,
                "aud": broker.url + "/api/v1",
                "client_id": client.id,
                "scope": "api",
                "exp": int(time.time()) + 300,
            },
            foreign,
        ),
        "garbage": "not.a.jwt",
    }
    for why, value in refused.items():
        status, body = await get(broker, "/api/v1/organizations", bearer(value))
        assert status == 401, why
        assert body["error"] == "unauthorized"


async def test_clients_see_only_their_organizations(broker: RunningBroker) -> None:
    org_a, org_b = make_org(broker, "A"), make_org(broker, "B")
    a, b = make_client(broker, [org_a]), make_client(broker, [org_b])
    status, _ = await get(broker, f"/api/v1/organizations/{org_b}", a.basic)
    assert status == 404
    status, _ = await get(broker, "/api/v1/organizations/org_doesnotexist", a.basic)
    assert status == 404
    status, _ = await get(broker, f"/api/v1/events?organization_id={org_b}", a.basic)
    assert status == 404
    status, body = await get(broker, "/api/v1/events", a.basic)
    assert status == 200 and {e["organization_id"] for e in body["data"]} == {org_a}
    status, body = await get(broker, "/api/v1/events", b.basic)
    assert {e["organization_id"] for e in body["data"]} == {org_b}
    lonely = make_client(broker, [])
    status, body = await get(broker, "/api/v1/events", lonely.basic)
    assert status == 200 and body["data"] == []
    status, body = await get(broker, "/api/v1/organizations", lonely.basic)
    assert body["data"] == []
