"""FakeSamlIdP over real HTTP on 127.0.0.1, its Responses verified by verify_response.

A hand-written AuthnRequest goes to /sso by HTTP-Redirect and by HTTP-POST; the
auto-submitting form that comes back carries a Response for the configured user,
which the broker's verifier accepts. Also covers /metadata and IdP-initiated logins.
"""

from __future__ import annotations

import base64
import datetime as dt
import html
import re
import time
import zlib
from collections.abc import AsyncIterator

import aiohttp
import pytest
from lxml import etree

from broker.saml.verify import VerifyPolicy, verify_response
from tests.fakes.saml_idp import FakeSamlIdP, User, cert_body

IDP = "https://idp.acme.test/saml/metadata"
SP = "https://broker.exec.test/saml/conn_01"
ACS = "https://broker.exec.test/saml/conn_01/acs"


@pytest.fixture
async def idp(tmp_path: object) -> AsyncIterator[FakeSamlIdP]:
    fake = FakeSamlIdP(IDP, str(tmp_path))
    runner = await fake.start()
    try:
        yield fake
    finally:
        await runner.cleanup()


def authn_request(idp: FakeSamlIdP, request_id: str) -> str:
    instant = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return (
        '<samlp:AuthnRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" '
        'xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" '
        f'ID="{request_id}" Version="2.0" IssueInstant="{instant}" '
        f'Destination="{idp.sso_url}" AssertionConsumerServiceURL="{ACS}" '
        'ProtocolBinding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST">'
        f"<saml:Issuer>{SP}</saml:Issuer></samlp:AuthnRequest>"
    )


def form_fields(page: str) -> tuple[str, dict[str, str]]:
    action = re.search(r'<form method="post" action="([^"]+)"', page)
    assert action is not None
    fields = dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)"', page))
    return html.unescape(action.group(1)), {k: html.unescape(v) for k, v in fields.items()}


def policy(idp: FakeSamlIdP, expected: str | None) -> VerifyPolicy:
    return VerifyPolicy(IDP, (idp.certificate_pem,), SP, ACS, expected)


async def test_metadata_lists_both_sso_bindings_and_the_signing_cert(idp: FakeSamlIdP) -> None:
    async with aiohttp.ClientSession() as http, http.get(idp.base_url + "/metadata") as resp:
        assert resp.status == 200
        body = await resp.read()
    root = etree.fromstring(body)
    md = "urn:oasis:names:tc:SAML:2.0:metadata"
    assert root.get("entityID") == IDP
    bindings = {
        sso.get("Binding"): sso.get("Location") for sso in root.iter(f"{{{md}}}SingleSignOnService")
    }
    assert bindings == {
        "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect": idp.sso_url,
        "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST": idp.sso_url,
    }
    certs = ["".join((c.text or "").split()) for c in root.iter("{*}X509Certificate")]
    assert cert_body(idp.certificate_pem) in certs


async def test_sp_initiated_login_by_redirect(idp: FakeSamlIdP) -> None:
    idp.next_user = User(name_id="bob@acme.test", attributes={"email": ["bob@acme.test"]})
    idp.options.sign_response = False  # Entra-like: assertion only
    deflater = zlib.compressobj(9, zlib.DEFLATED, -15)
    raw = deflater.compress(authn_request(idp, "id-req-redirect").encode()) + deflater.flush()
    params = {"SAMLRequest": base64.b64encode(raw).decode(), "RelayState": "flow_123"}
    async with aiohttp.ClientSession() as http, http.get(idp.sso_url, params=params) as resp:
        assert resp.status == 200
        page = await resp.text()
    action, fields = form_fields(page)
    assert action == ACS and fields["RelayState"] == "flow_123"
    result = verify_response(
        base64.b64decode(fields["SAMLResponse"]), policy(idp, "id-req-redirect"), time.time()
    )
    assert result.name_id == "bob@acme.test"
    assert result.attributes == {"email": ["bob@acme.test"]}
    assert result.signed == frozenset({"assertion"})
    assert 'ID="id-req-redirect"' in idp.received_requests[-1]


async def test_sp_initiated_login_by_post(idp: FakeSamlIdP) -> None:
    form = {
        "SAMLRequest": base64.b64encode(authn_request(idp, "id-req-post").encode()).decode(),
        "RelayState": "flow_456",
    }
    async with aiohttp.ClientSession() as http, http.post(idp.sso_url, data=form) as resp:
        assert resp.status == 200
        page = await resp.text()
    _, fields = form_fields(page)
    result = verify_response(
        base64.b64decode(fields["SAMLResponse"]), policy(idp, "id-req-post"), time.time()
    )
    assert result.name_id == "ann@acme.test"
    assert result.signed == frozenset({"response", "assertion"})


async def test_idp_initiated_login_is_unsolicited(idp: FakeSamlIdP) -> None:
    form = {"sp_entity_id": SP, "acs_url": ACS, "RelayState": ""}
    async with aiohttp.ClientSession() as http:
        async with http.post(idp.base_url + "/idp-initiated", data=form) as resp:
            page = await resp.text()
    _, fields = form_fields(page)
    xml = base64.b64decode(fields["SAMLResponse"])
    assert b"InResponseTo" not in xml
    assert verify_response(xml, policy(idp, None), time.time()).in_response_to is None


async def test_sso_without_a_request_is_a_bad_request(idp: FakeSamlIdP) -> None:
    async with aiohttp.ClientSession() as http, http.get(idp.sso_url) as resp:
        assert resp.status == 400
