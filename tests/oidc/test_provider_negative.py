"""Every refusal of the provider, over real sockets: PKCE, redirect URIs, code replay,
client authentication, expired codes, refresh reuse, bad bearers, prompt=none,
sessions, ID-token-only clients, policy at the login hand-off, key rotation."""

from __future__ import annotations

import base64
import time
from typing import Any

import aiohttp
import pytest
from joserfc import jwt
from joserfc.jwk import ECKey, KeySet

from broker.core import access, audit, login, policy
from broker.crypto.signing import rotate
from broker.errors import LoginRefused
from broker.oidc import tokens as oidc_tokens
from tests.oidc.helpers import (
    INITIATE,
    REDIRECT,
    Browser,
    Tenant,
    identity,
    make_tenant,
    pkce,
    query,
    upstream_login,
)

JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


def basic(client_id: str, secret: str | None) -> dict[str, str]:
    raw = base64.b64encode(f"{client_id}:{secret or ''}".encode()).decode()
    return {"Authorization": f"Basic {raw}"}


def authorize_params(tenant: Tenant, challenge: str, **extra: str) -> dict[str, str]:
    params = {
        "client_id": tenant.client_id,
        "redirect_uri": REDIRECT,
        "response_type": "code",
        "scope": "openid email",
        "state": "s-1",
        "nonce": "n-1",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        "login_hint": f"alice@{tenant.domain}",
    }
    params.update(extra)
    return params


async def sign_in(broker: Any, browser: Browser, tenant: Tenant, **extra: str) -> tuple[str, str]:
    """Authorize → (upstream) → code; returns (code, verifier)."""
    verifier, challenge = pkce()
    resp = await browser.get(
        "/oauth2/authorize", params=authorize_params(tenant, challenge, **extra)
    )
    assert resp.status == 302, await resp.text()
    location = resp.headers["Location"]
    if not location.startswith(REDIRECT):
        location = (await upstream_login(broker, browser, tenant, location)).redirect_url
    return query(location)["code"], verifier


async def exchange(
    broker: Any, tenant: Tenant, code: str, verifier: str | None, secret: str | None = None
) -> aiohttp.ClientResponse:
    data = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT}
    if verifier is not None:
        data["code_verifier"] = verifier
    async with aiohttp.ClientSession() as http:
        resp = await http.post(
            broker.url + "/oauth2/token",
            data=data,
            headers=basic(tenant.client_id, secret or tenant.client_secret),
        )
        await resp.read()
        return resp


@pytest.fixture
async def browser(broker):
    b = Browser(broker.url)
    yield b
    await b.close()


@pytest.fixture
def tenant(broker) -> Tenant:
    return make_tenant(broker.store)


async def userinfo_status(broker: Any, token: str) -> aiohttp.ClientResponse:
    async with aiohttp.ClientSession() as http:
        resp = await http.get(
            broker.url + "/oauth2/userinfo", headers={"Authorization": f"Bearer {token}"}
        )
        await resp.read()
        return resp


# -- authorization endpoint ----------------------------------------------------------


async def test_unregistered_redirect_uri_is_not_followed(broker, browser, tenant):
    _, challenge = pkce()
    params = authorize_params(tenant, challenge, redirect_uri="http://127.0.0.1:9/evil")
    resp = await browser.get("/oauth2/authorize", params=params)
    assert resp.status == 400 and "Location" not in resp.headers
    assert "unregistered return address" in await resp.text()
    resp = await browser.get(
        "/oauth2/authorize", params=dict(params, client_id="cli_nope", redirect_uri=REDIRECT)
    )
    assert resp.status == 400 and "Location" not in resp.headers


@pytest.mark.parametrize(
    "change",
    [{"code_challenge_method": "plain"}, {"code_challenge_method": ""}, {"code_challenge": ""}],
)
async def test_pkce_s256_required(broker, browser, tenant, change):
    _, challenge = pkce()
    params = {k: v for k, v in dict(authorize_params(tenant, challenge), **change).items() if v}
    resp = await browser.get("/oauth2/authorize", params=params)
    assert resp.status == 302
    answer = query(resp.headers["Location"])
    assert answer["error"] == "invalid_request" and answer["state"] == "s-1"
    assert answer["iss"] == broker.url


async def test_prompt_none_without_session_is_login_required(broker, browser, tenant):
    _, challenge = pkce()
    resp = await browser.get(
        "/oauth2/authorize", params=authorize_params(tenant, challenge, prompt="none")
    )
    answer = query(resp.headers["Location"])
    assert resp.headers["Location"].startswith(REDIRECT)
    assert answer["error"] == "login_required" and answer["state"] == "s-1"


async def test_email_page_then_home_realm(broker, browser, tenant):
    _, challenge = pkce()
    params = authorize_params(tenant, challenge)
    del params["login_hint"]
    resp = await browser.get("/oauth2/authorize", params=params)
    assert resp.headers["Location"].startswith("/oauth2/login?flow=")
    flow_id = query(resp.headers["Location"])["flow"]
    page = await browser.get(resp.headers["Location"])
    assert "Work email" in await page.text()
    resp = await browser.post("/oauth2/login", data={"flow": flow_id, "email": "bob@unknown.test"})
    assert resp.status == 400 and "not set up for unknown.test" in await resp.text()
    resp = await browser.post(
        "/oauth2/login", data={"flow": flow_id, "email": f"bob@{tenant.domain}"}
    )
    assert resp.status == 303
    assert resp.headers["Location"] == f"/saml/{tenant.connection_id}/start?flow={flow_id}"
    flow = broker.store.flows.get(flow_id)
    assert flow.status == "upstream" and flow.request["login_hint"] == f"bob@{tenant.domain}"


async def test_session_answers_second_authorize_unless_login_or_max_age(broker, browser, tenant):
    await sign_in(broker, browser, tenant)
    _, challenge = pkce()
    resp = await browser.get("/oauth2/authorize", params=authorize_params(tenant, challenge))
    assert resp.headers["Location"].startswith(REDIRECT)  # no IdP round trip
    assert query(resp.headers["Location"])["state"] == "s-1"
    for extra in ({"prompt": "login"}, {"max_age": "0"}):
        time.sleep(0.01)
        resp = await browser.get(
            "/oauth2/authorize", params=authorize_params(tenant, challenge, **extra)
        )
        assert resp.headers["Location"].startswith("/saml/"), extra


async def test_connection_hint_picks_connection(broker, browser, tenant):
    _, challenge = pkce()
    params = authorize_params(tenant, challenge, connection=tenant.connection_id)
    del params["login_hint"]
    resp = await browser.get("/oauth2/authorize", params=params)
    assert resp.headers["Location"].startswith(f"/saml/{tenant.connection_id}/start")


async def test_form_post_code_via_resume(broker, browser, tenant):
    _verifier, challenge = pkce()
    resp = await browser.get(
        "/oauth2/authorize", params=authorize_params(tenant, challenge, response_mode="form_post")
    )
    outcome = await upstream_login(broker, browser, tenant, resp.headers["Location"])
    assert outcome.redirect_url.startswith(broker.url + "/oauth2/resume?flow=")
    page = await browser.get(outcome.redirect_url)
    html = await page.text()
    assert page.status == 200 and f'action="{REDIRECT}"' in html and 'name="code"' in html
    assert "sha256-" in page.headers["Content-Security-Policy"]
    again = await browser.get(outcome.redirect_url)  # answered once only
    assert again.status == 400


async def test_front_channel_only_id_token(broker, browser):
    tenant = make_tenant(
        broker.store,
        domain="front.test",
        front_channel_only=True,
        id_token_signed_response_alg="ES256",
    )
    params = {
        "client_id": tenant.client_id,
        "redirect_uri": REDIRECT,
        "response_type": "id_token",
        "response_mode": "form_post",
        "scope": "openid",
        "state": "st",
        "login_hint": "alice@front.test",
    }
    resp = await browser.get("/oauth2/authorize", params=params)  # nonce missing
    assert resp.status == 200 and "invalid_request" in await resp.text()
    resp = await browser.get("/oauth2/authorize", params=dict(params, nonce="nn"))
    outcome = await upstream_login(broker, browser, tenant, resp.headers["Location"])
    page = await browser.get(outcome.redirect_url)
    html = await page.text()
    token = html.split('name="id_token" value="')[1].split('"')[0]
    jwks = broker.services.keyring.public_jwks()
    decoded = jwt.decode(token, KeySet.import_key_set(jwks))
    assert decoded.header["alg"] == "ES256" and decoded.claims["nonce"] == "nn"
    assert 'name="access_token"' not in html and 'name="code"' not in html
    # A standard client may not ask for an ID token in the front channel.
    standard = make_tenant(broker.store, domain="std.test")
    resp = await browser.get(
        "/oauth2/authorize",
        params=dict(params, client_id=standard.client_id, nonce="nn", login_hint="a@std.test"),
    )
    assert "unauthorized_client" in await resp.text()


# -- token endpoint --------------------------------------------------------------------


async def test_wrong_or_missing_verifier(broker, browser, tenant):
    code, _ = await sign_in(broker, browser, tenant)
    resp = await exchange(broker, tenant, code, "w" * 50)
    assert resp.status == 400 and (await resp.json())["error"] == "invalid_grant"
    assert resp.headers["Cache-Control"] == "no-store"
    code, _verifier = await sign_in(broker, browser, tenant)
    resp = await exchange(broker, tenant, code, None)
    assert resp.status == 400 and (await resp.json())["error"] == "invalid_request"


async def test_code_replay_fails_and_revokes(broker, browser, tenant):
    code, verifier = await sign_in(broker, browser, tenant)
    first = await exchange(broker, tenant, code, verifier)
    assert first.status == 200
    tokens = await first.json()
    assert (await userinfo_status(broker, tokens["access_token"])).status == 200
    replay = await exchange(broker, tenant, code, verifier)
    assert replay.status == 400 and (await replay.json())["error"] == "invalid_grant"
    assert (await userinfo_status(broker, tokens["access_token"])).status == 401
    async with aiohttp.ClientSession() as http:
        resp = await http.post(
            broker.url + "/oauth2/token",
            data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
            headers=basic(tenant.client_id, tenant.client_secret),
        )
        assert (await resp.json())["error"] == "invalid_grant"


async def test_wrong_client_secret_is_401(broker, browser, tenant):
    code, verifier = await sign_in(broker, browser, tenant)
    resp = await exchange(broker, tenant, code, verifier, secret="brk_cs_wrong")
    assert resp.status == 401 and (await resp.json())["error"] == "invalid_client"
    assert resp.headers["WWW-Authenticate"].startswith("Basic")


async def test_expired_code(broker, browser, tenant):
    code, verifier = await sign_in(broker, browser, tenant)
    broker.store.db.execute("UPDATE auth_codes SET expires_at = ?", (time.time() - 1,))
    resp = await exchange(broker, tenant, code, verifier)
    assert resp.status == 400 and (await resp.json())["error"] == "invalid_grant"


async def test_refresh_reuse_revokes_family(broker, browser, tenant):
    code, verifier = await sign_in(broker, browser, tenant)
    tokens = await (await exchange(broker, tenant, code, verifier)).json()
    auth = basic(tenant.client_id, tenant.client_secret)
    async with aiohttp.ClientSession() as http:

        async def refresh(token: str) -> dict[str, Any]:
            r = await http.post(
                broker.url + "/oauth2/token",
                headers=auth,
                data={"grant_type": "refresh_token", "refresh_token": token},
            )
            return dict(await r.json())

        second = await refresh(tokens["refresh_token"])
        assert "refresh_token" in second
        assert (await userinfo_status(broker, second["access_token"])).status == 200
        assert (await refresh(tokens["refresh_token"]))["error"] == "invalid_grant"  # reuse
        assert (await refresh(second["refresh_token"]))["error"] == "invalid_grant"  # family
        for token in (tokens["access_token"], second["access_token"]):
            assert (await userinfo_status(broker, token)).status == 401


async def test_private_key_jwt(broker, browser):
    key = ECKey.generate_key("P-256", parameters={"kid": "exec-1"}, private=True)
    other = ECKey.generate_key("P-256", parameters={"kid": "exec-1"}, private=True)
    tenant = make_tenant(
        broker.store,
        domain="pkj.test",
        token_endpoint_auth_method="private_key_jwt",
        jwks={"keys": [key.as_dict(private=False)]},
    )

    def assertion(signer: ECKey, jti: str, aud: str) -> str:
        now = int(time.time())
        return jwt.encode(
            {"alg": "ES256", "kid": "exec-1"},
            {
                "iss": tenant.client_id,
                "sub": tenant.client_id,
                "aud": aud,
                "jti": jti,
                "iat": now,
                "exp": now + 60,
            },
            signer,
        )

    token_url = broker.url + "/oauth2/token"
    async with aiohttp.ClientSession() as http:

        async def post(code: str, verifier: str, client_assertion: str) -> aiohttp.ClientResponse:
            r = await http.post(
                token_url,
                data={
                    "grant_type": "authorization_code",
                    "code": code,
                    "redirect_uri": REDIRECT,
                    "code_verifier": verifier,
                    "client_id": tenant.client_id,
                    "client_assertion_type": JWT_BEARER,
                    "client_assertion": client_assertion,
                },
            )
            await r.read()
            return r

        code, verifier = await sign_in(broker, browser, tenant)
        bad = await post(code, verifier, assertion(other, "j1", token_url))
        assert bad.status == 401 and (await bad.json())["error"] == "invalid_client"
        wrong_aud = await post(code, verifier, assertion(key, "j2", "https://elsewhere"))
        assert wrong_aud.status == 401
        good_assertion = assertion(key, "j3", token_url)
        good = await post(code, verifier, good_assertion)
        assert good.status == 200, await good.text()
        code, verifier = await sign_in(broker, browser, tenant)
        replayed = await post(code, verifier, good_assertion)
        assert replayed.status == 401


async def test_bad_bearer_at_userinfo(broker, browser, tenant):
    for token in ("not-a-jwt", "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0."):
        resp = await userinfo_status(broker, token)
        assert resp.status == 401
        assert resp.headers["WWW-Authenticate"].startswith(
            'Bearer realm="exec-broker", error="invalid_token"'
        )
    async with aiohttp.ClientSession() as http:
        resp = await http.get(broker.url + "/oauth2/userinfo")
        assert resp.status == 401 and "error=" not in resp.headers["WWW-Authenticate"]
    code, verifier = await sign_in(broker, browser, tenant)
    tokens = await (await exchange(broker, tenant, code, verifier)).json()
    assert (await userinfo_status(broker, tokens["access_token"])).status == 200
    # The same claims, signed by the same key, but expired: refused.
    claims = jwt.decode(tokens["access_token"], broker.services.keyring.verification_keys())
    expired = dict(claims.claims, exp=int(time.time()) - 1)
    token = oidc_tokens.sign(broker.services.keyring, "RS256", expired, typ="at+jwt")
    assert (await userinfo_status(broker, token)).status == 401
    # ...and an ID token is not an access token (typ), even with the right audience.
    as_id = oidc_tokens.sign(broker.services.keyring, "RS256", dict(claims.claims))
    assert (await userinfo_status(broker, as_id)).status == 401


async def test_access_tokens_are_self_contained(broker, browser, tenant):
    """Issuing writes no access-token row (one transaction: the code and the refresh
    token); revocation does, and userinfo honours it."""
    code, verifier = await sign_in(broker, browser, tenant)
    tokens = await (await exchange(broker, tenant, code, verifier)).json()
    assert broker.store.db.scalar("SELECT COUNT(*) FROM access_tokens") == 0
    claims = jwt.decode(tokens["access_token"], broker.services.keyring.verification_keys()).claims
    assert claims["grant_id"].startswith("fam_") and claims["sid"].startswith("ses_")
    assert (await userinfo_status(broker, tokens["access_token"])).status == 200


async def test_sso_off_ends_access_tokens(broker, browser, tenant):
    code, verifier = await sign_in(broker, browser, tenant)
    tokens = await (await exchange(broker, tenant, code, verifier)).json()
    assert (await userinfo_status(broker, tokens["access_token"])).status == 200
    policy.disable_sso(broker.store, broker.services.clock, audit.CLI, tenant.org_id)
    assert (await userinfo_status(broker, tokens["access_token"])).status == 401


async def test_revoke_user_after_session_expired(broker, browser, tenant):
    """The session expired on its own (not ended); the refresh token lives on. Revoking
    the user must still kill the access token minted from that refresh token."""
    code, verifier = await sign_in(broker, browser, tenant)
    tokens = await (await exchange(broker, tenant, code, verifier)).json()
    broker.store.db.execute("UPDATE broker_sessions SET expires_at = ?", (time.time() - 1,))
    async with aiohttp.ClientSession() as http:
        r = await http.post(
            broker.url + "/oauth2/token",
            data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
            headers=basic(tenant.client_id, tenant.client_secret),
        )
        fresh = await r.json()
    assert (await userinfo_status(broker, fresh["access_token"])).status == 200
    assert (
        access.revoke_user(
            broker.store,
            broker.services.clock,
            organization_id=tenant.org_id,
            email=f"alice@{tenant.domain}",
            reason="dsync_deleted",
        )
        == 1
    )
    assert (await userinfo_status(broker, fresh["access_token"])).status == 401


async def test_revocation_endpoint(broker, browser, tenant):
    code, verifier = await sign_in(broker, browser, tenant)
    tokens = await (await exchange(broker, tenant, code, verifier)).json()
    async with aiohttp.ClientSession() as http:
        resp = await http.post(
            broker.url + "/oauth2/revoke",
            data={"token": tokens["access_token"]},
            headers=basic(tenant.client_id, tenant.client_secret),
        )
        assert resp.status == 200
    assert (await userinfo_status(broker, tokens["access_token"])).status == 401


async def test_key_rotation_keeps_earlier_tokens_valid(broker, browser, tenant):
    code, verifier = await sign_in(broker, browser, tenant)
    tokens = await (await exchange(broker, tenant, code, verifier)).json()
    old_kid = jwt.decode(
        tokens["id_token"], KeySet.import_key_set(broker.services.keyring.public_jwks())
    ).header["kid"]
    settings = broker.settings
    rotate(
        broker.store, settings.certs_dir, time.time(), settings.get("keys.rotation_grace_seconds")
    )
    broker.services.keyring.refresh(force=True)
    async with aiohttp.ClientSession() as http:
        resp = await http.get(broker.url + "/oauth2/jwks")
        jwks = await resp.json()
        assert "max-age" in resp.headers["Cache-Control"]
    kids = {k["kid"] for k in jwks["keys"]}
    assert old_kid in kids and len(kids) == 6  # retired, current, next for both algs
    jwt.decode(tokens["id_token"], KeySet.import_key_set(jwks))  # still verifies
    assert (await userinfo_status(broker, tokens["access_token"])).status == 200
    code, verifier = await sign_in(broker, browser, tenant)
    fresh = await (await exchange(broker, tenant, code, verifier)).json()
    assert jwt.decode(fresh["id_token"], KeySet.import_key_set(jwks)).header["kid"] != old_kid


async def test_discovery_document(broker):
    async with aiohttp.ClientSession() as http:
        resp = await http.get(broker.url + "/.well-known/openid-configuration")
        meta = await resp.json()
    assert meta["issuer"] == broker.url
    assert meta["code_challenge_methods_supported"] == ["S256"]
    assert "private_key_jwt" in meta["token_endpoint_auth_methods_supported"]
    assert meta["jwks_uri"] == broker.url + "/oauth2/jwks"
    assert meta["backchannel_logout_session_supported"] is True
    assert "Cache-Control" in resp.headers


# -- login hand-off policy ---------------------------------------------------------------


async def _refused(broker: Any, browser: Browser, tenant: Tenant, ident: Any) -> LoginRefused:
    _, challenge = pkce()
    resp = await browser.get("/oauth2/authorize", params=authorize_params(tenant, challenge))
    with pytest.raises(LoginRefused) as caught:
        await upstream_login(broker, browser, tenant, resp.headers["Location"], ident)
    return caught.value


async def test_unverified_domain_is_refused(broker, browser, tenant):
    exc = await _refused(broker, browser, tenant, identity(tenant, "mallory@evil.test"))
    assert exc.reason == "domain_not_verified"
    entries = broker.store.audit.list(tenant.org_id)
    assert entries[0].action == "login.refused" and "evil.test" in entries[0].detail["detail"]


async def test_sso_off_and_inactive_connection_are_refused(broker, browser):
    off = make_tenant(broker.store, domain="off.test", sso=False)
    assert (await _refused(broker, browser, off, identity(off))).reason == "sso_disabled"
    inactive = make_tenant(broker.store, domain="ina.test")
    _, challenge = pkce()
    resp = await browser.get("/oauth2/authorize", params=authorize_params(inactive, challenge))
    broker.store.connections.update(inactive.connection_id, state="inactive")
    with pytest.raises(LoginRefused) as caught:
        await upstream_login(broker, browser, inactive, resp.headers["Location"])
    assert caught.value.reason == "connection_inactive"


async def test_test_login_on_draft_connection(broker):
    tenant = make_tenant(broker.store, domain="draft.test", sso=False, connection_state="draft")
    store, clock = broker.store, broker.services.clock
    config = broker.services.login_config
    flow_id = login.create_test_login(store, clock, tenant.connection_id, audit.CLI, config)
    outcome = login.complete_upstream(
        store,
        clock,
        connection_id=tenant.connection_id,
        flow_id=flow_id,
        identity=identity(tenant),
        actor=audit.CLI,
        config=config,
    )
    assert outcome.test_login and outcome.session_token is None
    assert outcome.redirect_url.startswith(f"/admin/connections/{tenant.connection_id}/test")
    result = login.test_login_result(store, flow_id)
    assert result["status"] == "succeeded" and result["profile"]["email"] == "alice@draft.test"
    assert store.connections.get(tenant.connection_id).tested_at is not None
    assert store.db.scalar("SELECT COUNT(*) FROM auth_codes") == 0


async def test_idp_initiated_then_authorize_from_session(broker, browser, tenant):
    services = broker.services
    outcome = await services.run(
        login.complete_upstream,
        services.store,
        services.clock,
        connection_id=tenant.connection_id,
        flow_id=None,
        identity=identity(tenant),
        actor=audit.CLI,
        config=services.login_config,
    )
    assert outcome.redirect_url.startswith(INITIATE)
    assert query(outcome.redirect_url) == {
        "iss": broker.url,
        "login_hint": f"alice@{tenant.domain}",
    }
    browser.set_session(broker.settings, outcome.session_token)
    _, challenge = pkce()
    resp = await browser.get("/oauth2/authorize", params=authorize_params(tenant, challenge))
    assert resp.headers["Location"].startswith(REDIRECT)
    assert query(resp.headers["Location"])["state"] == "s-1"


async def test_revoke_user_ends_access(broker, browser, tenant):
    code, verifier = await sign_in(broker, browser, tenant)
    tokens = await (await exchange(broker, tenant, code, verifier)).json()
    count = access.revoke_user(
        broker.store,
        broker.services.clock,
        organization_id=tenant.org_id,
        email=f"ALICE@{tenant.domain}",
        reason="dsync_deactivated",
    )
    assert count == 1
    assert (await userinfo_status(broker, tokens["access_token"])).status == 401
    _, challenge = pkce()
    resp = await browser.get("/oauth2/authorize", params=authorize_params(tenant, challenge))
    assert resp.headers["Location"].startswith("/saml/")  # the session is gone


async def test_login_config_is_passed_not_global(broker, browser, tenant):
    """Two configs in one process do not see each other: each call uses the one it is
    given, and there is no process-wide one to fall back on."""
    import inspect
    from dataclasses import replace

    from broker.core import flows, grants

    assert not hasattr(flows, "configure") and not hasattr(flows, "config")
    for fn in (
        login.begin_authorize,
        login.resume,
        login.complete_upstream,
        login.create_test_login,
        flows.create,
        grants.issue_code,
        grants.record_issued,
    ):
        assert inspect.signature(fn).parameters["config"].default is inspect.Parameter.empty
    services = broker.services
    other = replace(services.login_config, issuer="https://other.test", session_ttl=60)
    outcome = await services.run(
        login.complete_upstream,
        services.store,
        services.clock,
        connection_id=tenant.connection_id,
        flow_id=None,
        identity=identity(tenant),
        actor=audit.CLI,
        config=other,
    )
    assert query(outcome.redirect_url)["iss"] == "https://other.test"
    assert outcome.session_expires_at is not None
    assert outcome.session_expires_at - time.time() <= 60
    assert services.login_config.issuer == broker.url


async def test_concurrent_redemption_counts_as_replay(broker, browser, tenant):
    """Request B reads the code before request A's transaction consumes it (two workers
    racing). B then loses at its write, and that is a replay: A's tokens are revoked."""
    from authlib.oauth2.rfc6749 import InvalidGrantError
    from multidict import MultiDict

    from broker.oidc.adapter import AiohttpOAuth2Request
    from broker.oidc.server import actor_for
    from broker.oidc.token import SERVER

    code, verifier = await sign_in(broker, browser, tenant)
    server = broker.app[SERVER]
    raw = base64.b64encode(f"{tenant.client_id}:{tenant.client_secret}".encode()).decode()
    racing = AiohttpOAuth2Request(
        "POST",
        broker.url + "/oauth2/token",
        {"Authorization": f"Basic {raw}"},
        {},
        MultiDict(
            grant_type="authorization_code",
            code=code,
            redirect_uri=REDIRECT,
            code_verifier=verifier,
        ),
    )
    racing.actor = actor_for("127.0.0.1", "race")
    grant = server.get_token_grant(racing)
    grant.validate_token_request()  # B: the code is still unused
    first = await exchange(broker, tenant, code, verifier)  # A wins the write
    assert first.status == 200
    tokens = await first.json()
    with pytest.raises(InvalidGrantError):
        grant.create_token_response()  # B loses
    assert (await userinfo_status(broker, tokens["access_token"])).status == 401
    actions = [e.action for e in broker.store.audit.list(None)]
    assert "oauth.code_replayed" in actions
