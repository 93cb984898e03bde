"""Set-up shared by the upstream OIDC tests: a tenant whose connection signs in with the
FakeOidcIdP (TLS with its own CA, passed per connection), Exec's client, and a browser
that walks the redirects between Exec, the broker and the IdP by hand."""

from __future__ import annotations

import base64
import hashlib
import secrets
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import aiohttp
from yarl import URL

from broker.clock import SystemClock
from broker.core import audit, clients, oidc_connections, organizations
from broker.core.models import Domain
from broker.ids import new_id
from tests.fakes.oidc_idp import FakeOidcIdP

clock = SystemClock()

EXEC_REDIRECT = "http://127.0.0.1:9/exec/callback"
IDP_CLIENT_ID = "broker-rp"
IDP_CLIENT_SECRET = "s3cret:with/odd chars+"


@dataclass
class OidcTenant:
    org_id: str
    connection_id: str
    client_id: str
    client_secret: str | None
    callback: str


def make_oidc_tenant(
    broker: Any,
    idp: FakeOidcIdP,
    *,
    preset: str = "generic",
    state: str = "active",
    sso: bool = True,
    auth: str = "client_secret_basic",
    claims: dict[str, str] | None = None,
    domain: str = "example.com",
    register: bool = True,
    ca: bool = True,
) -> OidcTenant:
    store, services = broker.store, broker.services
    org = organizations.create_organization(store, clock, audit.CLI, "Example " + domain)
    now = clock.now()
    with store.transaction():
        store.domains.create(
            Domain(
                id=new_id("dom"),
                organization_id=org.id,
                domain=domain,
                state="verified",
                verification_token="t",
                created_at=now,
                verified_at=now,
            )
        )
        if sso:
            store.organizations.update(org.id, sso_enabled=True)
    private_key_jwt = auth == "private_key_jwt"
    connection = oidc_connections.create_oidc_connection(
        store,
        clock,
        audit.CLI,
        oidc_connections.OidcConnectionInput(
            organization_id=org.id,
            preset=preset,
            issuer=idp.issuer,
            client_id=IDP_CLIENT_ID,
            client_secret=None if private_key_jwt else IDP_CLIENT_SECRET,
            token_auth_method=auth,
            scopes=("openid", "email", "profile", "groups"),
            claims=claims or {},
            ca_pem=idp.ca_pem.decode() if ca else None,
        ),
        seal=services.secret_box.encrypt,
    )
    if state != "draft":
        with store.transaction():
            store.connections.update(connection.id, state=state, tested_at=now, updated_at=now)
    callback = f"{broker.url}/oidc/{connection.id}/callback"
    if register:
        idp.register_client(
            IDP_CLIENT_ID,
            None if private_key_jwt else IDP_CLIENT_SECRET,
            [callback],
            jwks=services.keyring.public_jwks() if private_key_jwt else None,
            auth_method=auth,
        )
    client, secret, _ = clients.create_client(
        store, clock, audit.CLI, name="Exec", redirect_uris=[EXEC_REDIRECT]
    )
    return OidcTenant(org.id, connection.id, client.id, secret, callback)


def pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
    return verifier, challenge.rstrip(b"=").decode()


def query(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


def authorize_url(broker_url: str, tenant: OidcTenant, challenge: str, **extra: str) -> str:
    params = {
        "response_type": "code",
        "client_id": tenant.client_id,
        "redirect_uri": EXEC_REDIRECT,
        "scope": "openid email profile",
        "state": "exec-state",
        "nonce": "exec-nonce",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        "login_hint": "ada@example.com",
        **extra,
    }
    return f"{broker_url}/oauth2/authorize?{urlencode(params)}"


@dataclass
class Hop:
    url: str
    status: int
    location: str | None
    body: str
    request_id: str = ""


class Browser:
    """A user agent: keeps cookies, trusts the fake IdP's CA, follows redirects by hand."""

    def __init__(self, idp: FakeOidcIdP) -> None:
        self.jar = aiohttp.CookieJar(unsafe=True)
        self.http = aiohttp.ClientSession(cookie_jar=self.jar)
        self.ssl = idp.client_ssl_context()
        self.hops: list[Hop] = []

    async def get(self, url: str) -> Hop:
        async with self.http.get(url, allow_redirects=False, ssl=self.ssl) as resp:
            hop = Hop(
                url,
                resp.status,
                resp.headers.get("Location"),
                await resp.text(),
                resp.headers.get("X-Request-Id", ""),
            )
        self.hops.append(hop)
        return hop

    async def walk(self, url: str, stop_at: str = EXEC_REDIRECT, limit: int = 10) -> Hop:
        """Follow redirects until one points at `stop_at` (returned, not fetched) or a
        page is answered (returned)."""
        base = url
        for _ in range(limit):
            hop = await self.get(url)
            if hop.location is None:
                return hop
            url = str(URL(base).join(URL(hop.location)))
            base = url
            if url.startswith(stop_at):
                return Hop(url, 0, None, "")
        raise AssertionError(f"too many redirects: {[h.url for h in self.hops]}")

    async def close(self) -> None:
        await self.http.close()
