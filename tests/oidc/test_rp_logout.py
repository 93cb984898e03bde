"""RP-initiated logout without logout CSRF (security review F6.3; OpenID Connect
RP-Initiated Logout 1.0 §2-§4): no hint → the user is asked and must POST the page's
token; a hint must be an ID token of ours for a registered client (expired is fine);
post_logout_redirect_uri only with a hint whose client registered it."""

from __future__ import annotations

import time
from typing import Any

import aiohttp
import pytest

from broker.oidc import tokens as oidc_tokens
from tests.oidc.helpers import POST_LOGOUT, Browser, Tenant, make_tenant
from tests.oidc.test_provider_negative import exchange, sign_in


@pytest.fixture
async def browser(broker):
    b = Browser(broker.url)
    yield b
    await b.close()


@pytest.fixture
def tenant(broker) -> Tenant:
    return make_tenant(broker.store)


def live_sessions(broker: Any) -> int:
    return int(
        broker.store.db.scalar("SELECT COUNT(*) FROM broker_sessions WHERE ended_at IS NULL")
    )


def id_token(broker: Any, **claims: Any) -> str:
    """An ID token signed with the broker's own key (as the provider mints them)."""
    base = {"sub": "u_1", "sid": "ses_x"}
    base.update(claims)
    aud = base.pop("aud")
    now = base.pop("now", time.time())
    return oidc_tokens.id_token(
        broker.services.keyring,
        issuer=broker.url,
        client_id=aud,
        alg="RS256",
        user_claims=base,
        ttl=60,
        now=now,
    )


async def signed_in(broker: Any, browser: Browser, tenant: Tenant) -> dict[str, Any]:
    code, verifier = await sign_in(broker, browser, tenant)
    return dict(await (await exchange(broker, tenant, code, verifier)).json())


async def test_get_without_hint_asks_and_ends_nothing(broker, browser, tenant):
    await signed_in(broker, browser, tenant)
    page = await browser.get("/oauth2/logout", params={"post_logout_redirect_uri": POST_LOGOUT})
    assert page.status == 200 and "Location" not in page.headers
    assert 'method="post"' in await page.text()
    assert live_sessions(broker) == 1
    # A cross-site form cannot know the token: a wrong or missing one ends nothing.
    for data in ({"confirm": "guess"}, {"confirm": ""}):
        assert (await browser.post("/oauth2/logout", data=data)).status == 400
    assert live_sessions(broker) == 1
    csrf = (await page.text()).split('name="confirm" value="')[1].split('"')[0]
    done = await browser.post(
        "/oauth2/logout", data={"confirm": csrf, "post_logout_redirect_uri": POST_LOGOUT}
    )
    assert done.status == 200 and "Location" not in done.headers  # no redirect without a hint
    assert live_sessions(broker) == 0


async def test_expired_hint_of_ours_ends_the_session_and_may_redirect(broker, browser, tenant):
    issued = await signed_in(broker, browser, tenant)
    claims = oidc_tokens.verify(
        broker.services.keyring, issued["id_token"], issuer=broker.url, typ=None
    )
    assert claims is not None
    expired = id_token(
        broker, aud=tenant.client_id, sub=claims["sub"], sid=claims["sid"], now=time.time() - 3600
    )
    async with aiohttp.ClientSession() as http:  # no cookie: the hint names the session
        resp = await http.get(
            broker.url + "/oauth2/logout",
            allow_redirects=False,
            params={
                "id_token_hint": expired,
                "post_logout_redirect_uri": POST_LOGOUT,
                "state": "x",
            },
        )
    assert resp.status == 302 and resp.headers["Location"] == POST_LOGOUT + "?state=x"
    assert live_sessions(broker) == 0


async def test_hints_that_are_not_id_tokens_for_our_clients_are_refused(broker, browser, tenant):
    issued = await signed_in(broker, browser, tenant)
    claims = oidc_tokens.verify(
        broker.services.keyring, issued["id_token"], issuer=broker.url, typ=None
    )
    assert claims is not None
    bad = [
        id_token(broker, aud="client_unknown", sub=claims["sub"], sid=claims["sid"]),
        issued["access_token"],  # ours, but an access token
        issued["id_token"][:-4] + "AAAA",  # not our signature
    ]
    for hint in bad:
        resp = await browser.get(
            "/oauth2/logout",
            params={"id_token_hint": hint, "post_logout_redirect_uri": POST_LOGOUT},
        )
        assert resp.status == 400 and "Location" not in resp.headers, hint[:20]
    mismatched = await browser.get(
        "/oauth2/logout", params={"id_token_hint": issued["id_token"], "client_id": "client_other"}
    )
    assert mismatched.status == 400
    assert live_sessions(broker) == 1


async def test_redirect_only_to_the_hint_clients_registered_uri(broker, browser, tenant):
    other = make_tenant(
        broker.store,
        domain="other.test",
        post_logout_redirect_uris=["http://127.0.0.1:9/other/out"],
    )
    issued = await signed_in(broker, browser, tenant)
    resp = await browser.get(
        "/oauth2/logout",
        params={
            "id_token_hint": issued["id_token"],
            "client_id": tenant.client_id,
            "post_logout_redirect_uri": "http://127.0.0.1:9/other/out",
        },
    )
    assert resp.status == 400 and "Location" not in resp.headers
    assert other.client_id != tenant.client_id
    assert live_sessions(broker) == 0  # the hint was valid: signed out, just not redirected


async def test_hint_of_another_user_asks_instead(broker, browser, tenant):
    await signed_in(broker, browser, tenant)
    stranger = id_token(broker, aud=tenant.client_id, sub="u_someone_else", sid="ses_other")
    resp = await browser.get("/oauth2/logout", params={"id_token_hint": stranger})
    assert resp.status == 200 and 'name="confirm"' in await resp.text()
    assert live_sessions(broker) == 1
