"""FakeSamlIdP's own output stays valid: every signed shape verifies for any attributes.

Regression: the fake once re-serialised the Response through pysaml2's object model
before signing it, after the Assertion had been signed; an empty AttributeValue then
gained `xsi:nil="true"`, the Assertion's digest no longer matched, and the broker (rightly)
refused every "both signed" Response carrying an empty value. The check here is the
broker's own verifier, so a fake that produces broken signatures fails loudly.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest
from lxml import etree

from broker.saml.verify import VerifyPolicy, verify_response
from tests.fakes.saml_idp import NS, FakeSamlIdP, generate_key_and_cert

IDP = "https://idp.acme.test/saml/metadata"
SP = "https://broker.exec.test/saml/conn_01"
ACS = "https://broker.exec.test/saml/conn_01/acs"
REQ = "id-authnrequest-0001"
XSI_NIL = "{http://www.w3.org/2001/XMLSchema-instance}nil"

# Empty values as real IdPs send them for a blank directory field (Okta: an unset
# `department` profile attribute), next to ordinary ones.
ATTRIBUTES = {
    "email": ["ann@acme.test"],
    "department": [""],
    "groups": ["Engineering", ""],
}


@pytest.fixture(scope="module")
def idp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FakeSamlIdP]:
    yield FakeSamlIdP(IDP, tmp_path_factory.mktemp("idp"))


def _policy(idp: FakeSamlIdP) -> VerifyPolicy:
    return VerifyPolicy(
        idp_entity_id=IDP,
        idp_certificates=(idp.certificate_pem,),
        sp_entity_id=SP,
        acs_url=ACS,
        expected_in_response_to=REQ,
    )


def _issued_at(xml: bytes) -> float:
    instant = etree.fromstring(xml).get("IssueInstant")
    return dt.datetime.strptime(instant, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC).timestamp()


@pytest.mark.parametrize(
    ("sign_response", "sign_assertion", "signed"),
    [
        (True, True, {"response", "assertion"}),  # Okta, Duo: the shape that broke
        (False, True, {"assertion"}),
        (True, False, {"response"}),
    ],
)
def test_empty_attribute_value_keeps_every_signature_valid(
    idp: FakeSamlIdP, sign_response: bool, sign_assertion: bool, signed: set[str]
) -> None:
    xml = idp.make_response(
        sp_entity_id=SP,
        acs_url=ACS,
        in_response_to=REQ,
        attributes=ATTRIBUTES,
        sign_response=sign_response,
        sign_assertion=sign_assertion,
    )
    root = etree.fromstring(xml)
    # The Assertion reaches the wire as pysaml2 built and signed it: no xsi:nil added later.
    values = root.findall(".//saml:AttributeValue", NS)
    assert values and not [v for v in values if v.get(XSI_NIL) is not None]
    assert len(root.findall("ds:Signature", NS)) == int(sign_response)
    assert len(root.findall("saml:Assertion/ds:Signature", NS)) == int(sign_assertion)

    result = verify_response(xml, _policy(idp), _issued_at(xml))

    assert result.signed == frozenset(signed)
    assert result.attributes == ATTRIBUTES


def test_both_signed_encrypted_with_empty_value(idp: FakeSamlIdP) -> None:
    """The encrypt-then-sign path (Okta with assertion encryption) holds as well."""
    sp_key, sp_cert = generate_key_and_cert("Broker SP encryption")
    xml = idp.make_response(
        sp_entity_id=SP,
        acs_url=ACS,
        in_response_to=REQ,
        attributes=ATTRIBUTES,
        encrypt_with_cert=sp_cert,
    )
    policy = VerifyPolicy(
        idp_entity_id=IDP,
        idp_certificates=(idp.certificate_pem,),
        sp_entity_id=SP,
        acs_url=ACS,
        expected_in_response_to=REQ,
        decryption_keys=(sp_key,),
    )

    result = verify_response(xml, policy, _issued_at(xml))

    assert result.signed == frozenset({"response", "assertion"})
    assert result.encrypted is True
    assert result.attributes == ATTRIBUTES
