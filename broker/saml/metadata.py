"""IdP metadata: parse what the vendors really publish into one neutral `IdpMetadata`.

Implements the reading side of SAML Metadata (saml-metadata-2.0-os) §2.3.2 (EntityDescriptor,
validUntil), §2.4.3 (IDPSSODescriptor: WantAuthnRequestsSigned, SingleSignOnService),
§2.4.1.1 (KeyDescriptor `use`) and §2.3.1 (EntitiesDescriptor).

Shapes met in the wild (see /work/shared/IDP-NOTES.md): Entra ships signed metadata with
WS-Federation RoleDescriptors beside the IDPSSODescriptor; AD FS carries an SPSSODescriptor
and an encryption KeyDescriptor too; Google sets validUntil; OneLogin lists a SOAP binding;
JumpCloud lists HTTP-POST only; Okta's older documents wrap certificates with spaces.

What it must never do: resolve DTDs or entities, touch the network, or take a signing key
from anywhere but a `KeyDescriptor` of the chosen IDPSSODescriptor (the metadata's own
`ds:Signature/KeyInfo` is not a trust anchor). The metadata signature is not verified here:
metadata reaches us from the admin or over an SSRF-safe HTTPS fetch (`broker.saml.fetch`).
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import NamedTuple
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from lxml import etree

from broker.errors import InvalidInput

MD_NS = "urn:oasis:names:tc:SAML:2.0:metadata"
DS_NS = "http://www.w3.org/2000/09/xmldsig#"
SAML2_PROTOCOL = "urn:oasis:names:tc:SAML:2.0:protocol"
BINDING_REDIRECT = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect"
BINDING_POST = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST"
SUPPORTED_BINDINGS = (BINDING_REDIRECT, BINDING_POST)

# Certificates closer than this to expiry produce a warning for the admin.
EXPIRY_WARNING_SECONDS = 30 * 24 * 3600
# SAML Metadata §2.3.2: entityID is anyURI of at most 1024 characters.
MAX_ENTITY_ID = 1024
MAX_METADATA_BYTES = 5 * 1024 * 1024
_LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})
_DOCTYPE = re.compile(rb"<!DOCTYPE", re.IGNORECASE)


class MetadataError(InvalidInput):
    """The IdP metadata (or manual IdP settings) cannot be used; `public` says why."""

    code = "invalid_metadata"


class CertificateInfo(NamedTuple):
    """What an admin needs to know about one certificate (unpacks as a 4-tuple)."""

    not_before: float
    not_after: float
    sha256: str  # upper-case hex pairs joined by ':' as IdP consoles show it
    subject: str  # RFC 4514


@dataclass(frozen=True)
class IdpMetadata:
    entity_id: str
    sso_urls: dict[str, str]  # binding URI -> Location, only HTTP-Redirect / HTTP-POST
    signing_certificates: tuple[str, ...]  # PEM, document order, de-duplicated
    want_authn_requests_signed: bool
    valid_until: float | None
    name_id_formats: tuple[str, ...]
    certificates: tuple[CertificateInfo, ...]  # parallel to signing_certificates
    warnings: tuple[str, ...] = ()

    @property
    def certificate_expiry(self) -> tuple[float, ...]:
        return tuple(info.not_after for info in self.certificates)

    @property
    def redirect_url(self) -> str | None:
        return self.sso_urls.get(BINDING_REDIRECT)

    @property
    def post_url(self) -> str | None:
        return self.sso_urls.get(BINDING_POST)


def _parser() -> etree.XMLParser:
    # A fresh parser per call: lxml parsers are not safe to share between threads.
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,
        remove_comments=True,
        remove_pis=True,
    )


def parse_xml(xml: bytes) -> etree._Element:
    """Parse untrusted XML with no DTD, no entities and no network; refuse any DOCTYPE."""
    if len(xml) > MAX_METADATA_BYTES:
        raise MetadataError("The metadata document is too large.")
    if _DOCTYPE.search(xml):
        raise MetadataError("The metadata contains a DOCTYPE, which is not allowed.")
    try:
        root = etree.fromstring(xml, parser=_parser())
    except etree.XMLSyntaxError as exc:
        raise MetadataError("The metadata is not well-formed XML.", str(exc)) from exc
    except ValueError as exc:
        raise MetadataError("The metadata is not XML.", str(exc)) from exc
    if root is None:
        raise MetadataError("The metadata is not XML.")
    # The byte scan misses DOCTYPEs in non-ASCII-compatible encodings (UTF-16): check again.
    if root.getroottree().docinfo.doctype:
        raise MetadataError("The metadata contains a DOCTYPE, which is not allowed.")
    return root


def parse_idp_metadata(
    xml: bytes, entity_id: str | None = None, *, now: float | None = None
) -> IdpMetadata:
    """Read one IdP out of an EntityDescriptor or EntitiesDescriptor document.

    With several IdP entities, `entity_id` chooses one; without it the document is refused.
    """
    root = parse_xml(xml)
    if root.tag not in (f"{{{MD_NS}}}EntityDescriptor", f"{{{MD_NS}}}EntitiesDescriptor"):
        raise MetadataError(
            "The document is not SAML 2.0 metadata (no EntityDescriptor).", f"root={root.tag}"
        )
    entity = _choose_entity(root, entity_id)
    descriptor = _idp_descriptor(entity)
    found_id = (entity.get("entityID") or "").strip()
    _check_entity_id(found_id)
    sso_urls: dict[str, str] = {}
    for service in descriptor.iterfind(f"{{{MD_NS}}}SingleSignOnService"):
        binding = (service.get("Binding") or "").strip()
        location = (service.get("Location") or "").strip()
        if binding in SUPPORTED_BINDINGS and location and binding not in sso_urls:
            sso_urls[binding] = location
    if not sso_urls:
        raise MetadataError(
            "The IdP metadata has no single sign-on URL for the HTTP-Redirect or HTTP-POST binding."
        )
    for url in sso_urls.values():
        check_sso_url(url)
    pems = _signing_certificates(descriptor)
    formats = tuple(
        dict.fromkeys(
            (el.text or "").strip()
            for el in descriptor.iterfind(f"{{{MD_NS}}}NameIDFormat")
            if (el.text or "").strip()
        )
    )
    valid_until = _valid_until(entity)
    return _build(
        entity_id=found_id,
        sso_urls=sso_urls,
        pems=pems,
        want_signed=_xs_bool(descriptor.get("WantAuthnRequestsSigned")),
        valid_until=valid_until,
        name_id_formats=formats,
        now=now,
    )


def manual_idp_metadata(
    entity_id: str,
    sso_url: str,
    certificates_pem: Sequence[str],
    *,
    bindings: Sequence[str] = SUPPORTED_BINDINGS,
    want_authn_requests_signed: bool = False,
    now: float | None = None,
) -> IdpMetadata:
    """IdP settings typed by the admin (entity ID, SSO URL, certificates), same checks."""
    entity_id = entity_id.strip()
    sso_url = sso_url.strip()
    _check_entity_id(entity_id)
    if not sso_url:
        raise MetadataError("The single sign-on URL is missing.")
    check_sso_url(sso_url)
    unknown = [b for b in bindings if b not in SUPPORTED_BINDINGS]
    if unknown or not bindings:
        raise MetadataError("Choose the HTTP-Redirect or HTTP-POST binding.", f"{unknown}")
    if not certificates_pem:
        raise MetadataError("The IdP signing certificate is missing.")
    pems = tuple(dict.fromkeys(normalize_certificate(c) for c in certificates_pem))
    return _build(
        entity_id=entity_id,
        sso_urls={b: sso_url for b in bindings},
        pems=pems,
        want_signed=want_authn_requests_signed,
        valid_until=None,
        name_id_formats=(),
        now=now,
    )


def check_sso_url(url: str) -> None:
    """HTTPS only; plain http is tolerated for a loopback host (tests, local demos)."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
    except ValueError as exc:
        raise MetadataError("The single sign-on URL is not a valid URL.", url) from exc
    if parts.scheme == "https" and host:
        return
    if parts.scheme == "http" and is_loopback_host(host):
        return
    raise MetadataError("The single sign-on URL must use HTTPS.", url)


def certificate_info(pem: str) -> CertificateInfo:
    cert = _load_certificate(pem)
    digest = cert.fingerprint(hashes.SHA256()).hex().upper()
    return CertificateInfo(
        not_before=cert.not_valid_before_utc.timestamp(),
        not_after=cert.not_valid_after_utc.timestamp(),
        sha256=":".join(digest[i : i + 2] for i in range(0, len(digest), 2)),
        subject=cert.subject.rfc4514_string(),
    )


def normalize_certificate(text: str) -> str:
    """PEM, or the bare base64 that IdP consoles and metadata show, to one canonical PEM."""
    body = text.strip()
    if "-----BEGIN CERTIFICATE-----" in body:
        cert = _load_certificate(body)
    else:
        cert = _certificate_from_base64(body)
    return cert.public_bytes(serialization.Encoding.PEM).decode("ascii")


def _load_certificate(pem: str) -> x509.Certificate:
    try:
        return x509.load_pem_x509_certificate(pem.strip().encode("ascii"))
    except (ValueError, UnicodeEncodeError) as exc:
        raise MetadataError("The certificate cannot be read.", str(exc)) from exc


def _certificate_from_base64(text: str) -> x509.Certificate:
    compact = "".join(text.split())  # Okta/JumpCloud wrap and indent the base64
    try:
        der = base64.b64decode(compact, validate=True)
        return x509.load_der_x509_certificate(der)
    except (binascii.Error, ValueError) as exc:
        raise MetadataError("The certificate cannot be read.", str(exc)) from exc


def _choose_entity(root: etree._Element, entity_id: str | None) -> etree._Element:
    if root.tag == f"{{{MD_NS}}}EntityDescriptor":
        entities = [root]
    else:
        entities = list(root.iter(f"{{{MD_NS}}}EntityDescriptor"))
    idps = [e for e in entities if e.find(f"{{{MD_NS}}}IDPSSODescriptor") is not None]
    if entity_id is not None:
        wanted = entity_id.strip()
        matches = [e for e in entities if (e.get("entityID") or "").strip() == wanted]
        if not matches:
            found = ", ".join((e.get("entityID") or "?") for e in idps) or "none"
            raise MetadataError(
                f"The metadata has no entity {wanted!r}; IdP entities found: {found}."
            )
        return matches[0]
    if not idps:
        raise MetadataError("The metadata describes no identity provider (no IDPSSODescriptor).")
    if len(idps) > 1:
        found = ", ".join((e.get("entityID") or "?") for e in idps)
        raise MetadataError(
            f"The metadata describes {len(idps)} identity providers; choose one by entity ID: "
            f"{found}."
        )
    return idps[0]


def _idp_descriptor(entity: etree._Element) -> etree._Element:
    descriptors = entity.findall(f"{{{MD_NS}}}IDPSSODescriptor")
    if not descriptors:
        raise MetadataError("The metadata describes no identity provider (no IDPSSODescriptor).")
    for descriptor in descriptors:
        if SAML2_PROTOCOL in (descriptor.get("protocolSupportEnumeration") or "").split():
            return descriptor
    raise MetadataError("The identity provider does not support SAML 2.0.")


def _signing_certificates(descriptor: etree._Element) -> tuple[str, ...]:
    pems: list[str] = []
    for key_descriptor in descriptor.iterfind(f"{{{MD_NS}}}KeyDescriptor"):
        # §2.4.1.1: a KeyDescriptor without `use` serves both signing and encryption.
        if key_descriptor.get("use", "signing") != "signing":
            continue
        for element in key_descriptor.iterfind(
            f"{{{DS_NS}}}KeyInfo/{{{DS_NS}}}X509Data/{{{DS_NS}}}X509Certificate"
        ):
            cert = _certificate_from_base64(element.text or "")
            pem = cert.public_bytes(serialization.Encoding.PEM).decode("ascii")
            if pem not in pems:
                pems.append(pem)
    if not pems:
        raise MetadataError("The IdP metadata has no signing certificate.")
    return tuple(pems)


def _valid_until(entity: etree._Element) -> float | None:
    # validUntil may sit on the entity or on any enclosing EntitiesDescriptor: the earliest wins.
    stamps: list[float] = []
    node: etree._Element | None = entity
    while node is not None:
        value = node.get("validUntil")
        if value:
            stamps.append(_parse_datetime(value))
        node = node.getparent()
    return min(stamps) if stamps else None


def _parse_datetime(value: str) -> float:
    text = value.strip().replace("Z", "+00:00")
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError as exc:
        raise MetadataError("The metadata validUntil is not a valid date.", value) from exc
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


def _xs_bool(value: str | None) -> bool:
    return (value or "").strip().lower() in ("true", "1")


def _check_entity_id(entity_id: str) -> None:
    if not entity_id:
        raise MetadataError("The IdP entity ID is missing.")
    if len(entity_id) > MAX_ENTITY_ID:
        raise MetadataError("The IdP entity ID is longer than 1024 characters.")
    if any(ord(ch) < 0x20 for ch in entity_id):
        raise MetadataError("The IdP entity ID contains control characters.")


def _build(
    *,
    entity_id: str,
    sso_urls: dict[str, str],
    pems: Iterable[str],
    want_signed: bool,
    valid_until: float | None,
    name_id_formats: tuple[str, ...],
    now: float | None,
) -> IdpMetadata:
    pem_tuple = tuple(pems)
    infos = tuple(certificate_info(p) for p in pem_tuple)
    current = datetime.now(UTC).timestamp() if now is None else now
    warnings = [_expiry_warning(info, current) for info in infos]
    if valid_until is not None and valid_until < current:
        warnings.append(
            "The metadata's validUntil date has passed; ask the IdP for fresh metadata."
        )
    return IdpMetadata(
        entity_id=entity_id,
        sso_urls=dict(sso_urls),
        signing_certificates=pem_tuple,
        want_authn_requests_signed=want_signed,
        valid_until=valid_until,
        name_id_formats=name_id_formats,
        certificates=infos,
        warnings=tuple(w for w in warnings if w),
    )


def _expiry_warning(info: CertificateInfo, now: float) -> str:
    day = datetime.fromtimestamp(info.not_after, UTC).strftime("%Y-%m-%d")
    if info.not_after <= now:
        return f"The signing certificate {info.subject} expired on {day}."
    if info.not_after - now < EXPIRY_WARNING_SECONDS:
        return f"The signing certificate {info.subject} expires on {day}, in under 30 days."
    return ""


def is_loopback_host(host: str) -> bool:
    """True for names and literals that always mean this machine."""
    if host.lower() in _LOOPBACK_HOSTS:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
