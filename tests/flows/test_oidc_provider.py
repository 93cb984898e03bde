"""End to end over real sockets: a standard OIDC client (Authlib's httpx client, not our
code) against the broker: discovery → authorize → login → token → ID token validated
against the JWKS → userinfo → refresh → RP-initiated logout → back-channel logout."""

from __future__ import annotations

import asyncio
import socket

import pytest
from aiohttp import web
from authlib.integrations.httpx_client import AsyncOAuth2Client
from joserfc import jwt
from joserfc.jwk import KeySet

from tests.oidc.helpers import (
    POST_LOGOUT,
    REDIRECT,
    Browser,
    make_tenant,
    query,
    upstream_login,
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
async def exec_backchannel():
    """Exec's back-channel logout endpoint: records what it receives."""
    received: list[str] = []

    async def handler(request: web.Request) -> web.Response:
        form = await request.post()
        received.append(str(form["logout_token"]))
        return web.Response(status=200)

    app = web.Application()
    app.router.add_post("/backchannel", handler)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = _free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    yield f"http://127.0.0.1:{port}/backchannel", received
    await runner.cleanup()


def _validate_id_token(token: str, jwks: dict, issuer: str, client_id: str, nonce: str) -> dict:
    decoded = jwt.decode(token, KeySet.import_key_set(jwks))
    assert decoded.header["kid"]
    jwt.JWTClaimsRegistry(
        iss={"essential": True, "value": issuer},
        aud={"essential": True, "value": client_id},
        nonce={"essential": True, "value": nonce},
        sub={"essential": True},
    ).validate(decoded.claims)
    return dict(decoded.claims)


async def test_standard_client_full_flow(broker, exec_backchannel):
    backchannel_uri, received = exec_backchannel
    tenant = make_tenant(broker.store, backchannel_uri=backchannel_uri)
    browser = Browser(broker.url)
    rp = AsyncOAuth2Client(
        client_id=tenant.client_id,
        client_secret=tenant.client_secret,
        redirect_uri=REDIRECT,
        scope="openid email profile",
        code_challenge_method="S256",
    )
    try:
        meta = (
            await rp.request(
                "GET", broker.url + "/.well-known/openid-configuration", withhold_token=True
            )
        ).json()
        assert meta["issuer"] == broker.url
        jwks = (await rp.request("GET", meta["jwks_uri"], withhold_token=True)).json()

        verifier = "v" * 20 + "-" + "x" * 40
        url, state = rp.create_authorization_url(
            meta["authorization_endpoint"],
            code_verifier=verifier,
            nonce="n-123",
            login_hint="alice@acme.test",
        )
        resp = await browser.get(url)
        assert resp.status == 302
        outcome = await upstream_login(broker, browser, tenant, resp.headers["Location"])
        assert outcome.redirect_url.startswith(REDIRECT)
        assert query(outcome.redirect_url)["state"] == state
        assert query(outcome.redirect_url)["iss"] == broker.url

        token = await rp.fetch_token(
            meta["token_endpoint"],
            authorization_response=outcome.redirect_url,
            code_verifier=verifier,
        )
        claims = _validate_id_token(token["id_token"], jwks, broker.url, tenant.client_id, "n-123")
        assert claims["email"] == "alice@acme.test" and claims["email_verified"] is True
        assert claims["org_id"] == tenant.org_id
        assert claims["connection_id"] == tenant.connection_id
        assert claims["connection_type"] == "saml"
        assert claims["idp_id"] == "00u-alice"
        assert claims["groups"] == ["eng"]
        assert claims["role"] == "member" and claims["seat"] == "basic"
        assert claims["sid"] and claims["auth_time"]

        info = (await rp.get(meta["userinfo_endpoint"])).json()
        assert info["sub"] == claims["sub"] and info["email"] == "alice@acme.test"

        refreshed = await rp.refresh_token(meta["token_endpoint"])
        assert refreshed["refresh_token"] != token["refresh_token"]
        again = (
            _validate_id_token(refreshed["id_token"], jwks, broker.url, tenant.client_id, "n-123")
            if "nonce" in jwt.decode(refreshed["id_token"], KeySet.import_key_set(jwks)).claims
            else None
        )
        assert again is None or again["sub"] == claims["sub"]

        # RP-initiated logout ends the broker session and notifies Exec's back channel.
        resp = await browser.get(
            meta["end_session_endpoint"],
            params={
                "id_token_hint": token["id_token"],
                "post_logout_redirect_uri": POST_LOGOUT,
                "state": "bye",
            },
        )
        assert resp.status == 302
        assert resp.headers["Location"] == POST_LOGOUT + "?state=bye"
        for _ in range(40):
            if received:
                break
            await asyncio.sleep(0.1)
        assert received, "no back-channel logout arrived"
        logout = jwt.decode(received[0], KeySet.import_key_set(jwks))
        assert logout.header["typ"] == "logout+jwt"
        assert logout.claims["sid"] == claims["sid"] and logout.claims["sub"] == claims["sub"]
        assert logout.claims["aud"] == tenant.client_id and "nonce" not in logout.claims
        assert "http://schemas.openid.net/event/backchannel-logout" in logout.claims["events"]

        # The session's tokens are gone: refresh fails, userinfo refuses the access token.
        resp = await rp.post(
            meta["token_endpoint"],
            data={"grant_type": "refresh_token", "refresh_token": refreshed["refresh_token"]},
            auth=(tenant.client_id, tenant.client_secret),
        )
        assert resp.status_code == 400 and resp.json()["error"] == "invalid_grant"
        resp = await rp.get(meta["userinfo_endpoint"])
        assert resp.status_code == 401
        # And a new authorize needs the IdP again (prompt=none: login_required).
        url, _ = rp.create_authorization_url(
            meta["authorization_endpoint"], code_verifier=verifier, nonce="n2", prompt="none"
        )
        resp = await browser.get(url)
        assert query(resp.headers["Location"])["error"] == "login_required"
    finally:
        await rp.aclose()
        await browser.close()
