"""Self-test of FakeOidcIdP: an independent client (Authlib's requests client, joserfc)
drives it through discovery → authorize → token → ID token validation → userinfo,
and every misbehaviour knob is checked to produce the fault it promises.

Authlib's requests client is synchronous; it runs in a worker thread so that the
IdP keeps serving on the test's event loop.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import secrets
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, cast
from urllib.parse import parse_qs, urlsplit

import aiohttp
import pytest
import requests
from authlib.integrations.requests_client import OAuth2Session
from authlib.oauth2.rfc7523 import PrivateKeyJWT
from joserfc import jwt
from joserfc.errors import (
    BadSignatureError,
    ExpiredTokenError,
    InvalidClaimError,
    InvalidKeyIdError,
    MissingClaimError,
    UnsupportedAlgorithmError,
)
from joserfc.jwk import KeySet, RSAKey
from joserfc.jwt import JWTClaimsRegistry

from tests.fakes.oidc_idp import FakeOidcIdP

REDIRECT = "https://rp.example.test/callback"
SCOPE = "openid email profile groups"


@pytest.fixture
async def idp() -> AsyncIterator[FakeOidcIdP]:
    async with FakeOidcIdP(tls=True) as server:
        server.register_client("rp-basic", "s3cret:with/odd chars", [REDIRECT])
        yield server


@pytest.fixture
def ca_file(idp: FakeOidcIdP, tmp_path: Path) -> str:
    path = tmp_path / "ca.pem"
    path.write_bytes(idp.ca_pem)
    return str(path)


def validate_id_token(
    id_token: str, jwks: dict[str, Any], issuer: str, client_id: str, nonce: str
) -> dict[str, Any]:
    """What a relying party must do (OIDC Core §3.1.3.7), with joserfc only."""
    token = jwt.decode(id_token, KeySet.import_key_set(cast(Any, jwks)), algorithms=["RS256"])
    JWTClaimsRegistry(
        iss={"essential": True, "value": issuer},
        aud={"essential": True, "value": client_id},
        nonce={"essential": True, "value": nonce},
        exp={"essential": True},
    ).validate(token.claims)
    return token.claims


def authlib_login(
    idp_issuer: str, ca_file: str, session: OAuth2Session, client_id: str
) -> dict[str, Any]:
    """The whole flow with Authlib's client, following the redirect by hand."""
    config = requests.get(f"{idp_issuer}/.well-known/openid-configuration", verify=ca_file).json()
    assert config["issuer"] == idp_issuer
    # REQUESTS_CA_BUNDLE in the environment would override session.verify otherwise.
    session.trust_env = False
    session.verify = ca_file
    verifier = secrets.token_urlsafe(48)
    nonce, state = secrets.token_urlsafe(16), secrets.token_urlsafe(16)
    url, _ = session.create_authorization_url(
        config["authorization_endpoint"], state=state, code_verifier=verifier, nonce=nonce
    )
    answer = requests.get(url, allow_redirects=False, verify=ca_file)
    assert answer.status_code == 302
    location = answer.headers["Location"]
    params = parse_qs(urlsplit(location).query)
    assert location.startswith(REDIRECT + "?")
    assert params["state"] == [state]
    assert params["iss"] == [idp_issuer]
    token = session.fetch_token(
        config["token_endpoint"], authorization_response=location, code_verifier=verifier
    )
    jwks = requests.get(config["jwks_uri"], verify=ca_file).json()
    claims = validate_id_token(token["id_token"], jwks, idp_issuer, client_id, nonce)
    userinfo = session.get(config["userinfo_endpoint"]).json()
    return {"token": token, "claims": claims, "userinfo": userinfo}


def new_session(client_id: str, secret: Any, method: str) -> OAuth2Session:
    return OAuth2Session(
        client_id,
        secret,
        scope=SCOPE,
        redirect_uri=REDIRECT,
        code_challenge_method="S256",
        token_endpoint_auth_method=method,
    )


async def test_authlib_client_secret_basic(idp: FakeOidcIdP, ca_file: str) -> None:
    idp.next_user = {**idp.next_user, "sub": "u-42", "email": "grace@example.com"}
    with new_session("rp-basic", "s3cret:with/odd chars", "client_secret_basic") as session:
        result = await asyncio.to_thread(authlib_login, idp.issuer, ca_file, session, "rp-basic")
    claims, userinfo = result["claims"], result["userinfo"]
    assert claims["sub"] == userinfo["sub"] == "u-42"
    assert claims["email"] == userinfo["email"] == "grace@example.com"
    assert claims["groups"] == ["Engineering", "Everyone"]
    assert claims["email_verified"] is True
    assert idp.token_requests[-1]["auth_method"] == "client_secret_basic"
    assert idp.authorize_requests[-1]["code_challenge_method"] == "S256"


async def test_authlib_client_secret_post(idp: FakeOidcIdP, ca_file: str) -> None:
    idp.register_client("rp-post", "post-secret", [REDIRECT], auth_method="client_secret_post")
    with new_session("rp-post", "post-secret", "client_secret_post") as session:
        result = await asyncio.to_thread(authlib_login, idp.issuer, ca_file, session, "rp-post")
    assert result["userinfo"]["given_name"] == "Ada"
    assert idp.token_requests[-1]["auth_method"] == "client_secret_post"


async def test_authlib_private_key_jwt(idp: FakeOidcIdP, ca_file: str) -> None:
    client_key = RSAKey.generate_key(2048, parameters={"kid": "rp-key-1"})
    idp.register_client(
        "rp-jwt", None, [REDIRECT], jwks=KeySet([client_key]).as_dict(private=False)
    )
    with new_session("rp-jwt", client_key.as_dict(private=True), "private_key_jwt") as session:
        session.register_client_auth_method(PrivateKeyJWT(f"{idp.issuer}/token"))
        result = await asyncio.to_thread(authlib_login, idp.issuer, ca_file, session, "rp-jwt")
    assert result["claims"]["sub"] == "00u1fake0user"
    assert idp.token_requests[-1]["auth_method"] == "private_key_jwt"


# -- raw protocol checks (aiohttp client) -------------------------------------


def pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode()).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def basic(user: str, password: str) -> dict[str, str]:
    credentials = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {credentials}"}


class Rp:
    """A bare-hands relying party, so that each protocol step can be bent."""

    def __init__(self, idp: FakeOidcIdP, http: aiohttp.ClientSession) -> None:
        self.idp, self.http = idp, http
        self.verifier, self.challenge = pkce()
        self.nonce = secrets.token_urlsafe(8)

    async def authorize(self, **overrides: str) -> tuple[int, dict[str, str]]:
        params = {
            "client_id": "rp-basic",
            "redirect_uri": REDIRECT,
            "response_type": "code",
            "scope": SCOPE,
            "state": "st-1",
            "nonce": self.nonce,
            "code_challenge": self.challenge,
            "code_challenge_method": "S256",
            **overrides,
        }
        params = {k: v for k, v in params.items() if v != "-"}
        async with self.http.get(
            f"{self.idp.issuer}/authorize", params=params, allow_redirects=False
        ) as resp:
            location = resp.headers.get("Location", "")
            query = {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}
            return resp.status, query

    async def token(self, code: str, **overrides: str) -> tuple[int, dict[str, Any]]:
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT,
            "code_verifier": self.verifier,
            **overrides,
        }
        form = {k: v for k, v in form.items() if v != "-"}
        # RFC 6749 §2.3.1: the secret is form-encoded before Basic encoding.
        auth = basic("rp-basic", "s3cret%3Awith%2Fodd+chars")
        async with self.http.post(f"{self.idp.issuer}/token", data=form, headers=auth) as resp:
            return resp.status, await resp.json()

    async def login(self) -> dict[str, Any]:
        status, query = await self.authorize()
        assert status == 302, query
        status, body = await self.token(query["code"])
        assert status == 200, body
        return body

    async def jwks(self) -> dict[str, Any]:
        async with self.http.get(f"{self.idp.issuer}/jwks") as resp:
            return await resp.json()

    async def userinfo(self, access_token: str) -> tuple[int, dict[str, Any]]:
        headers = {"Authorization": f"Bearer {access_token}"}
        async with self.http.get(f"{self.idp.issuer}/userinfo", headers=headers) as resp:
            return resp.status, await resp.json()


@pytest.fixture
async def rp(idp: FakeOidcIdP) -> AsyncIterator[Rp]:
    connector = aiohttp.TCPConnector(ssl=idp.client_ssl_context())
    async with aiohttp.ClientSession(connector=connector) as http:
        yield Rp(idp, http)


async def test_raw_login_validates(rp: Rp, idp: FakeOidcIdP) -> None:
    body = await rp.login()
    claims = validate_id_token(body["id_token"], await rp.jwks(), idp.issuer, "rp-basic", rp.nonce)
    assert claims["at_hash"]
    assert body["token_type"] == "Bearer"


async def test_code_is_single_use_and_replay_revokes_tokens(rp: Rp) -> None:
    status, query = await rp.authorize()
    status, body = await rp.token(query["code"])
    assert status == 200
    assert (await rp.userinfo(body["access_token"]))[0] == 200
    status, again = await rp.token(query["code"])
    assert (status, again["error"]) == (400, "invalid_grant")
    assert (await rp.userinfo(body["access_token"]))[0] == 401


@pytest.mark.parametrize(
    ("overrides", "error"),
    [
        ({"code_verifier": "x" * 43}, "invalid_grant"),
        ({"code_verifier": "-"}, "invalid_grant"),
        ({"redirect_uri": REDIRECT + "/other"}, "invalid_grant"),
        ({"grant_type": "password"}, "unsupported_grant_type"),
    ],
)
async def test_token_request_errors(rp: Rp, overrides: dict[str, str], error: str) -> None:
    _, query = await rp.authorize()
    status, body = await rp.token(query["code"], **overrides)
    assert (status, body["error"]) == (400, error)


async def test_wrong_client_secret_is_invalid_client(rp: Rp, idp: FakeOidcIdP) -> None:
    _, query = await rp.authorize()
    form = {"grant_type": "authorization_code", "code": query["code"], "redirect_uri": REDIRECT}
    auth = basic("rp-basic", "wrong")
    async with rp.http.post(f"{idp.issuer}/token", data=form, headers=auth) as resp:
        assert resp.status == 401
        assert (await resp.json())["error"] == "invalid_client"
        assert resp.headers["WWW-Authenticate"].startswith("Basic")


@pytest.mark.parametrize(
    ("overrides", "error"),
    [
        ({"code_challenge": "-", "code_challenge_method": "-"}, "invalid_request"),
        ({"code_challenge_method": "plain"}, "invalid_request"),
        ({"scope": "email"}, "invalid_scope"),
        ({"response_type": "token"}, "unsupported_response_type"),
    ],
)
async def test_authorize_errors_redirect_with_state(
    rp: Rp, overrides: dict[str, str], error: str
) -> None:
    status, query = await rp.authorize(**overrides)
    assert status == 302
    assert (query["error"], query["state"]) == (error, "st-1")
    assert "code" not in query


async def test_bad_redirect_uri_or_client_never_redirects(rp: Rp) -> None:
    assert (await rp.authorize(redirect_uri="https://evil.example/cb"))[0] == 400
    assert (await rp.authorize(client_id="nobody"))[0] == 400


async def test_access_denied_mode(rp: Rp, idp: FakeOidcIdP) -> None:
    idp.misbehave = {"authorize_error": "access_denied"}
    status, query = await rp.authorize()
    assert status == 302
    assert query["error"] == "access_denied" and query["state"] == "st-1"


async def test_token_error_mode(rp: Rp, idp: FakeOidcIdP) -> None:
    _, query = await rp.authorize()
    idp.misbehave = {"token_error": "server_error"}
    assert (await rp.token(query["code"]))[1]["error"] == "server_error"


@pytest.mark.parametrize(
    ("knob", "exception"),
    [
        ({"id_token_iss": "https://evil.example"}, InvalidClaimError),
        ({"id_token_aud": "someone-else"}, InvalidClaimError),
        ({"id_token_nonce": "not-yours"}, InvalidClaimError),
        ({"id_token_omit_nonce": True}, MissingClaimError),
        ({"id_token_expired": True}, ExpiredTokenError),
        ({"id_token_bad_signature": True}, BadSignatureError),
        ({"id_token_alg_none": True}, UnsupportedAlgorithmError),
    ],
)
async def test_id_token_faults_fail_validation(
    rp: Rp, idp: FakeOidcIdP, knob: dict[str, Any], exception: type[Exception]
) -> None:
    body = await rp.login()
    validate_id_token(body["id_token"], await rp.jwks(), idp.issuer, "rp-basic", rp.nonce)
    idp.misbehave = knob
    body = await rp.login()
    with pytest.raises(exception):
        validate_id_token(body["id_token"], await rp.jwks(), idp.issuer, "rp-basic", rp.nonce)


async def test_minimal_id_token_needs_userinfo(rp: Rp, idp: FakeOidcIdP) -> None:
    idp.misbehave = {"id_token_minimal": True}
    body = await rp.login()
    claims = validate_id_token(body["id_token"], await rp.jwks(), idp.issuer, "rp-basic", rp.nonce)
    assert "email" not in claims and "groups" not in claims
    status, info = await rp.userinfo(body["access_token"])
    assert status == 200
    assert (info["email"], info["groups"]) == ("ada@example.com", ["Engineering", "Everyone"])


async def test_claims_follow_scope(rp: Rp) -> None:
    _, query = await rp.authorize(scope="openid")
    _, body = await rp.token(query["code"])
    _, info = await rp.userinfo(body["access_token"])
    assert "email" not in info and "given_name" not in info
    assert info["groups"] == ["Engineering", "Everyone"]


async def test_userinfo_sub_mismatch_knob(rp: Rp, idp: FakeOidcIdP) -> None:
    idp.misbehave = {"userinfo_sub": "someone-else"}
    body = await rp.login()
    assert (await rp.userinfo(body["access_token"]))[1]["sub"] == "someone-else"


async def test_userinfo_requires_valid_bearer(rp: Rp) -> None:
    status, body = await rp.userinfo("not-a-token")
    assert (status, body["error"]) == (401, "invalid_token")


async def test_rotation_publishes_new_kid_and_keeps_old(rp: Rp, idp: FakeOidcIdP) -> None:
    old_kid = idp.signing_kid
    new_kid = idp.rotate_key()
    kids = [k["kid"] for k in (await rp.jwks())["keys"]]
    assert kids == [old_kid, new_kid]
    body = await rp.login()
    assert (
        jwt.decode(body["id_token"], KeySet.import_key_set(cast(Any, await rp.jwks()))).header[
            "kid"
        ]
        == new_kid
    )  # type: ignore[arg-type]
    idp.rotate_key(keep_old=False)
    assert len((await rp.jwks())["keys"]) == 1


async def test_unpublished_kid_then_published(rp: Rp, idp: FakeOidcIdP) -> None:
    jwks_before = await rp.jwks()
    kid = idp.rotate_key(publish=False)
    assert kid not in [k["kid"] for k in (await rp.jwks())["keys"]]
    body = await rp.login()
    with pytest.raises(InvalidKeyIdError):
        validate_id_token(body["id_token"], jwks_before, idp.issuer, "rp-basic", rp.nonce)
    idp.publish_keys()
    validate_id_token(body["id_token"], await rp.jwks(), idp.issuer, "rp-basic", rp.nonce)


async def test_discovery_issuer_knob(rp: Rp, idp: FakeOidcIdP) -> None:
    idp.misbehave = {"discovery_issuer": "https://other.example"}
    async with rp.http.get(f"{idp.issuer}/.well-known/openid-configuration") as resp:
        assert (await resp.json())["issuer"] == "https://other.example"


async def test_unknown_knob_fails_loudly(rp: Rp, idp: FakeOidcIdP) -> None:
    idp.misbehave = {"id_token_isss": "typo"}
    async with rp.http.get(f"{idp.issuer}/jwks") as resp:
        assert resp.status == 500


async def test_hang_then_stop_is_prompt(rp: Rp, idp: FakeOidcIdP) -> None:
    idp.misbehave = {"hang": True}
    with pytest.raises(asyncio.TimeoutError):
        async with rp.http.get(
            f"{idp.issuer}/jwks", timeout=aiohttp.ClientTimeout(total=0.5)
        ) as resp:
            await resp.read()
    started = time.monotonic()
    await idp.stop()
    assert time.monotonic() - started < 3


async def test_down_then_up_on_the_same_issuer(rp: Rp, idp: FakeOidcIdP) -> None:
    issuer = idp.issuer
    await idp.stop()
    with pytest.raises(aiohttp.ClientConnectorError):
        await rp.jwks()
    await idp.start()
    assert idp.issuer == issuer
    assert (await rp.jwks())["keys"]


async def test_plain_http_mode() -> None:
    async with FakeOidcIdP() as plain, aiohttp.ClientSession() as http:
        assert plain.issuer.startswith("http://127.0.0.1:")
        async with http.get(f"{plain.issuer}/.well-known/openid-configuration") as resp:
            assert (await resp.json())["token_endpoint"] == f"{plain.issuer}/token"


def test_only_loopback() -> None:
    with pytest.raises(ValueError):
        FakeOidcIdP(host="0.0.0.0")
