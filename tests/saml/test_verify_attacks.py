"""Attacks on verify_response, each built by tampering with a REAL signed Response.

Families: XML signature wrapping (XSW, CVE-2024-45409 and the 2012 "On Breaking SAML"
placements), KeyInfo trust (an attacker's key and certificate carried in the
message), comment truncation of NameID (CVE-2017-11427 family), and DTD/entity
payloads (billion laughs, XXE). Every attack must end in SamlValidationError with
the expected stable check code, or, for comments, in the full value being read.
"""

from __future__ import annotations

import base64
import copy
import dataclasses
import datetime as dt
from collections.abc import Iterator

import pytest
import xmlsec
from cryptography.hazmat.primitives import serialization
from lxml import etree

from broker.saml.verify import SamlValidationError, VerifiedResponse, VerifyPolicy, verify_response
from tests.fakes.saml_idp import (
    NS,
    FakeSamlIdP,
    cert_body,
    encrypt_assertion,
    generate_key_and_cert,
    sign_element,
)

IDP = "https://idp.acme.test/saml/metadata"
SP = "https://broker.exec.test/saml/conn_01"
ACS = "https://broker.exec.test/saml/conn_01/acs"
REQ = "id-authnrequest-0001"
SAML, SAMLP, DS = (f"{{{NS[p]}}}" for p in ("saml", "samlp", "ds"))


@pytest.fixture(scope="module")
def idp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FakeSamlIdP]:
    yield FakeSamlIdP(IDP, tmp_path_factory.mktemp("idp"))


@pytest.fixture(scope="module")
def attacker() -> tuple[str, str]:
    return generate_key_and_cert("Fake SAML IdP")  # same subject name as the real one


def policy(idp: FakeSamlIdP, **changes: object) -> VerifyPolicy:
    base = VerifyPolicy(IDP, (idp.certificate_pem,), SP, ACS, REQ)
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def respond(idp: FakeSamlIdP, **kwargs: object) -> bytes:
    args: dict[str, object] = {"sp_entity_id": SP, "acs_url": ACS, "in_response_to": REQ}
    args.update(kwargs)
    return idp.make_response(**args)  # type: ignore[arg-type]


def now_of(xml: bytes) -> float:
    instant = etree.fromstring(xml).get("IssueInstant")
    return dt.datetime.strptime(instant, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC).timestamp()


def verify(xml: bytes, pol: VerifyPolicy, now: float) -> VerifiedResponse:
    return verify_response(xml, pol, now)


def refused(xml: bytes, pol: VerifyPolicy, now: float, check: str) -> SamlValidationError:
    with pytest.raises(SamlValidationError) as info:
        verify_response(xml, pol, now)
    assert info.value.check == check, info.value.detail
    return info.value


def evil_twin(assertion: etree._Element, *, same_id: bool = False) -> etree._Element:
    """An unsigned copy of `assertion` naming the attacker."""
    twin = copy.deepcopy(assertion)
    for signature in twin.findall("ds:Signature", NS):
        twin.remove(signature)
    if not same_id:
        twin.set("ID", "id-evil-assertion")
    twin.find("saml:Subject/saml:NameID", NS).text = "mallory@evil.test"
    return twin


def extensions_of(root: etree._Element) -> etree._Element:
    """samlp:Extensions, placed after Issuer as the schema wants."""
    ext = etree.Element(f"{SAMLP}Extensions")
    root.find("saml:Issuer", NS).addnext(ext)
    return ext


# ---------------------------------------------------------------- valid baseline


@pytest.fixture(scope="module")
def assertion_signed(idp: FakeSamlIdP) -> bytes:
    xml = respond(idp, sign_response=False, sign_assertion=True)
    assert verify(xml, policy(idp), now_of(xml)).name_id == "ann@acme.test"  # baseline is valid
    return xml


@pytest.fixture(scope="module")
def response_signed(idp: FakeSamlIdP) -> bytes:
    xml = respond(idp, sign_response=True, sign_assertion=False)
    assert verify(xml, policy(idp), now_of(xml)).name_id == "ann@acme.test"
    return xml


# ---------------------------------------------------------------- signature wrapping


@pytest.mark.parametrize("where", ["before", "after"])
def test_second_assertion_as_sibling_is_refused(
    idp: FakeSamlIdP, assertion_signed: bytes, where: str
) -> None:
    root = etree.fromstring(assertion_signed)
    signed = root.find("saml:Assertion", NS)
    (signed.addprevious if where == "before" else signed.addnext)(evil_twin(signed))
    refused(etree.tostring(root), policy(idp), now_of(assertion_signed), "wrapping")


def test_second_assertion_in_a_signed_response_is_refused(
    idp: FakeSamlIdP, response_signed: bytes
) -> None:
    root = etree.fromstring(response_signed)
    signed = root.find("saml:Assertion", NS)
    signed.addprevious(evil_twin(signed))
    refused(etree.tostring(root), policy(idp), now_of(response_signed), "wrapping")


def test_evil_assertion_inside_the_signature_object_is_refused(
    idp: FakeSamlIdP, assertion_signed: bytes
) -> None:
    # ds:Object lies inside the enveloped Signature, so the signature itself stays valid.
    root = etree.fromstring(assertion_signed)
    signed = root.find("saml:Assertion", NS)
    obj = etree.SubElement(signed.find("ds:Signature", NS), f"{DS}Object")
    obj.append(evil_twin(signed))
    refused(etree.tostring(root), policy(idp), now_of(assertion_signed), "wrapping")


def test_evil_assertion_in_response_extensions_is_refused(
    idp: FakeSamlIdP, assertion_signed: bytes
) -> None:
    root = etree.fromstring(assertion_signed)
    extensions_of(root).append(evil_twin(root.find("saml:Assertion", NS)))
    refused(etree.tostring(root), policy(idp), now_of(assertion_signed), "wrapping")


@pytest.mark.parametrize("same_id", [False, True])
def test_signed_assertion_moved_to_extensions_with_evil_in_its_place_is_refused(
    idp: FakeSamlIdP, assertion_signed: bytes, same_id: bool
) -> None:
    root = etree.fromstring(assertion_signed)
    signed = root.find("saml:Assertion", NS)
    evil = evil_twin(signed, same_id=same_id)
    signed.addprevious(evil)
    extensions_of(root).append(signed)  # moves it
    refused(etree.tostring(root), policy(idp), now_of(assertion_signed), "wrapping")


def test_duplicate_ids_are_refused(idp: FakeSamlIdP, assertion_signed: bytes) -> None:
    root = etree.fromstring(assertion_signed)
    signed = root.find("saml:Assertion", NS)
    decoy = etree.SubElement(extensions_of(root), f"{SAML}Attribute", Name="decoy")
    decoy.set("ID", signed.get("ID"))
    refused(etree.tostring(root), policy(idp), now_of(assertion_signed), "wrapping")


def test_xml_id_shadowing_is_refused(idp: FakeSamlIdP, assertion_signed: bytes) -> None:
    root = etree.fromstring(assertion_signed)
    signed = root.find("saml:Assertion", NS)
    decoy = etree.SubElement(extensions_of(root), f"{SAML}Attribute", Name="decoy")
    decoy.set("{http://www.w3.org/XML/1998/namespace}id", signed.get("ID"))
    refused(etree.tostring(root), policy(idp), now_of(assertion_signed), "wrapping")


def test_signed_response_wrapped_in_an_evil_response_is_refused(
    idp: FakeSamlIdP, response_signed: bytes
) -> None:
    original = etree.fromstring(response_signed)
    evil = copy.deepcopy(original)
    evil.set("ID", "id-evil-response")
    evil.find("saml:Assertion", NS).find("saml:Subject/saml:NameID", NS).text = "mallory@evil.test"
    evil.find("saml:Assertion", NS).set("ID", "id-evil-assertion")
    # The evil root keeps the original Signature (Reference #original-ID) and carries
    # the original, untouched Response inside its Extensions.
    extensions_of(evil).append(original)
    refused(etree.tostring(evil), policy(idp), now_of(response_signed), "wrapping")


def test_signature_moved_from_assertion_to_response_is_refused(
    idp: FakeSamlIdP, assertion_signed: bytes
) -> None:
    root = etree.fromstring(assertion_signed)
    signature = root.find("saml:Assertion/ds:Signature", NS)
    root.find("saml:Issuer", NS).addnext(signature)  # now "signs" the Response by reference
    refused(etree.tostring(root), policy(idp), now_of(assertion_signed), "wrapping")


def test_signature_nested_below_the_assertion_is_refused(
    idp: FakeSamlIdP, assertion_signed: bytes
) -> None:
    root = etree.fromstring(assertion_signed)
    signature = root.find("saml:Assertion/ds:Signature", NS)
    root.find("saml:Assertion/saml:Subject", NS).append(signature)
    refused(etree.tostring(root), policy(idp), now_of(assertion_signed), "wrapping")


def test_two_signatures_on_one_assertion_are_refused(
    idp: FakeSamlIdP, assertion_signed: bytes
) -> None:
    root = etree.fromstring(assertion_signed)
    signature = root.find("saml:Assertion/ds:Signature", NS)
    signature.addnext(copy.deepcopy(signature))
    refused(etree.tostring(root), policy(idp), now_of(assertion_signed), "wrapping")


def test_reference_to_the_whole_document_is_refused(idp: FakeSamlIdP) -> None:
    xml = respond(idp, sign_response=True, sign_assertion=False)
    root = etree.fromstring(xml)
    root.find("ds:Signature/ds:SignedInfo/ds:Reference", NS).set("URI", "")
    refused(etree.tostring(root), policy(idp), now_of(xml), "wrapping")


# ---------------------------------------------------------------- KeyInfo is never trusted


@pytest.mark.parametrize("element", ["assertion", "response"])
def test_attacker_resigns_with_own_cert_in_keyinfo(
    idp: FakeSamlIdP, attacker: tuple[str, str], element: str
) -> None:
    key, cert = attacker
    xml = respond(idp, sign_response=element == "response", sign_assertion=element == "assertion")
    root = etree.fromstring(xml)
    assertion = root.find("saml:Assertion", NS)
    assertion.find("saml:Subject/saml:NameID", NS).text = "mallory@evil.test"
    sign_element(root, assertion if element == "assertion" else root, key, cert)
    tampered = etree.tostring(root)
    assert cert_body(cert).encode() in b"".join(tampered.split())  # attacker's cert in KeyInfo
    refused(tampered, policy(idp), now_of(xml), "signature")
    # The forgery is cryptographically sound: only trust in the configured cert stops it.
    forged = verify(tampered, policy(idp, idp_certificates=(cert,)), now_of(xml))
    assert forged.name_id == "mallory@evil.test"


def test_attacker_signs_but_keeps_the_idp_cert_in_keyinfo(
    idp: FakeSamlIdP, attacker: tuple[str, str]
) -> None:
    key, cert = attacker
    xml = respond(idp, sign_response=False, sign_assertion=True)
    root = etree.fromstring(xml)
    assertion = root.find("saml:Assertion", NS)
    assertion.find("saml:Subject/saml:NameID", NS).text = "mallory@evil.test"
    sign_element(root, assertion, key, cert)
    root = etree.fromstring(etree.tostring(root))
    x509 = root.find("saml:Assertion/ds:Signature/ds:KeyInfo/ds:X509Data/ds:X509Certificate", NS)
    assert "".join(x509.text.split()) == cert_body(cert)
    x509.text = cert_body(idp.certificate_pem)
    refused(etree.tostring(root), policy(idp), now_of(xml), "signature")


def test_attacker_key_value_in_keyinfo_is_ignored(
    idp: FakeSamlIdP, attacker: tuple[str, str]
) -> None:
    key, cert = attacker
    xml = respond(idp, sign_response=False, sign_assertion=True)
    root = etree.fromstring(xml)
    assertion = root.find("saml:Assertion", NS)
    assertion.find("saml:Subject/saml:NameID", NS).text = "mallory@evil.test"
    for old in assertion.findall("ds:Signature", NS):
        assertion.remove(old)
    # PingOne style: the raw RSA key value in KeyInfo, here the attacker's.
    signature = xmlsec.template.create(
        assertion, xmlsec.constants.TransformExclC14N, xmlsec.constants.TransformRsaSha256
    )
    assertion.find("saml:Issuer", NS).addnext(signature)
    ref = xmlsec.template.add_reference(
        signature, xmlsec.constants.TransformSha256, uri="#" + assertion.get("ID")
    )
    xmlsec.template.add_transform(ref, xmlsec.constants.TransformEnveloped)
    xmlsec.template.add_transform(ref, xmlsec.constants.TransformExclC14N)
    xmlsec.tree.add_ids(root, ["ID"])
    ctx = xmlsec.SignatureContext()
    ctx.key = xmlsec.Key.from_memory(key.encode(), xmlsec.KeyFormat.PEM)
    ctx.sign(signature)
    root = etree.fromstring(etree.tostring(root))
    numbers = serialization.load_pem_private_key(key.encode(), None).public_key().public_numbers()
    key_value = etree.SubElement(
        etree.SubElement(root.find("saml:Assertion/ds:Signature", NS), f"{DS}KeyInfo"),
        f"{DS}KeyValue",
    )
    rsa_value = etree.SubElement(key_value, f"{DS}RSAKeyValue")
    for name, number in (("Modulus", numbers.n), ("Exponent", numbers.e)):
        raw = number.to_bytes((number.bit_length() + 7) // 8, "big")
        etree.SubElement(rsa_value, f"{DS}{name}").text = base64.b64encode(raw).decode()
    tampered = etree.tostring(root)
    assert b"RSAKeyValue" in tampered and b"mallory@evil.test" in tampered
    refused(tampered, policy(idp), now_of(xml), "signature")
    forged = verify(tampered, policy(idp, idp_certificates=(cert,)), now_of(xml))
    assert forged.name_id == "mallory@evil.test"


# ---------------------------------------------------------------- comment truncation


def _idp_signs_with_comment(idp: FakeSamlIdP, path: str, before: str, after: str) -> bytes:
    """The real IdP key signs a value holding a comment (exclusive c14n drops it)."""
    root = etree.fromstring(respond(idp, sign_response=False, sign_assertion=False))
    node = root.find(path, NS)
    node.text = before
    for child in list(node):
        node.remove(child)
    comment = etree.Comment("")
    comment.tail = after
    node.append(comment)
    sign_element(root, root.find("saml:Assertion", NS), idp.key_pem, idp.certificate_pem)
    return etree.tostring(root)


def test_nameid_with_comment_reads_the_full_value(idp: FakeSamlIdP) -> None:
    xml = _idp_signs_with_comment(
        idp, "saml:Assertion/saml:Subject/saml:NameID", "user@evil.com", ".good.com"
    )
    assert b"user@evil.com<!---->.good.com" in xml
    assert verify(xml, policy(idp), now_of(xml)).name_id == "user@evil.com.good.com"


def test_attribute_value_with_comment_reads_the_full_value(idp: FakeSamlIdP) -> None:
    path = ".//saml:Attribute[@Name='email']/saml:AttributeValue"
    xml = _idp_signs_with_comment(idp, path, "user@evil.com", ".good.com")
    result = verify(xml, policy(idp), now_of(xml))
    assert result.attributes["email"] == ["user@evil.com.good.com"]


def test_comment_inserted_after_signing_does_not_truncate(idp: FakeSamlIdP) -> None:
    xml = respond(idp, sign_response=False, name_id="user@evil.com.good.com")
    tampered = xml.replace(b">user@evil.com.good.com<", b">user@evil.com<!---->.good.com<")
    assert tampered != xml
    # exclusive c14n without comments: the signature still holds, the value is whole.
    assert verify(tampered, policy(idp), now_of(xml)).name_id == "user@evil.com.good.com"


def test_with_comments_c14n_does_not_cover_comments_either(idp: FakeSamlIdP) -> None:
    # XMLDSig §4.3.3.3: a bare-name reference ("#ID") drops comments before any
    # transform, so even a *WithComments* canonicalization leaves them unsigned. Only
    # reading the full text keeps a comment from changing the value.
    root = etree.fromstring(respond(idp, sign_response=False, sign_assertion=False))
    root.find(".//saml:NameID", NS).text = "user@evil.com.good.com"
    sign_element(
        root,
        root.find("saml:Assertion", NS),
        idp.key_pem,
        idp.certificate_pem,
        c14n=xmlsec.constants.TransformExclC14NWithComments,
    )
    xml = etree.tostring(root)
    assert b"xml-exc-c14n#WithComments" in xml
    tampered = xml.replace(b">user@evil.com.good.com<", b">user@evil.com<!---->.good.com<")
    assert tampered != xml
    assert verify(tampered, policy(idp), now_of(xml)).name_id == "user@evil.com.good.com"


# ---------------------------------------------------------------- DTD and entities


def _without_declaration(xml: bytes) -> bytes:
    return xml.split(b"?>", 1)[1].lstrip() if xml.startswith(b"<?xml") else xml


BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
]>
"""


def test_billion_laughs_is_refused(idp: FakeSamlIdP, assertion_signed: bytes) -> None:
    body = _without_declaration(assertion_signed).replace(b">ann@acme.test<", b">&lol4;<", 1)
    refused(BILLION_LAUGHS + body, policy(idp), now_of(assertion_signed), "dtd")


def test_external_entity_is_refused(idp: FakeSamlIdP, assertion_signed: bytes) -> None:
    prolog = b'<?xml version="1.0"?>\n<!DOCTYPE r [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>\n'
    body = _without_declaration(assertion_signed).replace(b">ann@acme.test<", b">&xxe;<", 1)
    refused(prolog + body, policy(idp), now_of(assertion_signed), "dtd")


def test_external_dtd_is_refused(idp: FakeSamlIdP, assertion_signed: bytes) -> None:
    prolog = b'<!DOCTYPE Response SYSTEM "http://127.0.0.1:9/evil.dtd">\n'
    refused(
        prolog + _without_declaration(assertion_signed),
        policy(idp),
        now_of(assertion_signed),
        "dtd",
    )


def test_doctype_in_utf16_is_refused(idp: FakeSamlIdP, assertion_signed: bytes) -> None:
    text = (
        '<?xml version="1.0" encoding="UTF-16"?>\n<!DOCTYPE Response>\n'
        + _without_declaration(assertion_signed).decode()
    )
    refused(text.encode("utf-16"), policy(idp), now_of(assertion_signed), "dtd")


def test_undeclared_entity_reference_is_malformed(
    idp: FakeSamlIdP, assertion_signed: bytes
) -> None:
    body = assertion_signed.replace(b">ann@acme.test<", b">&xxe;<", 1)
    refused(body, policy(idp), now_of(assertion_signed), "malformed")


def test_nested_assertion_inside_an_encrypted_assertion_is_refused(idp: FakeSamlIdP) -> None:
    # The IdP-signed plaintext carries a second Assertion in its Advice: after
    # decryption the "exactly one Assertion" rule is applied again to the new nodes.
    sp_key, sp_cert = generate_key_and_cert("Broker SP encryption")
    root = etree.fromstring(respond(idp, sign_response=False, sign_assertion=False))
    assertion = root.find("saml:Assertion", NS)
    advice = etree.Element(f"{SAML}Advice")
    assertion.find("saml:Conditions", NS).addnext(advice)
    advice.append(evil_twin(assertion))
    sign_element(root, assertion, idp.key_pem, idp.certificate_pem)
    xml = encrypt_assertion(etree.tostring(root), sp_cert)
    assert b"mallory" not in xml
    refused(xml, policy(idp, decryption_keys=(sp_key,)), now_of(xml), "wrapping")
