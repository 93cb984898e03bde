"""AuthnRequests toward the IdP, over HTTP-Redirect or HTTP-POST, signed when asked.

SAML Core §3.4.1 (AuthnRequest: ForceAuthn, NameIDPolicy, RequestedAuthnContext), Bindings
§3.4.4.1 (HTTP-Redirect: DEFLATE, base64, then a signature over the exact query string
`SAMLRequest=…&RelayState=…&SigAlg=…`), Bindings §3.5 (HTTP-POST: base64 in a form, the
signature enveloped in the XML, XML-DSig with exclusive c14n) and Bindings §3.4.3 (RelayState
at most 80 bytes). The message is built with pysaml2's `samlp` classes; signatures are made in
process (`cryptography` for the query string, python-xmlsec for XML), never by `xmlsec1`.

It keeps no state: the request ID is chosen by the caller, who stores it on the flow row to
check InResponseTo later (DESIGN.md §9, "pysaml2 state"). RequestedAuthnContext is left out
unless asked for, because AD FS fails with MSIS7102 when it cannot satisfy one.
"""

from __future__ import annotations

import base64
import re
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal
from urllib.parse import quote_plus

import xmlsec
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from lxml import etree
from saml2 import saml, samlp

from broker.errors import InvalidInput

BINDING_POST = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST"
SIG_ALGS = {
    "rsa-sha256": "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256",
    "rsa-sha1": "http://www.w3.org/2000/09/xmldsig#rsa-sha1",
}
_HASHES: dict[str, type[hashes.HashAlgorithm]] = {
    "rsa-sha256": hashes.SHA256,
    "rsa-sha1": hashes.SHA1,
}
_XMLSEC_SIGN = {
    "rsa-sha256": xmlsec.constants.TransformRsaSha256,
    "rsa-sha1": xmlsec.constants.TransformRsaSha1,
}
_XMLSEC_DIGEST = {
    "rsa-sha256": xmlsec.constants.TransformSha256,
    "rsa-sha1": xmlsec.constants.TransformSha1,
}
MAX_RELAY_STATE = 80  # Bindings §3.4.3 and §3.5.3
# xs:ID is an NCName: a letter or underscore first (SAML Core §1.3.4).
_XS_ID = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-]{15,255}$")

Binding = Literal["redirect", "post"]
SigAlg = Literal["rsa-sha256", "rsa-sha1"]


class AuthnRequestError(InvalidInput):
    code = "authn_request"


@dataclass(frozen=True)
class AuthnRedirect:
    url: str


@dataclass(frozen=True)
class AuthnPost:
    action_url: str
    form_fields: dict[str, str]


def build_authn_request(
    *,
    request_id: str,
    sp_entity_id: str,
    acs_url: str,
    idp_sso_url: str,
    binding: Binding,
    relay_state: str | None,
    force_authn: bool = False,
    requested_authn_context: Sequence[str] | None = None,
    name_id_format: str | None = None,
    sign: bool = False,
    sign_alg: SigAlg = "rsa-sha256",
    sp_key_pem: str | None = None,
    sp_cert_pem: str | None = None,
    issue_instant: float | None = None,
) -> AuthnRedirect | AuthnPost:
    """Build the browser step that carries an AuthnRequest to `idp_sso_url`."""
    if not _XS_ID.match(request_id):
        raise AuthnRequestError(
            "Internal error: bad request ID.", "request_id must be an xs:ID of 16+ chars"
        )
    if relay_state is not None and len(relay_state.encode("utf-8")) > MAX_RELAY_STATE:
        raise AuthnRequestError("Internal error: RelayState too long.", "over 80 bytes")
    if sign_alg not in SIG_ALGS:
        raise AuthnRequestError("Unsupported signature algorithm.", sign_alg)
    key = _load_rsa_key(sp_key_pem) if sign else None
    xml = _request_xml(
        request_id=request_id,
        sp_entity_id=sp_entity_id,
        acs_url=acs_url,
        destination=idp_sso_url,
        force_authn=force_authn,
        requested_authn_context=requested_authn_context,
        name_id_format=name_id_format,
        issue_instant=issue_instant,
    )
    if binding == "redirect":
        return AuthnRedirect(
            url=_redirect_url(idp_sso_url, xml, relay_state, key, sign_alg if sign else None)
        )
    if binding == "post":
        if sign:
            assert sp_key_pem is not None  # checked by _load_rsa_key
            xml = _sign_enveloped(xml, request_id, sp_key_pem, sp_cert_pem, sign_alg)
        fields = {"SAMLRequest": base64.b64encode(xml).decode("ascii")}
        if relay_state is not None:
            fields["RelayState"] = relay_state
        return AuthnPost(action_url=idp_sso_url, form_fields=fields)
    raise AuthnRequestError("Unsupported binding.", str(binding))


def _request_xml(
    *,
    request_id: str,
    sp_entity_id: str,
    acs_url: str,
    destination: str,
    force_authn: bool,
    requested_authn_context: Sequence[str] | None,
    name_id_format: str | None,
    issue_instant: float | None,
) -> bytes:
    instant = (
        datetime.now(UTC) if issue_instant is None else datetime.fromtimestamp(issue_instant, UTC)
    )
    request = samlp.AuthnRequest(
        id=request_id,
        version="2.0",
        issue_instant=instant.strftime("%Y-%m-%dT%H:%M:%SZ"),
        destination=destination,
        protocol_binding=BINDING_POST,
        assertion_consumer_service_url=acs_url,
        # Profiles §4.1.4.1: Issuer Format omitted (or entity); omitted is the most accepted.
        issuer=saml.Issuer(text=sp_entity_id),
    )
    if force_authn:
        request.force_authn = "true"
    if name_id_format:
        request.name_id_policy = samlp.NameIDPolicy(format=name_id_format, allow_create="true")
    if requested_authn_context:
        request.requested_authn_context = samlp.RequestedAuthnContext(
            authn_context_class_ref=[
                saml.AuthnContextClassRef(text=ref) for ref in requested_authn_context
            ],
            comparison="exact",
        )
    text = request.to_string(nspair={"samlp": samlp.NAMESPACE, "saml": saml.NAMESPACE})
    return text if isinstance(text, bytes) else text.encode("utf-8")


def _redirect_url(
    sso_url: str,
    xml: bytes,
    relay_state: str | None,
    key: rsa.RSAPrivateKey | None,
    sign_alg: str | None,
) -> str:
    compressor = zlib.compressobj(zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED, -15)  # raw DEFLATE
    deflated = compressor.compress(xml) + compressor.flush()
    parts = ["SAMLRequest=" + _encode(base64.b64encode(deflated).decode("ascii"))]
    if relay_state is not None:
        parts.append("RelayState=" + _encode(relay_state))
    if key is not None and sign_alg is not None:
        parts.append("SigAlg=" + _encode(SIG_ALGS[sign_alg]))
        # §3.4.4.1: sign the octets of the query string exactly as they go on the wire.
        signed = "&".join(parts).encode("ascii")
        signature = key.sign(signed, padding.PKCS1v15(), _HASHES[sign_alg]())
        parts.append("Signature=" + _encode(base64.b64encode(signature).decode("ascii")))
    # Some IdPs (Google: `…/idp?idpid=…`) put a query in the SSO URL itself.
    separator = "&" if "?" in sso_url else "?"
    return sso_url + separator + "&".join(parts)


def _encode(value: str) -> str:
    # quote_plus, as Python's urlencode does: IdPs that rebuild the signed string from
    # decoded parameters (pysaml2 among them) then get the very same octets.
    return quote_plus(value, safe="")


def _load_rsa_key(pem: str | None) -> rsa.RSAPrivateKey:
    if not pem:
        raise AuthnRequestError(
            "Request signing is on but the SP key is missing.", "sp_key_pem is None"
        )
    key = serialization.load_pem_private_key(pem.encode("ascii"), password=None)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise AuthnRequestError("The SP signing key must be an RSA key.", type(key).__name__)
    return key


def _sign_enveloped(
    xml: bytes, request_id: str, key_pem: str, cert_pem: str | None, sign_alg: str
) -> bytes:
    # Our own freshly built XML, so a plain parser is fine; still no network or entities.
    parser = etree.XMLParser(resolve_entities=False, no_network=True)
    root = etree.fromstring(xml, parser=parser)
    signature = xmlsec.template.create(
        root, xmlsec.constants.TransformExclC14N, _XMLSEC_SIGN[sign_alg], ns="ds"
    )
    # Core §3.4.1 / schema: ds:Signature comes right after saml:Issuer.
    issuer = root.find(f"{{{saml.NAMESPACE}}}Issuer")
    assert issuer is not None
    issuer.addnext(signature)
    reference = xmlsec.template.add_reference(
        signature, _XMLSEC_DIGEST[sign_alg], uri=f"#{request_id}"
    )
    xmlsec.template.add_transform(reference, xmlsec.constants.TransformEnveloped)
    xmlsec.template.add_transform(reference, xmlsec.constants.TransformExclC14N)
    if cert_pem:
        key_info = xmlsec.template.ensure_key_info(signature)
        xmlsec.template.add_x509_data(key_info)
    xmlsec.tree.add_ids(root, ["ID"])
    context = xmlsec.SignatureContext()
    key = xmlsec.Key.from_memory(key_pem.encode("ascii"), xmlsec.constants.KeyDataFormatPem)
    if cert_pem:
        key.load_cert_from_memory(cert_pem.encode("ascii"), xmlsec.constants.KeyDataFormatPem)
    context.key = key
    context.sign(signature)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")
