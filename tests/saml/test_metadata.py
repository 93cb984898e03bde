"""IdP metadata parsing (vendor-shaped templates, certificates made at test time) and our SP
metadata read back by pysaml2."""

from __future__ import annotations

import base64
import datetime as dt
import textwrap
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from saml2.attribute_converter import ac_factory
from saml2.mdstore import InMemoryMetaData

from broker.saml.metadata import (
    BINDING_POST,
    BINDING_REDIRECT,
    MetadataError,
    certificate_info,
    manual_idp_metadata,
    parse_idp_metadata,
)
from broker.saml.sp_metadata import sp_metadata_xml

DATA = Path(__file__).resolve().parents[1] / "data" / "saml"
NOW = dt.datetime(2026, 6, 1, tzinfo=dt.UTC)


def make_cert(cn: str, *, not_after: dt.datetime) -> str:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - dt.timedelta(days=365))
        .not_valid_after(not_after)
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM).decode()


@pytest.fixture(scope="module")
def certs() -> dict[str, str]:
    return {
        "signing": make_cert("IdP Signing", not_after=NOW + dt.timedelta(days=3 * 365)),
        "next": make_cert("IdP Signing Next", not_after=NOW + dt.timedelta(days=20)),
        "other": make_cert("Not For Signing", not_after=NOW + dt.timedelta(days=365)),
        "expired": make_cert("IdP Expired", not_after=NOW - dt.timedelta(days=1)),
    }


def body(pem: str) -> str:
    return "".join(line for line in pem.splitlines() if "-----" not in line)


def render(path: str, certs: dict[str, str], signing: str = "signing") -> bytes:
    text = (DATA / path).read_text(encoding="utf-8-sig")
    b64 = body(certs[signing])
    text = (
        text.replace("@SIGNING_CERT_WRAPPED@", "\n".join(textwrap.wrap(b64, 76)))
        .replace("@SIGNING_CERT_SPACED@", " ".join(textwrap.wrap(b64, 76)))
        .replace("@SIGNING_CERT@", b64)
        .replace("@NEXT_CERT@", body(certs["next"]))
        .replace("@OTHER_CERT@", body(certs["other"]))
    )
    return text.encode("utf-8")


def parse(path: str, certs: dict[str, str], **kwargs):
    return parse_idp_metadata(render(path, certs), now=NOW.timestamp(), **kwargs)


def test_entra_signed_metadata_with_wsfed_role_descriptors(certs) -> None:
    # The BOM, the metadata signature's KeyInfo and the WS-Fed descriptors are all ignored.
    raw = b"\xef\xbb\xbf" + render("entra/metadata.template.xml", certs)
    meta = parse_idp_metadata(raw, now=NOW.timestamp())
    assert meta.entity_id == "https://sts.windows.net/0b1c2d3e-0000-4000-8000-000000000001/"
    assert set(meta.sso_urls) == {BINDING_REDIRECT, BINDING_POST}
    assert meta.signing_certificates == (certs["signing"], certs["next"])  # rollover: both
    assert certs["other"] not in meta.signing_certificates
    assert meta.want_authn_requests_signed is False
    assert len(meta.warnings) == 1 and "IdP Signing Next" in meta.warnings[0]
    assert "under 30 days" in meta.warnings[0]


def test_adfs_takes_the_idp_signing_key_only(certs) -> None:
    meta = parse("adfs/metadata.template.xml", certs)
    assert meta.entity_id == "http://adfs.corp.example.com/adfs/services/trust"
    assert meta.signing_certificates == (certs["signing"],)
    assert meta.redirect_url == "https://adfs.corp.example.com/adfs/ls/"
    assert "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent" in meta.name_id_formats
    assert meta.warnings == ()


def test_google_valid_until(certs) -> None:
    meta = parse("google/metadata.template.xml", certs)
    assert meta.valid_until == dt.datetime(2031, 7, 19, 17, 28, 34, tzinfo=dt.UTC).timestamp()
    assert meta.redirect_url == "https://accounts.google.com/o/saml2/idp?idpid=C0test42"
    late = parse_idp_metadata(
        render("google/metadata.template.xml", certs),
        now=dt.datetime(2032, 1, 1, tzinfo=dt.UTC).timestamp(),
    )
    assert any("validUntil" in w for w in late.warnings)


def test_onelogin_soap_binding_ignored(certs) -> None:
    meta = parse("onelogin/metadata.template.xml", certs)
    assert meta.sso_urls == {
        BINDING_POST: "https://example.onelogin.com/trust/saml2/http-post/sso/777777"
    }


def test_jumpcloud_post_only_and_free_text_entity_id(certs) -> None:
    meta = parse("jumpcloud/metadata.template.xml", certs)
    assert meta.entity_id == "Example JumpCloud IdP"
    assert meta.redirect_url is None
    assert meta.post_url == "https://sso.jumpcloud.com/saml2/example-app"


def test_okta_spaced_certificate_and_padded_formats(certs) -> None:
    meta = parse("okta/metadata.template.xml", certs)
    assert meta.signing_certificates == (certs["signing"],)
    assert meta.want_authn_requests_signed is True
    assert meta.name_id_formats == (
        "urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified",
        "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress",
    )


def test_entities_descriptor_needs_a_choice(certs) -> None:
    with pytest.raises(MetadataError) as caught:
        parse("generic/entities.template.xml", certs)
    assert "2 identity providers" in caught.value.public
    assert "https://idp-two.example.org/idp/shibboleth" in caught.value.public
    one = parse(
        "generic/entities.template.xml",
        certs,
        entity_id="https://idp-one.example.org/idp/shibboleth",
    )
    assert one.signing_certificates == (certs["signing"],)  # KeyDescriptor without `use`
    assert one.valid_until == dt.datetime(2029, 6, 1, tzinfo=dt.UTC).timestamp()  # earliest
    two = parse(
        "generic/entities.template.xml",
        certs,
        entity_id="https://idp-two.example.org/idp/shibboleth",
    )
    assert two.signing_certificates == (certs["other"],)
    with pytest.raises(MetadataError) as caught:
        parse("generic/entities.template.xml", certs, entity_id="https://nope.example.org")
    assert "no entity" in caught.value.public
    with pytest.raises(MetadataError) as caught:
        parse("generic/entities.template.xml", certs, entity_id="https://sp.example.org/shibboleth")
    assert "IDPSSODescriptor" in caught.value.public


def test_expired_certificate_is_a_warning(certs) -> None:
    meta = parse_idp_metadata(
        render("okta/metadata.template.xml", certs, signing="expired"), now=NOW.timestamp()
    )
    assert any("expired on" in w for w in meta.warnings)


MINIMAL = """<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata"
  xmlns:ds="http://www.w3.org/2000/09/xmldsig#" entityID="https://idp.example.com">
  <md:IDPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">
    {keys}
    {sso}
  </md:IDPSSODescriptor>
</md:EntityDescriptor>"""
KEY = (
    '<md:KeyDescriptor use="{use}"><ds:KeyInfo><ds:X509Data><ds:X509Certificate>{cert}'
    "</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>"
)
SSO = '<md:SingleSignOnService Binding="{binding}" Location="{url}"/>'


def minimal(certs, *, use="signing", cert=None, binding=BINDING_REDIRECT, url=None) -> bytes:
    keys = KEY.format(use=use, cert=cert if cert is not None else body(certs["signing"]))
    sso = SSO.format(binding=binding, url=url or "https://idp.example.com/sso")
    return MINIMAL.format(keys=keys, sso=sso).encode()


@pytest.mark.parametrize(
    ("document", "words"),
    [
        (lambda c: b"this is not xml", "not well-formed XML"),
        (lambda c: b"", "not"),
        (
            lambda c: b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "b">]><x>&a;</x>',
            "DOCTYPE",
        ),
        (lambda c: b"<html><body>login</body></html>", "not SAML 2.0 metadata"),
        (
            lambda c: (
                b'<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" '
                b'entityID="x"/>'
            ),
            "no IDPSSODescriptor",
        ),
        (lambda c: minimal(c, use="encryption"), "no signing certificate"),
        (lambda c: minimal(c, cert="bm90IGEgY2VydA=="), "cannot be read"),
        (
            lambda c: minimal(c, binding="urn:oasis:names:tc:SAML:2.0:bindings:SOAP"),
            "no single sign-on URL",
        ),
        (lambda c: minimal(c, url="http://idp.example.com/sso"), "must use HTTPS"),
    ],
)
def test_refusals_have_clear_words(certs, document, words) -> None:
    with pytest.raises(MetadataError) as caught:
        parse_idp_metadata(document(certs), now=NOW.timestamp())
    assert words in caught.value.public


def test_utf16_doctype_is_refused(certs) -> None:
    xml = '<?xml version="1.0" encoding="UTF-16"?><!DOCTYPE x><x/>'.encode("utf-16")
    with pytest.raises(MetadataError) as caught:
        parse_idp_metadata(xml)
    assert "DOCTYPE" in caught.value.public


def test_http_sso_allowed_only_on_loopback(certs) -> None:
    meta = parse_idp_metadata(minimal(certs, url="http://127.0.0.1:8081/sso"), now=NOW.timestamp())
    assert meta.redirect_url == "http://127.0.0.1:8081/sso"
    meta = parse_idp_metadata(minimal(certs, url="http://localhost/sso"), now=NOW.timestamp())
    assert meta.redirect_url == "http://localhost/sso"


def test_manual_idp_metadata(certs) -> None:
    meta = manual_idp_metadata(
        " https://idp.example.com ",
        "https://idp.example.com/sso",
        [certs["signing"], body(certs["next"]), certs["signing"]],
        now=NOW.timestamp(),
    )
    assert meta.entity_id == "https://idp.example.com"
    assert meta.sso_urls == {
        BINDING_REDIRECT: "https://idp.example.com/sso",
        BINDING_POST: "https://idp.example.com/sso",
    }
    assert meta.signing_certificates == (certs["signing"], certs["next"])
    assert len(meta.warnings) == 1
    only_post = manual_idp_metadata(
        "x", "https://idp.example.com/sso", [certs["signing"]], bindings=[BINDING_POST]
    )
    assert list(only_post.sso_urls) == [BINDING_POST]
    for args, words in [
        (("", "https://idp.example.com/sso", [certs["signing"]]), "entity ID is missing"),
        (("x", "ftp://idp.example.com/sso", [certs["signing"]]), "HTTPS"),
        (("x", "https://idp.example.com/sso", []), "certificate is missing"),
        (("x", "https://idp.example.com/sso", ["garbage"]), "cannot be read"),
        (("x" * 1025, "https://idp.example.com/sso", [certs["signing"]]), "1024"),
    ]:
        with pytest.raises(MetadataError) as caught:
            manual_idp_metadata(*args)
        assert words in caught.value.public


def test_certificate_info(certs) -> None:
    not_before, not_after, fingerprint, subject = certificate_info(certs["signing"])
    cert = x509.load_pem_x509_certificate(certs["signing"].encode())
    assert not_after == cert.not_valid_after_utc.timestamp()
    assert not_before == cert.not_valid_before_utc.timestamp()
    assert fingerprint.replace(":", "") == cert.fingerprint(hashes.SHA256()).hex().upper()
    assert len(fingerprint) == 95
    assert subject == "CN=IdP Signing"


# --- our SP metadata ----------------------------------------------------------------------


def test_sp_metadata_read_back_by_pysaml2(certs) -> None:
    xml = sp_metadata_xml(
        entity_id="https://broker.example.com/saml/conn_1",
        acs_url="https://broker.example.com/saml/conn_1/acs",
        signing_certs_pem=[certs["signing"], certs["next"]],  # rollover: old and new
        encryption_certs_pem=[certs["other"]],
        authn_requests_signed=True,
    )
    store = InMemoryMetaData(ac_factory(), xml.decode())
    store.load()
    entity_id = "https://broker.example.com/saml/conn_1"
    assert list(store.keys()) == [entity_id]
    sp = store[entity_id]["spsso_descriptor"][0]
    assert sp["authn_requests_signed"] == "true"
    assert sp["want_assertions_signed"] == "true"
    acs = sp["assertion_consumer_service"]
    assert [(a["binding"], a["location"]) for a in acs] == [
        (BINDING_POST, "https://broker.example.com/saml/conn_1/acs")
    ]
    signing = store.certs(entity_id, "spsso", "signing")
    encryption = store.certs(entity_id, "spsso", "encryption")

    def compact(found: list) -> set[str]:
        return {"".join(body(cert).split()) for _, cert in found}

    assert compact(signing) == {body(certs["signing"]), body(certs["next"])}
    assert compact(encryption) == {body(certs["other"])}
    formats = [f["text"] for f in sp["name_id_format"]]
    assert "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress" in formats


def test_sp_metadata_without_encryption_cert(certs) -> None:
    xml = sp_metadata_xml(
        entity_id="https://broker.example.com/saml/conn_2",
        acs_url="https://broker.example.com/saml/conn_2/acs",
        signing_certs_pem=[body(certs["signing"])],
        encryption_certs_pem=[],
        authn_requests_signed=False,
        want_assertions_signed=False,
    )
    assert b'use="encryption"' not in xml
    assert b'AuthnRequestsSigned="false"' in xml
    assert b'WantAssertionsSigned="false"' in xml
    assert base64.b64decode(body(certs["signing"])) in base64.b64decode(
        xml.split(b"<ds:X509Certificate>")[1].split(b"<")[0]
    )
