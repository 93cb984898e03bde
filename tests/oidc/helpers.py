"""Shared set-up for the OIDC provider tests: an organization with a verified domain,
an active connection, SSO on, and the Exec client; plus a browser (aiohttp session with
a cookie jar that never follows redirects) and the upstream hand-off done directly
through the core, as the SAML/OIDC edges will do it."""

from __future__ import annotations

import base64
import hashlib
import secrets
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

import aiohttp
from yarl import URL

from broker.clock import SystemClock
from broker.core import audit, clients, login, organizations
from broker.core.models import Connection, Domain, UpstreamIdentity
from broker.ids import new_id

clock = SystemClock()

REDIRECT = "http://127.0.0.1:9/exec/callback"
POST_LOGOUT = "http://127.0.0.1:9/exec/signed-out"
INITIATE = "http://127.0.0.1:9/exec/initiate"


@dataclass
class Tenant:
    org_id: str
    connection_id: str
    domain: str
    client_id: str
    client_secret: str | None


def make_tenant(
    store: Any,
    *,
    domain: str = "acme.test",
    verified: bool = True,
    sso: bool = True,
    connection_state: str = "active",
    backchannel_uri: str | None = None,
    **client_kwargs: Any,
) -> Tenant:
    org = organizations.create_organization(store, clock, audit.CLI, "Acme " + domain)
    now = clock.now()
    with store.transaction():
        store.domains.create(
            Domain(
                id=new_id("dom"),
                organization_id=org.id,
                domain=domain,
                state="pending",
                verification_token="t",
                created_at=now,
            )
        )
        if verified:
            record = store.domains.find(org.id, domain)
            store.domains.update(record.id, state="verified", verified_at=now)
        connection = Connection(
            id=new_id("conn"),
            organization_id=org.id,
            type="saml",
            preset="generic",
            name="Okta",
            state=connection_state,
            config={},
            created_at=now,
            updated_at=now,
            tested_at=now,
        )
        store.connections.create(connection)
        if sso:
            store.organizations.update(org.id, sso_enabled=True)
    kwargs: dict[str, Any] = {
        "redirect_uris": [REDIRECT],
        "post_logout_redirect_uris": [POST_LOGOUT],
        "initiate_login_uri": INITIATE,
        "backchannel_logout_uri": backchannel_uri,
    }
    kwargs.update(client_kwargs)
    client, secret, _ = clients.create_client(store, clock, audit.CLI, name="Exec", **kwargs)
    return Tenant(org.id, connection.id, domain, client.id, secret)


def identity(
    tenant: Tenant, email: str | None = None, subject: str = "00u-alice", **extra: Any
) -> UpstreamIdentity:
    return UpstreamIdentity(
        connection_id=tenant.connection_id,
        idp_subject=subject,
        email=email or f"alice@{tenant.domain}",
        given_name="Alice",
        family_name="Liddell",
        groups=("eng",),
        **extra,
    )


def pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
    return verifier, challenge.rstrip(b"=").decode()


def query(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


class Browser:
    """A user agent: keeps cookies, never follows redirects on its own."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.jar = aiohttp.CookieJar(unsafe=True)
        self.http = aiohttp.ClientSession(cookie_jar=self.jar)

    async def get(self, url: str, **kw: Any) -> aiohttp.ClientResponse:
        if url.startswith("/"):
            url = self.base + url
        resp = await self.http.get(url, allow_redirects=False, **kw)
        await resp.read()
        return resp

    async def post(self, url: str, **kw: Any) -> aiohttp.ClientResponse:
        if url.startswith("/"):
            url = self.base + url
        resp = await self.http.post(url, allow_redirects=False, **kw)
        await resp.read()
        return resp

    def set_session(self, settings: Any, token: str) -> None:
        from broker.web.session_cookie import cookie_name

        self.jar.update_cookies({cookie_name(settings): token}, URL(self.base))

    async def close(self) -> None:
        await self.http.close()


def flow_from_upstream(location: str, tenant: Tenant) -> str:
    assert location.startswith(f"/saml/{tenant.connection_id}/start?flow="), location
    return query(location)["flow"]


async def upstream_login(
    broker: Any,
    browser: Browser,
    tenant: Tenant,
    location: str,
    ident: UpstreamIdentity | None = None,
) -> login.LoginOutcome:
    """What the SAML edge does at its ACS: hand the identity to the core, set the cookie."""
    flow_id = flow_from_upstream(location, tenant)
    services = broker.services
    outcome = await services.run(
        login.complete_upstream,
        services.store,
        services.clock,
        connection_id=tenant.connection_id,
        flow_id=flow_id,
        identity=ident or identity(tenant),
        actor=audit.Actor("test"),
        config=services.login_config,
    )
    if outcome.session_token:
        browser.set_session(broker.settings, outcome.session_token)
    return outcome
