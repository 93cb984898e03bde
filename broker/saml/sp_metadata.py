"""Our SP metadata: the document an admin uploads to (or points) their IdP at.

SAML Metadata §2.4.4 (SPSSODescriptor: AuthnRequestsSigned, WantAssertionsSigned,
AssertionConsumerService) and §2.4.1.1 (KeyDescriptor). During a key rollover every current
certificate is listed, old and new, so that the IdP accepts either (§2.4.1.1 allows several
KeyDescriptors with the same `use`).

Built with lxml rather than pysaml2's `entity_descriptor`: the latter wants key files on disk
and a full SPConfig for what is a fixed, small document; pysaml2 reads ours back in the tests.

It must never include a private key, and an encryption certificate is listed only when the
caller passes one: AD FS encrypts whenever the SP metadata carries one (IDP-NOTES.md).
"""

from __future__ import annotations

from collections.abc import Sequence

from lxml import etree

from broker.saml.metadata import DS_NS, MD_NS, normalize_certificate

BINDING_POST = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST"
PROTOCOL = "urn:oasis:names:tc:SAML:2.0:protocol"
NAMEID_EMAIL = "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress"
NAMEID_PERSISTENT = "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent"
NAMEID_UNSPECIFIED = "urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified"
DEFAULT_NAME_ID_FORMATS = (NAMEID_EMAIL, NAMEID_PERSISTENT, NAMEID_UNSPECIFIED)


def sp_metadata_xml(
    *,
    entity_id: str,
    acs_url: str,
    signing_certs_pem: Sequence[str],
    encryption_certs_pem: Sequence[str],
    authn_requests_signed: bool,
    want_assertions_signed: bool = True,
    name_id_formats: Sequence[str] = DEFAULT_NAME_ID_FORMATS,
    valid_until: str | None = None,
) -> bytes:
    """Return the SP's EntityDescriptor as UTF-8 bytes with an XML declaration."""
    if not entity_id or not acs_url:
        raise ValueError("entity_id and acs_url are required")
    nsmap = {"md": MD_NS, "ds": DS_NS}
    root = etree.Element(f"{{{MD_NS}}}EntityDescriptor", nsmap=nsmap)
    root.set("entityID", entity_id)
    if valid_until:
        root.set("validUntil", valid_until)
    sp = etree.SubElement(root, f"{{{MD_NS}}}SPSSODescriptor")
    sp.set("AuthnRequestsSigned", _xs_bool(authn_requests_signed))
    sp.set("WantAssertionsSigned", _xs_bool(want_assertions_signed))
    sp.set("protocolSupportEnumeration", PROTOCOL)
    # Schema order inside SSODescriptor: KeyDescriptor*, ..., NameIDFormat*, then ACS.
    for pem in _unique(signing_certs_pem):
        _key_descriptor(sp, "signing", pem)
    for pem in _unique(encryption_certs_pem):
        # No EncryptionMethod: the IdP's defaults apply; broker.saml.decrypt decides what
        # it accepts, and advertising algorithms here could promise more than it does.
        _key_descriptor(sp, "encryption", pem)
    for name_id_format in name_id_formats:
        etree.SubElement(sp, f"{{{MD_NS}}}NameIDFormat").text = name_id_format
    acs = etree.SubElement(sp, f"{{{MD_NS}}}AssertionConsumerService")
    acs.set("Binding", BINDING_POST)
    acs.set("Location", acs_url)
    acs.set("index", "0")
    acs.set("isDefault", "true")
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)


def _key_descriptor(parent: etree._Element, use: str, pem: str) -> etree._Element:
    descriptor = etree.SubElement(parent, f"{{{MD_NS}}}KeyDescriptor")
    descriptor.set("use", use)
    key_info = etree.SubElement(descriptor, f"{{{DS_NS}}}KeyInfo")
    data = etree.SubElement(key_info, f"{{{DS_NS}}}X509Data")
    etree.SubElement(data, f"{{{DS_NS}}}X509Certificate").text = _base64_body(pem)
    return descriptor


def _unique(pems: Sequence[str]) -> list[str]:
    return list(dict.fromkeys(normalize_certificate(p) for p in pems))


def _base64_body(pem: str) -> str:
    lines = [line.strip() for line in pem.strip().splitlines()]
    return "".join(line for line in lines if line and not line.startswith("-----"))


def _xs_bool(value: bool) -> str:
    return "true" if value else "false"
