"""Harness for the SAML end-to-end tests (no tests here): a fake pysaml2 IdP on loopback,
a tenant with a SAML connection to it, a browser that follows the real HTTP steps, an
Authlib OIDC client playing Exec, and a test CA for HTTPS metadata URLs."""

from __future__ import annotations

import datetime as dt
import html
import ipaddress
import os
import re
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from authlib.integrations.httpx_client import AsyncOAuth2Client
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from joserfc import jwt
from joserfc.jwk import KeySet

from broker.clock import SystemClock
from broker.core import audit, clients, organizations
from broker.core import connections as core_connections
from broker.core.models import Domain
from broker.ids import new_id
from broker.saml import endpoints, idp_settings, sp_keys
from tests.fakes.saml_idp import FakeSamlIdP, generate_key_and_cert
from tests.oidc.helpers import INITIATE, REDIRECT, Browser, pkce, query

clock = SystemClock()
_INPUT = re.compile(r'<input type="hidden" name="([A-Za-z]+)" value="([^"]*)"')
_ACTION = re.compile(r'<form method="post" action="([^"]+)"')


@pytest.fixture
async def idp(tmp_path: Path) -> AsyncIterator[FakeSamlIdP]:
    """A pysaml2 IdP serving on 127.0.0.1 (import this fixture into a test module)."""
    fake = FakeSamlIdP("https://idp.example.test/saml", tmp_path / "idp")
    runner = await fake.start()
    yield fake
    await runner.cleanup()


@dataclass
class SamlTenant:
    org_id: str
    connection_id: str
    client_id: str
    client_secret: str | None
    domain: str
    extra: dict[str, Any] = field(default_factory=dict)


def make_saml_tenant(
    broker: Any,
    idp: FakeSamlIdP,
    *,
    preset: str = "okta",
    domain: str = "acme.test",
    active: bool = True,
    sso: bool = True,
    options: dict[str, Any] | None = None,
    idp_config: dict[str, Any] | None = None,
    with_client: bool = True,
) -> SamlTenant:
    store = broker.store
    now = clock.now()
    org = organizations.create_organization(store, clock, audit.CLI, f"Org {domain}")
    with store.transaction():
        dom = Domain(
            id=new_id("dom"),
            organization_id=org.id,
            domain=domain,
            state="verified",
            verification_token="t",
            created_at=now,
            verified_at=now,
        )
        store.domains.create(dom)
    idp_conf = idp_config or idp_settings.from_xml(idp.metadata_xml(), now)
    connection = core_connections.create_connection(
        store,
        clock,
        audit.CLI,
        organization_id=org.id,
        type="saml",
        preset=preset,
        idp=idp_conf,
        options=options or {},
    )
    register_sp(broker, idp, connection.id)
    if active:
        core_connections.record_test_success(store, clock, connection.id)
        core_connections.activate(store, clock, audit.CLI, connection.id)
    if sso:
        with store.transaction():
            store.organizations.update(org.id, sso_enabled=True)
    client_id, secret = "", None
    if with_client:
        client, secret, _ = clients.create_client(
            store,
            clock,
            audit.CLI,
            name="Exec",
            redirect_uris=[REDIRECT],
            initiate_login_uri=INITIATE,
        )
        client_id = client.id
    return SamlTenant(org.id, connection.id, client_id, secret, domain)


def register_sp(broker: Any, idp: FakeSamlIdP, connection_id: str) -> None:
    """The admin pastes our SP metadata into the IdP."""
    connection = broker.store.connections.get(connection_id)
    xml = endpoints.connection_metadata(
        broker.settings.public_url, connection, sp_keys.load(broker.settings.certs_dir)
    )
    idp.add_sp_metadata(xml)


def switch_idp_key(idp: FakeSamlIdP, pair: tuple[str, str] | None = None) -> None:
    """The IdP rolls its signing key (new key pair; metadata then shows the new cert)."""
    idp.key_pem, idp.certificate_pem = pair or generate_key_and_cert("Fake SAML IdP (new key)")
    idp.key_file = os.path.join(idp.tmpdir, f"idp-{uuid.uuid4().hex}.key")
    idp.cert_file = idp.key_file[:-4] + ".crt"
    Path(idp.key_file).write_text(idp.key_pem)
    Path(idp.cert_file).write_text(idp.certificate_pem)
    idp.server = idp._build_server()


def acs_of(broker: Any, tenant: SamlTenant) -> str:
    return endpoints.acs_url(broker.settings.public_url, tenant.connection_id)


def sp_entity_of(broker: Any, tenant: SamlTenant) -> str:
    return endpoints.sp_entity_id(broker.settings.public_url, tenant.connection_id)


def parse_form(page: str) -> tuple[str, dict[str, str]]:
    action = _ACTION.search(page)
    assert action, page[:500]
    return html.unescape(action[1]), {k: html.unescape(v) for k, v in _INPUT.findall(page)}


def exec_client(broker: Any, tenant: SamlTenant) -> AsyncOAuth2Client:
    return AsyncOAuth2Client(
        client_id=tenant.client_id,
        client_secret=tenant.client_secret,
        redirect_uri=REDIRECT,
        scope="openid email profile",
        code_challenge_method="S256",
    )


async def to_idp_and_back(browser: Browser, start_location: str) -> tuple[str, dict[str, str]]:
    """Follow /saml/{id}/start to the IdP (either binding) and return the IdP's ACS form."""
    resp = await browser.get(start_location)
    if resp.status == 302:  # HTTP-Redirect binding
        resp = await browser.get(resp.headers["Location"])
    else:  # HTTP-POST binding: our auto-submitting page
        assert resp.status == 200, resp.status
        action, fields = parse_form(await resp.text())
        resp = await browser.post(action, data=fields)
    assert resp.status == 200, (resp.status, await resp.text())
    return parse_form(await resp.text())


async def sp_initiated_login(
    broker: Any, tenant: SamlTenant, browser: Browser, rp: AsyncOAuth2Client, **authorize: Any
) -> dict[str, Any]:
    """Exec → /oauth2/authorize → SAML → ACS → code → token; returns the ID token claims."""
    verifier, _ = pkce()
    nonce = "n-" + uuid.uuid4().hex
    url, state = rp.create_authorization_url(
        broker.url + "/oauth2/authorize", code_verifier=verifier, nonce=nonce, **authorize
    )
    resp = await browser.get(url)
    assert resp.status == 302, (resp.status, await resp.text())
    location = resp.headers["Location"]
    assert location.startswith(f"/saml/{tenant.connection_id}/start?flow="), location
    action, fields = await to_idp_and_back(browser, location)
    resp = await browser.post(action, data=fields)
    assert resp.status == 303, broker.store.saml.attempts(tenant.connection_id, 1)
    redirect = resp.headers["Location"]
    assert redirect.startswith(REDIRECT) and query(redirect)["state"] == state, redirect
    return await redeem(broker, rp, redirect, verifier, nonce)


async def redeem(
    broker: Any, rp: AsyncOAuth2Client, redirect: str, verifier: str, nonce: str
) -> dict[str, Any]:
    token = await rp.fetch_token(
        broker.url + "/oauth2/token", authorization_response=redirect, code_verifier=verifier
    )
    jwks = (await rp.request("GET", broker.url + "/oauth2/jwks", withhold_token=True)).json()
    decoded = jwt.decode(token["id_token"], KeySet.import_key_set(jwks))
    jwt.JWTClaimsRegistry(
        iss={"essential": True, "value": broker.url},
        aud={"essential": True, "value": rp.client_id},
        nonce={"essential": True, "value": nonce},
    ).validate(decoded.claims)
    return dict(decoded.claims)


# -- a test CA for HTTPS metadata on loopback ------------------------------------------


def _pem_key(key: rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def loopback_tls(tmp: Path) -> tuple[str, Path, Path]:
    """(CA PEM, server cert file, server key file) for https://127.0.0.1."""
    now = dt.datetime.now(dt.UTC)
    ca_key = rsa.generate_private_key(65537, 2048)
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    key = rsa.generate_private_key(65537, 2048)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=2))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(
            x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    cert_file, key_file = tmp / "server.crt", tmp / "server.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(_pem_key(key))
    return ca.public_bytes(serialization.Encoding.PEM).decode(), cert_file, key_file
