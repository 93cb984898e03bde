"""AuthnRequests: decode what goes on the wire, check signatures with the SP's public key."""

from __future__ import annotations

import base64
import datetime as dt
import zlib
from urllib.parse import parse_qs, unquote_plus, urlsplit

import pytest
import xmlsec
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import NameOID
from lxml import etree
from saml2 import samlp
from saml2.sigver import SIGNER_ALGS, verify_redirect_signature

from broker.saml.authn import (
    AuthnPost,
    AuthnRedirect,
    AuthnRequestError,
    build_authn_request,
)

REQUEST_ID = "_flow_4f2a9c1e8b7d6a5f"
SSO = "https://idp.example.com/sso/saml"
ACS = "https://broker.example.com/saml/conn_1/acs"
SP = "https://broker.example.com/saml/conn_1"
NOW = 1_780_000_000.0
DS = "http://www.w3.org/2000/09/xmldsig#"


@pytest.fixture(scope="module")
def sp_keys() -> tuple[str, str, rsa.RSAPublicKey]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "broker test SP")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    cert_pem = cert.public_bytes(serialization.Encoding.PEM).decode()
    return key_pem, cert_pem, key.public_key()


def _build(**overrides):
    options = dict(
        request_id=REQUEST_ID,
        sp_entity_id=SP,
        acs_url=ACS,
        idp_sso_url=SSO,
        binding="redirect",
        relay_state="flow_abc123",
        force_authn=False,
        requested_authn_context=None,
        name_id_format=None,
        sign=False,
        sign_alg="rsa-sha256",
        sp_key_pem=None,
        issue_instant=NOW,
    )
    options.update(overrides)
    return build_authn_request(**options)


def _raw_query(url: str) -> dict[str, str]:
    query = urlsplit(url).query
    return dict(pair.split("=", 1) for pair in query.split("&"))


def _inflate(url: str) -> bytes:
    raw = unquote_plus(_raw_query(url)["SAMLRequest"])
    return zlib.decompress(base64.b64decode(raw), -15)


def test_redirect_unsigned_defaults() -> None:
    result = _build()
    assert isinstance(result, AuthnRedirect)
    assert result.url.startswith(SSO + "?SAMLRequest=")
    query = parse_qs(urlsplit(result.url).query)
    assert query["RelayState"] == ["flow_abc123"]
    assert "SigAlg" not in query and "Signature" not in query
    request = samlp.authn_request_from_string(_inflate(result.url).decode())
    assert request.id == REQUEST_ID
    assert request.version == "2.0"
    assert request.destination == SSO
    assert request.assertion_consumer_service_url == ACS
    assert request.protocol_binding == "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST"
    assert request.issuer.text == SP
    assert request.issue_instant == "2026-05-28T20:26:40Z"
    assert request.force_authn is None
    assert request.requested_authn_context is None
    assert request.name_id_policy is None


def test_redirect_options_reach_the_request() -> None:
    result = _build(
        force_authn=True,
        requested_authn_context=[
            "urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport"
        ],
        name_id_format="urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress",
        relay_state=None,
    )
    assert isinstance(result, AuthnRedirect)
    assert "RelayState" not in parse_qs(urlsplit(result.url).query)
    request = samlp.authn_request_from_string(_inflate(result.url).decode())
    assert request.force_authn == "true"
    context = request.requested_authn_context
    assert context.comparison == "exact"
    assert [ref.text for ref in context.authn_context_class_ref] == [
        "urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport"
    ]
    assert request.name_id_policy.format.endswith(":emailAddress")
    assert request.name_id_policy.allow_create == "true"


def test_sso_url_with_its_own_query_is_kept() -> None:
    google = "https://accounts.google.com/o/saml2/idp?idpid=C0abc"
    result = _build(idp_sso_url=google)
    assert isinstance(result, AuthnRedirect)
    assert result.url.startswith(google + "&SAMLRequest=")
    assert parse_qs(urlsplit(result.url).query)["idpid"] == ["C0abc"]


@pytest.mark.parametrize(
    ("sign_alg", "uri", "digest"),
    [
        ("rsa-sha256", "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256", hashes.SHA256()),
        ("rsa-sha1", "http://www.w3.org/2000/09/xmldsig#rsa-sha1", hashes.SHA1()),
    ],
)
def test_redirect_signature_over_exact_query(sp_keys, sign_alg, uri, digest) -> None:
    key_pem, cert_pem, public = sp_keys
    result = _build(sign=True, sign_alg=sign_alg, sp_key_pem=key_pem, relay_state="flow a/b+c")
    assert isinstance(result, AuthnRedirect)
    query = urlsplit(result.url).query
    signed, _, signature_part = query.rpartition("&Signature=")
    assert signed.split("&")[-1] == "SigAlg=" + uri.replace(":", "%3A").replace("/", "%2F").replace(
        "#", "%23"
    )
    signature = base64.b64decode(unquote_plus(signature_part))
    public.verify(signature, signed.encode(), padding.PKCS1v15(), digest)
    # Any change to the signed octets breaks it.
    with pytest.raises(InvalidSignature):
        public.verify(
            signature, signed.replace("flow", "flaw").encode(), padding.PKCS1v15(), digest
        )

    # pysaml2's own verifier (it rebuilds the string from decoded values) agrees.
    class Crypto:
        def get_signer(self, sigalg, sigkey=None):
            return SIGNER_ALGS[sigalg]

    message = {k: v[0] for k, v in parse_qs(query).items()}
    assert message["SigAlg"] == uri
    body = "".join(line for line in cert_pem.splitlines() if "-----" not in line)
    assert verify_redirect_signature(message, Crypto(), cert=body)


def test_post_unsigned() -> None:
    result = _build(binding="post", relay_state="flow_xyz")
    assert isinstance(result, AuthnPost)
    assert result.action_url == SSO
    assert result.form_fields["RelayState"] == "flow_xyz"
    xml = base64.b64decode(result.form_fields["SAMLRequest"])
    request = samlp.authn_request_from_string(xml.decode())
    assert request.id == REQUEST_ID
    assert request.signature is None


def _verify_post(xml: bytes, cert_pem: str) -> etree._Element:
    root = etree.fromstring(xml)
    xmlsec.tree.add_ids(root, ["ID"])
    signature = root.find(f"{{{DS}}}Signature")
    assert signature is not None
    context = xmlsec.SignatureContext()
    context.key = xmlsec.Key.from_memory(cert_pem.encode(), xmlsec.constants.KeyDataFormatCertPem)
    context.verify(signature)
    return root


@pytest.mark.parametrize(
    ("sign_alg", "method"),
    [
        ("rsa-sha256", "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"),
        ("rsa-sha1", "http://www.w3.org/2000/09/xmldsig#rsa-sha1"),
    ],
)
def test_post_enveloped_signature(sp_keys, sign_alg, method) -> None:
    key_pem, cert_pem, _ = sp_keys
    result = _build(
        binding="post", sign=True, sign_alg=sign_alg, sp_key_pem=key_pem, sp_cert_pem=cert_pem
    )
    assert isinstance(result, AuthnPost)
    xml = base64.b64decode(result.form_fields["SAMLRequest"])
    root = _verify_post(xml, cert_pem)
    children = [etree.QName(child).localname for child in root]
    assert children[:2] == ["Issuer", "Signature"]  # schema order
    assert (
        root.find(f"{{{DS}}}Signature/{{{DS}}}SignedInfo/{{{DS}}}SignatureMethod").get("Algorithm")
        == method
    )
    reference = root.find(f"{{{DS}}}Signature/{{{DS}}}SignedInfo/{{{DS}}}Reference")
    assert reference.get("URI") == f"#{REQUEST_ID}"
    assert samlp.authn_request_from_string(xml.decode()).id == REQUEST_ID
    tampered = xml.replace(ACS.encode(), b"https://evil.example.com/acs")
    with pytest.raises(xmlsec.Error):
        _verify_post(tampered, cert_pem)


def test_refusals() -> None:
    with pytest.raises(AuthnRequestError):
        _build(relay_state="x" * 81)
    with pytest.raises(AuthnRequestError):
        _build(request_id="1-starts-with-a-digit-xxxx")
    with pytest.raises(AuthnRequestError):
        _build(request_id="_short")
    with pytest.raises(AuthnRequestError):
        _build(sign=True, sp_key_pem=None)
    ec_pem = (
        ec.generate_private_key(ec.SECP256R1())
        .private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        .decode()
    )
    with pytest.raises(AuthnRequestError):
        _build(sign=True, sp_key_pem=ec_pem)
    with pytest.raises(AuthnRequestError):
        _build(binding="artifact")
    assert isinstance(_build(relay_state="x" * 80), AuthnRedirect)
