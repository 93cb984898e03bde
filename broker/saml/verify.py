"""Verification of a SAML 2.0 Response posted to the ACS: signature, wrapping and every check.

Implements SAML Core §3.2.2 (Response, Status), §2.3.3 to §2.5 (Assertion, Subject,
Conditions, AudienceRestriction), §5 (XML Signature profile: enveloped signature
over the element identified by its ID attribute, exclusive c14n), §6 (encryption,
via decrypt.py) and Profiles §4.1.4 (Web Browser SSO: bearer SubjectConfirmation,
Recipient, NotOnOrAfter, InResponseTo, Audience).

The bytes are parsed once; signatures are checked with python-xmlsec on that tree
against the connection's configured IdP certificates only; every value returned
is read from the element a checked signature covers. Parser differentials, KeyInfo
trust, ID confusion and comment truncation are the known SAML bypass families
(CVE-2024-45409, CVE-2025-25291/25292, CVE-2017-11427...): each has a test.

It must never: trust a key from the message, read from an element outside the
verified one, accept a DTD, or let a failure pass silently.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import xmlsec
from lxml import etree

from broker.errors import BrokerError
from broker.saml import decrypt
from broker.saml.xmlsafe import XML_ID_ATTR, UnsafeXmlError, parse_untrusted, text_of

NS_SAMLP = "urn:oasis:names:tc:SAML:2.0:protocol"
NS_SAML = "urn:oasis:names:tc:SAML:2.0:assertion"
NS_DS = "http://www.w3.org/2000/09/xmldsig#"
STATUS_SUCCESS = "urn:oasis:names:tc:SAML:2.0:status:Success"
CM_BEARER = "urn:oasis:names:tc:SAML:2.0:cm:bearer"

P, A, D = f"{{{NS_SAMLP}}}", f"{{{NS_SAML}}}", f"{{{NS_DS}}}"

_SIG_ALGS = {
    "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256": xmlsec.constants.TransformRsaSha256,
    "http://www.w3.org/2001/04/xmldsig-more#rsa-sha384": xmlsec.constants.TransformRsaSha384,
    "http://www.w3.org/2001/04/xmldsig-more#rsa-sha512": xmlsec.constants.TransformRsaSha512,
    "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256": xmlsec.constants.TransformEcdsaSha256,
    "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha384": xmlsec.constants.TransformEcdsaSha384,
    "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha512": xmlsec.constants.TransformEcdsaSha512,
}
_SIG_ALGS_SHA1 = {
    "http://www.w3.org/2000/09/xmldsig#rsa-sha1": xmlsec.constants.TransformRsaSha1,
    "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha1": xmlsec.constants.TransformEcdsaSha1,
}
_DIGEST_ALGS = {
    "http://www.w3.org/2001/04/xmlenc#sha256": xmlsec.constants.TransformSha256,
    "http://www.w3.org/2001/04/xmldsig-more#sha384": xmlsec.constants.TransformSha384,
    "http://www.w3.org/2001/04/xmlenc#sha512": xmlsec.constants.TransformSha512,
}
_DIGEST_ALGS_SHA1 = {"http://www.w3.org/2000/09/xmldsig#sha1": xmlsec.constants.TransformSha1}
_C14N_ALGS = {
    "http://www.w3.org/2001/10/xml-exc-c14n#": xmlsec.constants.TransformExclC14N,
    "http://www.w3.org/2001/10/xml-exc-c14n#WithComments": (
        xmlsec.constants.TransformExclC14NWithComments
    ),
    "http://www.w3.org/TR/2001/REC-xml-c14n-20010315": xmlsec.constants.TransformInclC14N,
    "http://www.w3.org/TR/2001/REC-xml-c14n-20010315#WithComments": (
        xmlsec.constants.TransformInclC14NWithComments
    ),
}
_ENVELOPED = "http://www.w3.org/2000/09/xmldsig#enveloped-signature"
_TRANSFORMS = {_ENVELOPED: xmlsec.constants.TransformEnveloped, **_C14N_ALGS}


@dataclass(frozen=True)
class VerifyPolicy:
    """What one connection expects of a Response; built from the connection and the flow row."""

    idp_entity_id: str
    idp_certificates: tuple[str, ...]  # PEM certificates trusted for this connection (rollover)
    sp_entity_id: str  # expected Audience
    acs_url: str  # expected Destination and SubjectConfirmationData Recipient
    expected_in_response_to: str | None  # the AuthnRequest ID we issued, None for unsolicited
    allow_unsolicited: bool = True
    clock_skew_seconds: int = 120
    allow_sha1: bool = False
    decryption_keys: tuple[str, ...] = ()  # SP private keys, PEM (current and previous)


@dataclass(frozen=True)
class VerifiedResponse:
    """What a verified Response proved; every field comes from signed content."""

    response_id: str
    assertion_id: str
    issuer: str
    in_response_to: str | None
    name_id: str
    name_id_format: str | None
    session_index: str | None
    authn_instant: str | None
    authn_context_class_ref: str | None
    attributes: dict[str, list[str]]  # attribute Name -> values, from the verified assertion
    # Last instant (epoch seconds, skew included) at which this assertion could still be
    # accepted: the replay cache must remember assertion_id at least until then.
    assertion_not_on_or_after: float
    signed: frozenset[str]  # {"response"}, {"assertion"} or both
    encrypted: bool


_PUBLIC = {
    "status": "The identity provider reported that the sign-in failed.",
    "in_response_to": "This sign-in response does not belong to the sign-in you started.",
    "unsolicited": "Sign-in started at the identity provider is not allowed for this connection.",
    "expired": "The sign-in response has expired. Please sign in again.",
    "subject_expired": "The sign-in response has expired. Please sign in again.",
    "not_yet_valid": "The sign-in response is not valid yet; check the server clocks.",
}
_PUBLIC_DEFAULT = "The sign-in response from the identity provider could not be verified."


class SamlValidationError(BrokerError):
    """A Response was refused; `check` is a stable code, `expected`/`got` the private detail."""

    code = "saml_invalid"

    def __init__(self, check: str, expected: str | None = None, got: str | None = None) -> None:
        self.check = check
        self.expected = expected
        self.got = got
        super().__init__(
            _PUBLIC.get(check, _PUBLIC_DEFAULT),
            f"SAML check {check!r} failed: expected {expected!r}, got {got!r}",
        )


# ---------------------------------------------------------------- signatures


@functools.lru_cache(maxsize=64)
def _cert_key(cert_pem: str) -> xmlsec.Key:
    # Parsing a certificate costs more than the RSA verification itself; cache per PEM.
    return xmlsec.Key.from_memory(cert_pem.encode(), xmlsec.constants.KeyDataFormatCertPem)


def _only(parent: etree._Element, tag: str, check: str = "malformed") -> etree._Element:
    found = parent.findall(tag)
    if len(found) != 1:
        raise SamlValidationError(check, f"one {tag}", f"{len(found)}")
    return found[0]


# xmlsec's transform type is private in its stubs (constants.__Transform): hence Any.
def _check_signed_info(signature: etree._Element, owner_id: str, allow_sha1: bool) -> list[Any]:
    """Check the SignedInfo shape and algorithms; return the xmlsec transforms to enable."""
    signed_info = _only(signature, f"{D}SignedInfo")
    sig_algs = {**_SIG_ALGS, **_SIG_ALGS_SHA1} if allow_sha1 else _SIG_ALGS
    digest_algs = {**_DIGEST_ALGS, **_DIGEST_ALGS_SHA1} if allow_sha1 else _DIGEST_ALGS
    c14n = _only(signed_info, f"{D}CanonicalizationMethod").get("Algorithm")
    sig_alg = _only(signed_info, f"{D}SignatureMethod").get("Algorithm")
    if c14n not in _C14N_ALGS:
        raise SamlValidationError("algorithm", "allowed canonicalization", c14n)
    if sig_alg not in sig_algs:
        raise SamlValidationError("algorithm", "allowed signature algorithm", sig_alg)
    reference = _only(signed_info, f"{D}Reference", check="wrapping")
    # The reference must point at the very element that carries this Signature.
    if reference.get("URI") != "#" + owner_id:
        raise SamlValidationError("wrapping", "#" + owner_id, reference.get("URI"))
    enabled = [_C14N_ALGS[c14n], sig_algs[sig_alg]]
    transforms = reference.find(f"{D}Transforms")
    for transform in [] if transforms is None else list(transforms):
        if not isinstance(transform.tag, str):
            continue
        alg = transform.get("Algorithm")
        if transform.tag != f"{D}Transform" or alg not in _TRANSFORMS:
            raise SamlValidationError("algorithm", "allowed transform", alg)
        enabled.append(_TRANSFORMS[alg])
    digest_alg = _only(reference, f"{D}DigestMethod").get("Algorithm")
    if digest_alg not in digest_algs:
        raise SamlValidationError("algorithm", "allowed digest algorithm", digest_alg)
    enabled.append(digest_algs[digest_alg])
    return enabled


def _verify_signature_of(element: etree._Element, policy: VerifyPolicy) -> bool:
    """Verify the enveloped Signature that is a direct child of `element`, if any.

    Returns False when `element` carries no Signature, True when it carries one that
    a trusted certificate verifies, and raises otherwise.
    """
    signatures = element.findall(f"{D}Signature")
    if not signatures:
        return False
    if len(signatures) > 1:
        raise SamlValidationError("wrapping", "one Signature", str(len(signatures)))
    owner_id = element.get("ID")
    if not owner_id:
        raise SamlValidationError("wrapping", "signed element with an ID", None)
    enabled = _check_signed_info(signatures[0], owner_id, policy.allow_sha1)
    if not policy.idp_certificates:
        raise SamlValidationError("signature", "a configured IdP certificate", None)
    for cert_pem in policy.idp_certificates:
        ctx = xmlsec.SignatureContext()
        # The key comes from configuration only: with ctx.key set, xmlsec never reads
        # a key from KeyInfo.
        ctx.key = _cert_key(cert_pem)
        for transform in enabled:
            ctx.enable_signature_transform(transform)
            ctx.enable_reference_transform(transform)
        try:
            ctx.verify(signatures[0])
        except xmlsec.Error:
            continue
        return True
    raise SamlValidationError("signature", "signature by a configured IdP certificate", "invalid")


# ---------------------------------------------------------------- structure


def _check_ids(root: etree._Element) -> None:
    """IDs unique in the document, no xml:id; then register "ID" for xmlsec's #id lookup."""
    seen: set[str] = set()
    for node in root.iter():
        if not isinstance(node.tag, str):
            continue
        if node.get(XML_ID_ATTR) is not None:
            # libxml2 registers xml:id on its own; one could shadow a SAML ID.
            raise SamlValidationError("wrapping", "no xml:id", node.get(XML_ID_ATTR))
        value = node.get("ID")
        if value is None:
            continue
        if value in seen:
            raise SamlValidationError("wrapping", "unique IDs", value)
        seen.add(value)
    xmlsec.tree.add_ids(root, ["ID"])


def _check_signature_placement(root: etree._Element) -> None:
    """Every ds:Signature must be a direct child of the Response or of the Assertion."""
    for signature in root.iter(f"{D}Signature"):
        parent = signature.getparent()
        if parent is None or parent.tag not in (f"{P}Response", f"{A}Assertion"):
            tag = None if parent is None else str(parent.tag)
            raise SamlValidationError("wrapping", "Signature on Response or Assertion", tag)


def _the_assertion(root: etree._Element) -> etree._Element:
    """Exactly one (Encrypted)Assertion in the whole document, a direct child of the root.

    Counting every Assertion anywhere (Extensions, ds:Object, Advice, a nested
    Response) leaves no second candidate for any later code to pick up.
    """
    found = list(root.iter(f"{A}Assertion", f"{A}EncryptedAssertion"))
    if len(found) != 1:
        raise SamlValidationError("wrapping", "exactly one assertion", str(len(found)))
    if found[0].getparent() is not root:
        raise SamlValidationError("wrapping", "assertion as a child of the Response", "nested")
    return found[0]


def _decrypted(
    root: etree._Element, encrypted: etree._Element, policy: VerifyPolicy
) -> etree._Element:
    try:
        decrypt.decrypt_assertion(encrypted, policy.decryption_keys)
    except decrypt.DecryptionError as exc:
        raise SamlValidationError(exc.check, str(exc), exc.got) from exc
    # The plaintext is new content: every structural rule again, on the whole tree.
    _check_ids(root)
    _check_signature_placement(root)
    return _the_assertion(root)


def _parse(xml: bytes) -> etree._Element:
    try:
        root = parse_untrusted(xml)
    except UnsafeXmlError as exc:
        raise SamlValidationError(exc.reason, "well-formed XML without DTD", str(exc)) from exc
    if root.tag != f"{P}Response":
        raise SamlValidationError("malformed", "samlp:Response", str(root.tag))
    if root.get("Version") != "2.0":
        raise SamlValidationError("malformed", "Version 2.0", root.get("Version"))
    return root


def _check_status(root: etree._Element) -> None:
    status = root.find(f"{P}Status")
    code = None if status is None else status.find(f"{P}StatusCode")
    top = None if code is None else code.get("Value")
    if top == STATUS_SUCCESS:
        return
    codes = [top or "missing"]
    sub = None if code is None else code.find(f"{P}StatusCode")
    if sub is not None:
        codes.append(sub.get("Value") or "")
    message = None if status is None else status.find(f"{P}StatusMessage")
    got = " / ".join(codes)
    if message is not None and text_of(message):
        got += f" ({text_of(message)[:200]})"
    raise SamlValidationError("status", STATUS_SUCCESS, got)


# ---------------------------------------------------------------- conditions and subject

_INSTANT = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?(Z|[+-]\d\d:\d\d)?$")


def _instant(value: str | None, what: str) -> float:
    """An xs:dateTime (SAML Core §1.3.3: UTC, 'Z' expected) as epoch seconds."""
    match = _INSTANT.match((value or "").strip())
    if match is None:
        raise SamlValidationError("malformed", f"xs:dateTime in {what}", value)
    base, fraction, zone = match.groups()
    stamp = datetime.fromisoformat(base).replace(tzinfo=UTC)  # no zone: UTC per §1.3.3
    if zone and zone != "Z":
        stamp = datetime.fromisoformat(base + zone)
    return stamp.timestamp() + (float(fraction) if fraction else 0.0)


def _optional_instant(node: etree._Element, attr: str, what: str) -> float | None:
    value = node.get(attr)
    return None if value is None else _instant(value, what)


def _check_issuer(node: etree._Element, policy: VerifyPolicy, required: bool) -> str | None:
    issuer = node.find(f"{A}Issuer")
    if issuer is None:
        if required:
            raise SamlValidationError("issuer", policy.idp_entity_id, None)
        return None
    value = text_of(issuer).strip()
    if value != policy.idp_entity_id:
        raise SamlValidationError("issuer", policy.idp_entity_id, value)
    return value


def _check_response_fields(root: etree._Element, policy: VerifyPolicy) -> str | None:
    """Response-level checks (Core §3.2.2, Profiles §4.1.4.3); returns InResponseTo."""
    _check_issuer(root, policy, required=False)
    destination = root.get("Destination")
    if destination is not None and destination != policy.acs_url:
        raise SamlValidationError("destination", policy.acs_url, destination)
    in_response_to = root.get("InResponseTo")
    _check_in_response_to(in_response_to, policy)
    return in_response_to


def _check_in_response_to(value: str | None, policy: VerifyPolicy) -> None:
    expected = policy.expected_in_response_to
    if expected is None:
        if not policy.allow_unsolicited:
            raise SamlValidationError("unsolicited", "a response to our AuthnRequest", value)
        if value is not None:
            # An answer to a request we are not waiting for (or a stale one): never
            # let it pass as IdP-initiated.
            raise SamlValidationError("in_response_to", None, value)
    elif value != expected:
        raise SamlValidationError("in_response_to", expected, value)


def _check_conditions(assertion: etree._Element, policy: VerifyPolicy, now: float) -> float | None:
    """Conditions time window and audience (Core §2.5); returns NotOnOrAfter if any."""
    conditions = _only(assertion, f"{A}Conditions", check="audience")
    skew = policy.clock_skew_seconds
    not_before = _optional_instant(conditions, "NotBefore", "Conditions")
    if not_before is not None and now + skew < not_before:
        raise SamlValidationError("not_yet_valid", conditions.get("NotBefore"), _iso(now))
    not_on_or_after = _optional_instant(conditions, "NotOnOrAfter", "Conditions")
    if not_on_or_after is not None and now - skew >= not_on_or_after:
        raise SamlValidationError("expired", conditions.get("NotOnOrAfter"), _iso(now))
    restrictions = conditions.findall(f"{A}AudienceRestriction")
    if not restrictions:
        raise SamlValidationError("audience", policy.sp_entity_id, None)
    for restriction in restrictions:  # each restriction must be met (Core §2.5.1.4)
        audiences = [text_of(a).strip() for a in restriction.findall(f"{A}Audience")]
        if policy.sp_entity_id not in audiences:
            raise SamlValidationError("audience", policy.sp_entity_id, ", ".join(audiences))
    return not_on_or_after


def _check_bearer(data: etree._Element | None, policy: VerifyPolicy, now: float) -> float:
    """One bearer SubjectConfirmationData (Profiles §4.1.4.2); returns its NotOnOrAfter."""
    if data is None:
        raise SamlValidationError("recipient", policy.acs_url, None)
    recipient = data.get("Recipient")
    if recipient != policy.acs_url:
        raise SamlValidationError("recipient", policy.acs_url, recipient)
    skew = policy.clock_skew_seconds
    not_on_or_after = _optional_instant(data, "NotOnOrAfter", "SubjectConfirmationData")
    if not_on_or_after is None:
        raise SamlValidationError("subject_expired", "NotOnOrAfter", None)
    if now - skew >= not_on_or_after:
        raise SamlValidationError("subject_expired", data.get("NotOnOrAfter"), _iso(now))
    not_before = _optional_instant(data, "NotBefore", "SubjectConfirmationData")
    if not_before is not None and now + skew < not_before:
        raise SamlValidationError("not_yet_valid", data.get("NotBefore"), _iso(now))
    _check_in_response_to(data.get("InResponseTo"), policy)
    return not_on_or_after


def _check_subject(
    subject: etree._Element, policy: VerifyPolicy, now: float
) -> tuple[etree._Element, float]:
    """The NameID and the NotOnOrAfter of the first bearer confirmation that passes."""
    name_id = subject.find(f"{A}NameID")
    if name_id is None:
        # EncryptedID / BaseID are not supported: refuse instead of logging in nobody.
        raise SamlValidationError("malformed", "Subject/NameID", None)
    first_error: SamlValidationError | None = None
    for confirmation in subject.findall(f"{A}SubjectConfirmation"):
        if confirmation.get("Method") != CM_BEARER:
            continue
        try:
            return name_id, _check_bearer(
                confirmation.find(f"{A}SubjectConfirmationData"), policy, now
            )
        except SamlValidationError as exc:
            first_error = first_error or exc
    raise first_error or SamlValidationError("recipient", "a bearer SubjectConfirmation", None)


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# ---------------------------------------------------------------- reading


def _attributes(assertion: etree._Element) -> dict[str, list[str]]:
    attributes: dict[str, list[str]] = {}
    # EncryptedAttribute is not supported and is skipped (no vendor in IDP-NOTES sends it).
    for statement in assertion.findall(f"{A}AttributeStatement"):
        for attribute in statement.findall(f"{A}Attribute"):
            name = attribute.get("Name")
            if not name:
                raise SamlValidationError("malformed", "Attribute Name", None)
            values = attributes.setdefault(name, [])
            values.extend(text_of(v) for v in attribute.findall(f"{A}AttributeValue"))
    return attributes


def _read(
    root: etree._Element, assertion: etree._Element, policy: VerifyPolicy, now: float
) -> dict[str, Any]:
    issuer = _check_issuer(assertion, policy, required=True)
    assertion_id = assertion.get("ID")
    if not assertion_id:
        raise SamlValidationError("malformed", "Assertion ID", None)
    conditions_end = _check_conditions(assertion, policy, now)
    name_id, subject_end = _check_subject(_only(assertion, f"{A}Subject"), policy, now)
    name_id_value = text_of(name_id).strip()
    if not name_id_value:
        raise SamlValidationError("malformed", "a NameID value", "")
    ends = [subject_end] + ([conditions_end] if conditions_end is not None else [])
    authn = assertion.find(f"{A}AuthnStatement")
    fields: dict[str, Any] = {
        "response_id": root.get("ID") or "",
        "assertion_id": assertion_id,
        "issuer": issuer,
        "in_response_to": _check_response_fields(root, policy),
        "name_id": name_id_value,
        "name_id_format": name_id.get("Format"),
        "session_index": None,
        "authn_instant": None,
        "authn_context_class_ref": None,
        "attributes": _attributes(assertion),
        "assertion_not_on_or_after": min(ends) + policy.clock_skew_seconds,
    }
    if authn is not None:
        session_end = _optional_instant(authn, "SessionNotOnOrAfter", "AuthnStatement")
        if session_end is not None and now - policy.clock_skew_seconds >= session_end:
            raise SamlValidationError("expired", authn.get("SessionNotOnOrAfter"), _iso(now))
        ref = authn.find(f"{A}AuthnContext/{A}AuthnContextClassRef")
        fields["session_index"] = authn.get("SessionIndex")
        fields["authn_instant"] = authn.get("AuthnInstant")
        fields["authn_context_class_ref"] = None if ref is None else text_of(ref).strip()
    return fields


def verify_response(xml: bytes, policy: VerifyPolicy, now: float) -> VerifiedResponse:
    """Verify a decoded SAMLResponse and return what it proves, or raise SamlValidationError.

    `now` is epoch seconds from the injectable clock. The order matters: structure and
    IDs first, then the Response signature (over the encrypted form, if encrypted),
    then decryption, then the Assertion signature, then the checks on what is read.
    """
    root = _parse(xml)
    _check_ids(root)
    _check_signature_placement(root)
    _check_status(root)  # error responses carry no assertion: report the IdP's status
    assertion = _the_assertion(root)
    response_signed = _verify_signature_of(root, policy)  # over the encrypted form, if any
    encrypted = assertion.tag == f"{A}EncryptedAssertion"
    if encrypted:
        assertion = _decrypted(root, assertion, policy)
    assertion_signed = _verify_signature_of(assertion, policy)
    if not (response_signed or assertion_signed):
        raise SamlValidationError("signature", "signed Response or Assertion", "unsigned")
    # Everything below is read from `assertion`, which a checked signature covers
    # (its own, or the Response's that contains it). Response-level attributes
    # (Issuer, Destination, InResponseTo) are only compared against expectations.
    signed = {"response"} if response_signed else set()
    if assertion_signed:
        signed.add("assertion")
    return VerifiedResponse(
        **_read(root, assertion, policy, now), signed=frozenset(signed), encrypted=encrypted
    )
