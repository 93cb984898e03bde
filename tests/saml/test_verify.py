"""verify_response on real signed Responses from FakeSamlIdP (pysaml2 IdP, xmlsec1 signatures).

One test per rule of broker/saml/verify.py: the valid shapes real IdPs send
(assertion-only, response-only, both, encrypted), then each check failing on a
Response that is otherwise valid. `now` is pinned to the Response's IssueInstant.
Attacks on the signature and the parser live in test_verify_attacks.py.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest
import xmlsec
from lxml import etree

from broker.saml import xmlsafe
from broker.saml.verify import SamlValidationError, VerifiedResponse, VerifyPolicy, verify_response
from tests.fakes.saml_idp import NS, FakeSamlIdP, generate_key_and_cert, sign_element

IDP = "https://idp.acme.test/saml/metadata"
SP = "https://broker.exec.test/saml/conn_01"
ACS = "https://broker.exec.test/saml/conn_01/acs"
REQ = "id-authnrequest-0001"


@pytest.fixture(scope="module")
def idp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FakeSamlIdP]:
    yield FakeSamlIdP(IDP, tmp_path_factory.mktemp("idp"))


@pytest.fixture(scope="module")
def sp_keys() -> tuple[str, str]:
    return generate_key_and_cert("Broker SP encryption")


def policy(idp: FakeSamlIdP, **changes: object) -> VerifyPolicy:
    base = VerifyPolicy(
        idp_entity_id=IDP,
        idp_certificates=(idp.certificate_pem,),
        sp_entity_id=SP,
        acs_url=ACS,
        expected_in_response_to=REQ,
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def respond(idp: FakeSamlIdP, **kwargs: object) -> bytes:
    args: dict[str, object] = {"sp_entity_id": SP, "acs_url": ACS, "in_response_to": REQ}
    args.update(kwargs)
    return idp.make_response(**args)  # type: ignore[arg-type]


def issued_at(xml: bytes) -> float:
    instant = etree.fromstring(xml).get("IssueInstant")
    return dt.datetime.strptime(instant, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC).timestamp()


def verify(xml: bytes, pol: VerifyPolicy, offset: float = 0.0) -> VerifiedResponse:
    return verify_response(xml, pol, issued_at(xml) + offset)


def refused(xml: bytes, pol: VerifyPolicy, check: str, offset: float = 0.0) -> SamlValidationError:
    with pytest.raises(SamlValidationError) as info:
        verify(xml, pol, offset)
    assert info.value.check == check, info.value.detail
    return info.value


def edit(xml: bytes, change: object) -> bytes:
    root = etree.fromstring(xml)
    change(root)  # type: ignore[operator]
    return etree.tostring(root)


# ---------------------------------------------------------------- valid shapes


@pytest.mark.parametrize(
    ("sign_response", "sign_assertion", "signed"),
    [
        (False, True, {"assertion"}),  # Entra ID, AD FS, Google
        (True, False, {"response"}),  # OneLogin, PingFederate
        (True, True, {"response", "assertion"}),  # Okta, Duo
    ],
)
def test_valid_signed_shapes(
    idp: FakeSamlIdP, sign_response: bool, sign_assertion: bool, signed: set[str]
) -> None:
    xml = respond(
        idp,
        sign_response=sign_response,
        sign_assertion=sign_assertion,
        attributes={"email": ["ann@acme.test"], "groups": ["Engineering", "Everyone"]},
    )
    result = verify(xml, policy(idp))
    assert result.signed == frozenset(signed)
    assert result.encrypted is False
    assert result.name_id == "ann@acme.test"
    assert result.name_id_format == "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress"
    assert result.issuer == IDP
    assert result.in_response_to == REQ
    assert result.attributes == {"email": ["ann@acme.test"], "groups": ["Engineering", "Everyone"]}
    assert result.authn_context_class_ref == (
        "urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport"
    )
    assert result.session_index and result.authn_instant
    root = etree.fromstring(xml)
    assert result.response_id == root.get("ID")
    assert result.assertion_id == root.find("saml:Assertion", NS).get("ID")
    # Replay cache horizon: SubjectConfirmationData NotOnOrAfter (5 min) plus the skew.
    assert result.assertion_not_on_or_after == issued_at(xml) + 300 + 120


@pytest.mark.parametrize(
    "data_encryption", ["aes128-gcm", "aes256-gcm", "aes128-cbc", "aes256-cbc"]
)
@pytest.mark.parametrize("key_transport", ["rsa-oaep-mgf1p", "rsa-oaep"])
def test_valid_encrypted(
    idp: FakeSamlIdP, sp_keys: tuple[str, str], data_encryption: str, key_transport: str
) -> None:
    key, cert = sp_keys
    xml = respond(
        idp,
        sign_response=False,
        sign_assertion=True,
        encrypt_with_cert=cert,
        data_encryption=data_encryption,
        key_transport=key_transport,
    )
    assert b"EncryptedAssertion" in xml and b"ann@acme.test" not in xml
    result = verify(xml, policy(idp, decryption_keys=(key,)))
    assert result.encrypted is True
    assert result.signed == frozenset({"assertion"})
    assert result.name_id == "ann@acme.test"
    assert result.attributes["email"] == ["ann@acme.test"]


def test_encrypted_with_only_the_response_signed(
    idp: FakeSamlIdP, sp_keys: tuple[str, str]
) -> None:
    key, cert = sp_keys
    xml = respond(idp, sign_response=True, sign_assertion=False, encrypt_with_cert=cert)
    result = verify(xml, policy(idp, decryption_keys=(key,)))
    assert result.signed == frozenset({"response"}) and result.encrypted


def test_encrypted_decrypts_with_the_previous_sp_key(
    idp: FakeSamlIdP, sp_keys: tuple[str, str]
) -> None:
    old_key, old_cert = sp_keys
    new_key, _ = generate_key_and_cert("Broker SP encryption, new")
    xml = respond(idp, sign_response=False, encrypt_with_cert=old_cert)
    assert verify(xml, policy(idp, decryption_keys=(new_key, old_key))).encrypted


def test_encrypted_with_an_unknown_sp_key_is_refused(
    idp: FakeSamlIdP, sp_keys: tuple[str, str]
) -> None:
    _, cert = sp_keys
    other_key, _ = generate_key_and_cert("someone else")
    xml = respond(idp, sign_response=False, encrypt_with_cert=cert)
    refused(xml, policy(idp, decryption_keys=(other_key,)), "decrypt")
    refused(xml, policy(idp), "decrypt")  # no SP key configured at all


def test_encrypted_with_rsa_pkcs1_v15_key_transport_is_refused(
    idp: FakeSamlIdP, sp_keys: tuple[str, str]
) -> None:
    key, cert = sp_keys
    xml = respond(idp, sign_response=False, encrypt_with_cert=cert, key_transport="rsa-1_5")
    refused(xml, policy(idp, decryption_keys=(key,)), "algorithm")


def test_encrypted_but_unsigned_is_refused(idp: FakeSamlIdP, sp_keys: tuple[str, str]) -> None:
    key, cert = sp_keys
    xml = respond(idp, sign_response=False, sign_assertion=False, encrypt_with_cert=cert)
    refused(xml, policy(idp, decryption_keys=(key,)), "signature")


def test_encrypted_ciphertext_altered_is_refused(
    idp: FakeSamlIdP, sp_keys: tuple[str, str]
) -> None:
    key, cert = sp_keys
    xml = respond(idp, sign_response=False, encrypt_with_cert=cert, data_encryption="aes256-cbc")

    def flip(root: etree._Element) -> None:
        cipher = root.findall(".//xenc:EncryptedData/xenc:CipherData/xenc:CipherValue", NS)[0]
        raw = bytearray(__import__("base64").b64decode(cipher.text))
        raw[40] ^= 0x01  # a bit in the second CBC block: garbles plaintext, padding intact
        cipher.text = __import__("base64").b64encode(bytes(raw)).decode()

    with pytest.raises(SamlValidationError) as info:
        verify(edit(xml, flip), policy(idp, decryption_keys=(key,)))
    assert info.value.check in {"decrypt", "signature", "malformed"}


def test_certificate_rollover_accepts_any_configured_certificate(
    idp: FakeSamlIdP, tmp_path: Path
) -> None:
    other = FakeSamlIdP(IDP, tmp_path)
    xml = respond(idp, sign_response=False)
    pol = policy(idp, idp_certificates=(other.certificate_pem, idp.certificate_pem))
    assert verify(xml, pol).signed == frozenset({"assertion"})


# ---------------------------------------------------------------- signatures


def test_unsigned_is_refused(idp: FakeSamlIdP) -> None:
    xml = respond(idp, sign_response=False, sign_assertion=False)
    refused(xml, policy(idp), "signature")


@pytest.mark.parametrize(("sign_response", "sign_assertion"), [(True, False), (False, True)])
def test_signed_by_another_idp_is_refused(
    idp: FakeSamlIdP, tmp_path: Path, sign_response: bool, sign_assertion: bool
) -> None:
    impostor = FakeSamlIdP(IDP, tmp_path)  # same entity ID, its own key
    xml = respond(impostor, sign_response=sign_response, sign_assertion=sign_assertion)
    refused(xml, policy(idp), "signature")
    assert verify(xml, policy(impostor)).name_id == "ann@acme.test"  # the same bytes are valid


@pytest.mark.parametrize(("sign_response", "sign_assertion"), [(True, False), (False, True)])
def test_attribute_changed_after_signing_is_refused(
    idp: FakeSamlIdP, sign_response: bool, sign_assertion: bool
) -> None:
    xml = respond(idp, sign_response=sign_response, sign_assertion=sign_assertion)

    def promote(root: etree._Element) -> None:
        value = root.find(".//saml:Attribute[@Name='groups']/saml:AttributeValue", NS)
        value.text = "Administrators"

    refused(edit(xml, promote), policy(idp), "signature")


def test_bad_assertion_signature_inside_a_signed_response_is_refused(idp: FakeSamlIdP) -> None:
    xml = respond(idp, sign_response=False, sign_assertion=True)

    def corrupt(root: etree._Element) -> None:
        value = root.find("saml:Assertion/ds:Signature/ds:SignatureValue", NS)
        value.text = "AAAA" + value.text[4:]

    # The IdP then signs the whole Response over the broken assertion signature.
    tampered = idp.sign_response_with_pysaml2(edit(xml, corrupt))
    refused(tampered, policy(idp), "signature")


def test_sha1_refused_unless_allowed(idp: FakeSamlIdP) -> None:
    xml = respond(idp, sign_response=False, sign_alg="rsa-sha1", digest="sha1")
    refused(xml, policy(idp), "algorithm")
    assert verify(xml, policy(idp, allow_sha1=True)).signed == frozenset({"assertion"})


def test_sha1_digest_under_a_sha256_signature_refused(idp: FakeSamlIdP) -> None:
    xml = respond(idp, sign_response=False, sign_alg="rsa-sha256", digest="sha1")
    refused(xml, policy(idp), "algorithm")


@pytest.mark.parametrize(
    ("sign_alg", "digest"), [("rsa-sha256", "sha384"), ("rsa-sha256", "sha512")]
)
def test_stronger_digests_accepted(idp: FakeSamlIdP, sign_alg: str, digest: str) -> None:
    xml = respond(idp, sign_response=True, sign_assertion=False, sign_alg=sign_alg, digest=digest)
    assert verify(xml, policy(idp)).signed == frozenset({"response"})


def test_ecdsa_signature_accepted(idp: FakeSamlIdP) -> None:
    ec_key, ec_cert = generate_key_and_cert("EC IdP", kind="ec")
    root = etree.fromstring(respond(idp, sign_response=False, sign_assertion=False))
    sign_element(root, root, ec_key, ec_cert, sign_alg="ecdsa-sha256")
    xml = etree.tostring(root)
    assert verify(xml, policy(idp, idp_certificates=(ec_cert,))).signed == frozenset({"response"})


def test_disallowed_transform_refused(idp: FakeSamlIdP) -> None:
    xml = respond(idp, sign_response=True, sign_assertion=False)

    def add_xpath(root: etree._Element) -> None:
        transforms = root.find("ds:Signature/ds:SignedInfo/ds:Reference/ds:Transforms", NS)
        etree.SubElement(
            transforms,
            f"{{{NS['ds']}}}Transform",
            Algorithm="http://www.w3.org/TR/1999/REC-xpath-19991116",
        )

    refused(edit(xml, add_xpath), policy(idp), "algorithm")


# ---------------------------------------------------------------- status, issuer, destination


def test_non_success_status_is_refused_with_its_code(idp: FakeSamlIdP) -> None:
    xml = idp.make_error_response(acs_url=ACS, in_response_to=REQ, message="bad password")
    error = refused(xml, policy(idp), "status")
    assert error.got is not None
    assert error.got.startswith(
        "urn:oasis:names:tc:SAML:2.0:status:Responder"
        " / urn:oasis:names:tc:SAML:2.0:status:AuthnFailed"
    )
    assert "bad password" in error.got
    assert "bad password" not in error.public  # detail stays private


def test_wrong_issuer_is_refused(idp: FakeSamlIdP) -> None:
    xml = respond(idp)
    error = refused(xml, policy(idp, idp_entity_id="https://other-idp.test"), "issuer")
    assert (error.expected, error.got) == ("https://other-idp.test", IDP)


def test_wrong_response_issuer_on_an_assertion_signed_response_is_refused(
    idp: FakeSamlIdP,
) -> None:
    xml = respond(idp, sign_response=False)

    def swap(root: etree._Element) -> None:
        root.find("saml:Issuer", NS).text = "https://evil.test"

    refused(edit(xml, swap), policy(idp), "issuer")


def test_wrong_destination_is_refused(idp: FakeSamlIdP) -> None:
    # Assertion-only signed: the Response's Destination is not covered, yet checked.
    xml = respond(idp, sign_response=False)
    tampered = edit(xml, lambda root: root.set("Destination", "https://evil.test/acs"))
    error = refused(tampered, policy(idp), "destination")
    assert error.got == "https://evil.test/acs"


def test_wrong_destination_on_a_signed_response_is_refused(idp: FakeSamlIdP) -> None:
    xml = respond(
        idp,
        sign_response=True,
        sign_assertion=False,
        acs_url="https://broker.exec.test/saml/conn_02/acs",
    )

    def fix_recipient(root: etree._Element) -> None:
        data = root.find(".//saml:SubjectConfirmationData", NS)
        data.set("Recipient", ACS)

    # The IdP signs a Response whose Recipient matches but whose Destination does not.
    signed = etree.fromstring(edit(xml, fix_recipient))
    sign_element(signed, signed, idp.key_pem, idp.certificate_pem)
    refused(etree.tostring(signed), policy(idp), "destination")


def test_wrong_audience_is_refused(idp: FakeSamlIdP) -> None:
    xml = respond(idp, sp_entity_id="https://another-sp.test")
    error = refused(xml, policy(idp), "audience")
    assert error.got == "https://another-sp.test"


def test_wrong_recipient_is_refused(idp: FakeSamlIdP) -> None:
    xml = respond(idp, sign_response=False)
    refused(xml, policy(idp, acs_url="https://broker.exec.test/saml/conn_09/acs"), "recipient")


# ---------------------------------------------------------------- time


def test_time_window_honours_skew_at_the_edges(idp: FakeSamlIdP) -> None:
    xml = respond(idp, lifetime_minutes=5)
    pol = policy(idp, clock_skew_seconds=120)
    assert verify(xml, pol, offset=-120).name_id  # NotBefore - skew: still accepted
    refused(xml, pol, "not_yet_valid", offset=-121)
    assert verify(xml, pol, offset=300 + 119).name_id  # NotOnOrAfter + skew - 1s
    refused(xml, pol, "expired", offset=300 + 120)


def test_zero_skew_is_strict(idp: FakeSamlIdP) -> None:
    xml = respond(idp, lifetime_minutes=5)
    pol = policy(idp, clock_skew_seconds=0)
    refused(xml, pol, "not_yet_valid", offset=-1)
    refused(xml, pol, "expired", offset=300)


def test_expired_subject_confirmation_is_refused(idp: FakeSamlIdP) -> None:
    root = etree.fromstring(respond(idp, sign_response=False, sign_assertion=False))
    data = root.find(".//saml:SubjectConfirmationData", NS)
    instant = dt.datetime.fromtimestamp(issued_at(etree.tostring(root)) + 60, dt.UTC)
    data.set("NotOnOrAfter", instant.strftime("%Y-%m-%dT%H:%M:%SZ"))
    assertion = root.find("saml:Assertion", NS)
    sign_element(root, assertion, idp.key_pem, idp.certificate_pem)  # the IdP signs it so
    xml = etree.tostring(root)
    assert verify(xml, policy(idp), offset=60 + 119).name_id
    refused(xml, policy(idp), "subject_expired", offset=60 + 120)


# ---------------------------------------------------------------- InResponseTo


def test_wrong_in_response_to_is_refused(idp: FakeSamlIdP) -> None:
    xml = respond(idp, in_response_to="id-someone-elses-request")
    error = refused(xml, policy(idp), "in_response_to")
    assert (error.expected, error.got) == (REQ, "id-someone-elses-request")


def test_missing_in_response_to_when_expected_is_refused(idp: FakeSamlIdP) -> None:
    xml = respond(idp, in_response_to=None)
    error = refused(xml, policy(idp), "in_response_to")
    assert error.got is None


def test_unsolicited_accepted_when_allowed(idp: FakeSamlIdP) -> None:
    xml = respond(idp, in_response_to=None)
    result = verify(xml, policy(idp, expected_in_response_to=None, allow_unsolicited=True))
    assert result.in_response_to is None


def test_unsolicited_refused_when_not_allowed(idp: FakeSamlIdP) -> None:
    xml = respond(idp, in_response_to=None)
    pol = policy(idp, expected_in_response_to=None, allow_unsolicited=False)
    refused(xml, pol, "unsolicited")


def test_response_to_a_request_is_not_accepted_as_unsolicited(idp: FakeSamlIdP) -> None:
    xml = respond(idp, in_response_to="id-stale-request")
    refused(xml, policy(idp, expected_in_response_to=None), "in_response_to")


def test_assertion_in_response_to_checked_when_response_is_unsigned(idp: FakeSamlIdP) -> None:
    # Response-level InResponseTo rewritten by an attacker; the signed assertion's
    # SubjectConfirmationData still names the original request.
    xml = respond(idp, sign_response=False, in_response_to="id-victims-request")
    tampered = edit(xml, lambda root: root.set("InResponseTo", REQ))
    refused(tampered, policy(idp), "in_response_to")


# ---------------------------------------------------------------- shape and environment


def test_not_a_response_is_malformed(idp: FakeSamlIdP) -> None:
    xml = respond(idp, sign_response=False)
    assertion = etree.fromstring(xml).find("saml:Assertion", NS)
    with pytest.raises(SamlValidationError) as info:
        verify_response(etree.tostring(assertion), policy(idp), issued_at(xml))
    assert info.value.check == "malformed"
    with pytest.raises(SamlValidationError) as info:
        verify_response(b"<Response", policy(idp), issued_at(xml))
    assert info.value.check == "malformed"


def test_error_carries_public_text_and_private_detail(idp: FakeSamlIdP) -> None:
    xml = respond(idp)
    error = refused(xml, policy(idp, sp_entity_id="https://x.test"), "audience")
    assert "https://x.test" in error.detail and "https://x.test" not in error.public


def test_libxml2_versions_match() -> None:
    xmlsafe.check_libxml2_versions()  # lxml and xmlsec in this venv link the same libxml2


def test_libxml2_version_mismatch_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(xmlsec, "get_libxml_version", lambda: (2, 9, 1))
    with pytest.raises(RuntimeError, match="different libxml2"):
        xmlsafe.check_libxml2_versions()
