"""FakeSamlIdP: a real SAML 2.0 IdP for tests, built on pysaml2's IdP side (saml2.server.Server).

It generates its own RSA key and self-signed certificate at construction, builds
Responses with pysaml2 (`create_authn_response`), signs them with pysaml2's
`xmlsec1` backend (a real RSA signature by the IdP key, produced by an
implementation independent of the broker's verifier), and encrypts assertions
with python-xmlsec (pysaml2 only offers 3DES, which the broker refuses).

Shapes, as real providers send them (tests/../IDP-NOTES.md):
  sign_assertion only: Entra ID, AD FS, Google; sign_response only: OneLogin,
  PingFederate; both: Okta, Duo.

Also serves over HTTP (aiohttp, 127.0.0.1 only): GET /metadata, GET|POST /sso
(HTTP-Redirect or HTTP-POST AuthnRequest, parsed by pysaml2's
`parse_authn_request`, answered with an auto-submitting form to the ACS URL for
the user in `next_user`), and `unsolicited_form()` for IdP-initiated logins.

Requires the `xmlsec1` program (Debian package xmlsec1).
"""

from __future__ import annotations

import base64
import copy
import datetime as dt
import html
import os
import shutil
import socket
import uuid
import warnings
import zlib
from dataclasses import dataclass, field
from typing import Any

import xmlsec
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.utils import CryptographyDeprecationWarning
from cryptography.x509.oid import NameOID
from lxml import etree

# pysaml2 touches cryptography's deprecated CFB mode at import; under -W error that import
# would fail, so silence exactly that warning while importing it (once per process).
with warnings.catch_warnings():
    warnings.filterwarnings("ignore", category=CryptographyDeprecationWarning)
    from saml2 import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT, samlp, xmldsig
    from saml2.assertion import Policy
    from saml2.attribute_converter import AttributeConverter
    from saml2.config import IdPConfig
    from saml2.metadata import create_metadata_string
    from saml2.s_utils import UnknownPrincipal, UnsupportedBinding
    from saml2.saml import (
        NAME_FORMAT_URI,
        NAMEID_FORMAT_EMAILADDRESS,
        NAMEID_FORMAT_UNSPECIFIED,
        NameID,
    )
    from saml2.server import Server
    from saml2.sigver import pre_signature_part


EMAIL = NAMEID_FORMAT_EMAILADDRESS
UNSPECIFIED = NAMEID_FORMAT_UNSPECIFIED
PASSWORD_PROTECTED = "urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport"
# The node xmlsec1 signs, as pysaml2 names it (`saml2.sigver.class_name` of a Response).
RESPONSE_CLASS = f"{samlp.NAMESPACE}:Response"

NS = {
    "samlp": "urn:oasis:names:tc:SAML:2.0:protocol",
    "saml": "urn:oasis:names:tc:SAML:2.0:assertion",
    "ds": "http://www.w3.org/2000/09/xmldsig#",
    "xenc": "http://www.w3.org/2001/04/xmlenc#",
}

SIGN_ALGS = {
    "rsa-sha1": xmldsig.SIG_RSA_SHA1,
    "rsa-sha256": xmldsig.SIG_RSA_SHA256,
    "rsa-sha384": xmldsig.SIG_RSA_SHA384,
    "rsa-sha512": xmldsig.SIG_RSA_SHA512,
}
DIGEST_ALGS = {
    "sha1": xmldsig.DIGEST_SHA1,
    "sha256": xmldsig.DIGEST_SHA256,
    "sha384": xmldsig.DIGEST_SHA384,
    "sha512": xmldsig.DIGEST_SHA512,
}
# python-xmlsec names for re-signing (attacker and tamper helpers).
_XMLSEC_SIGN = {
    "rsa-sha1": xmlsec.constants.TransformRsaSha1,
    "rsa-sha256": xmlsec.constants.TransformRsaSha256,
    "ecdsa-sha256": xmlsec.constants.TransformEcdsaSha256,
}
_XMLSEC_DIGEST = {
    "sha1": xmlsec.constants.TransformSha1,
    "sha256": xmlsec.constants.TransformSha256,
}
DATA_ENC = {
    "aes128-gcm": xmlsec.constants.TransformAes128Gcm,
    "aes256-gcm": xmlsec.constants.TransformAes256Gcm,
    "aes128-cbc": xmlsec.constants.TransformAes128Cbc,
    "aes256-cbc": xmlsec.constants.TransformAes256Cbc,
}
# xmlsec's transform type is private in its stubs (constants.__Transform): hence Any.
KEY_TRANSPORT: dict[str, Any] = {
    "rsa-oaep-mgf1p": xmlsec.constants.TransformRsaOaep,
    "rsa-oaep": "http://www.w3.org/2009/xmlenc11#rsa-oaep",
    "rsa-1_5": xmlsec.constants.TransformRsaPkcs1,
}
DEFAULT_ATTRIBUTES: dict[str, list[str]] = {
    "email": ["ann@acme.test"],
    "firstName": ["Ann"],
    "lastName": ["Example"],
    "groups": ["Engineering", "Everyone"],
}


def generate_key_and_cert(
    common_name: str, *, kind: str = "rsa", days: int = 365
) -> tuple[str, str]:
    """A fresh private key (PEM, PKCS#8) and a self-signed certificate (PEM)."""
    key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
    key = (
        rsa.generate_private_key(65537, 2048)
        if kind == "rsa"
        else ec.generate_private_key(ec.SECP256R1())
    )
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=days))
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    return key_pem, cert.public_bytes(serialization.Encoding.PEM).decode()


def cert_body(cert_pem: str) -> str:
    """The base64 body of a PEM certificate, as it appears in metadata and KeyInfo."""
    lines = [ln for ln in cert_pem.strip().splitlines() if "-----" not in ln]
    return "".join(lines)


@dataclass
class User:
    """Who logs in next at the fake IdP."""

    name_id: str = "ann@acme.test"
    name_id_format: str | None = EMAIL
    attributes: dict[str, list[str]] = field(default_factory=lambda: dict(DEFAULT_ATTRIBUTES))


@dataclass
class ResponseOptions:
    """How the next Responses are shaped (per test or per served login)."""

    sign_response: bool = True
    sign_assertion: bool = True
    encrypt_with_cert: str | None = None
    data_encryption: str = "aes256-gcm"
    key_transport: str = "rsa-oaep-mgf1p"
    digest: str = "sha256"
    sign_alg: str = "rsa-sha256"
    lifetime_minutes: int = 5


class FakeSamlIdP:
    """A pysaml2 IdP with its own key, usable in process and over HTTP on 127.0.0.1."""

    def __init__(
        self,
        entity_id: str,
        tmpdir: str | os.PathLike[str],
        *,
        base_url: str = "http://127.0.0.1:0",
        sp_metadata: list[bytes] | None = None,
    ) -> None:
        if shutil.which("xmlsec1") is None:
            raise RuntimeError("FakeSamlIdP needs the xmlsec1 program (apt-get install xmlsec1)")
        self.entity_id = entity_id
        self.tmpdir = os.fspath(tmpdir)
        os.makedirs(self.tmpdir, exist_ok=True)
        self.key_pem, self.certificate_pem = generate_key_and_cert("Fake SAML IdP")
        self.key_file = os.path.join(self.tmpdir, f"idp-{uuid.uuid4().hex}.key")
        self.cert_file = self.key_file[:-4] + ".crt"
        with open(self.key_file, "w") as f:
            f.write(self.key_pem)
        with open(self.cert_file, "w") as f:
            f.write(self.certificate_pem)
        self.next_user = User()
        self.options = ResponseOptions()
        self.received_requests: list[str] = []  # AuthnRequest XML, as received
        self._sp_metadata = list(sp_metadata or [])
        self._base_url = base_url
        self.server = self._build_server()

    # ------------------------------------------------------------ configuration

    @property
    def base_url(self) -> str:
        return self._base_url

    @base_url.setter
    def base_url(self, value: str) -> None:
        self._base_url = value
        self.server = self._build_server()

    @property
    def sso_url(self) -> str:
        return self._base_url + "/sso"

    def add_sp_metadata(self, metadata_xml: bytes) -> None:
        """Trust an SP (needed by pysaml2 to answer its AuthnRequests)."""
        self._sp_metadata.append(metadata_xml)
        self.server = self._build_server()

    def _build_server(self) -> Server:
        config: dict[str, Any] = {
            "entityid": self.entity_id,
            "xmlsec_binary": shutil.which("xmlsec1"),
            "key_file": self.key_file,
            "cert_file": self.cert_file,
            "service": {
                "idp": {
                    "endpoints": {
                        "single_sign_on_service": [
                            (self.sso_url, BINDING_HTTP_REDIRECT),
                            (self.sso_url, BINDING_HTTP_POST),
                        ]
                    },
                    "name_id_format": [EMAIL, UNSPECIFIED],
                    "want_authn_requests_signed": False,
                    "policy": {"default": {"lifetime": {"minutes": 5}}},
                }
            },
            "metadata": {"inline": [m.decode() for m in self._sp_metadata]},
            "delete_tmpfiles": True,
            "tmp_path": self.tmpdir,
        }
        conf = IdPConfig()
        conf.load(config)
        # Attribute names go out verbatim (Okta-style `email`, Entra-style claim URIs),
        # not translated through pysaml2's built-in OID/eIDAS maps.
        verbatim = AttributeConverter(NAME_FORMAT_URI)
        verbatim.from_dict({"identifier": NAME_FORMAT_URI, "fro": {}, "to": {}})
        conf.attribute_converters = [verbatim]
        return Server(config=conf)

    def _ensure_sp_known(self, sp_entity_id: str, acs_url: str) -> None:
        """pysaml2 looks every SP up in its metadata; register a minimal one if unknown."""
        try:
            self.server.metadata[sp_entity_id]
        except KeyError:
            self.server.metadata.load("inline", minimal_sp_metadata(sp_entity_id, acs_url))

    def metadata_xml(self) -> bytes:
        """IdP metadata: SSO endpoints (HTTP-Redirect and HTTP-POST) and the signing cert."""
        return bytes(create_metadata_string(None, config=self.server.config, valid=24))

    # ------------------------------------------------------------ responses

    def make_response(
        self,
        *,
        sp_entity_id: str,
        acs_url: str,
        in_response_to: str | None = None,
        name_id: str = "ann@acme.test",
        name_id_format: str | None = EMAIL,
        attributes: dict[str, list[str]] | None = None,
        sign_response: bool = True,
        sign_assertion: bool = True,
        encrypt_with_cert: str | None = None,
        data_encryption: str = "aes256-gcm",
        key_transport: str = "rsa-oaep-mgf1p",
        digest: str = "sha256",
        sign_alg: str = "rsa-sha256",
        lifetime_minutes: int = 5,
        session_index: str | None = None,
    ) -> bytes:
        """A Response XML as a real IdP posts it (before base64), signed with the IdP key."""
        self._ensure_sp_known(sp_entity_id, acs_url)
        response = self.server.create_authn_response(
            identity=attributes if attributes is not None else dict(DEFAULT_ATTRIBUTES),
            in_response_to=in_response_to,
            destination=acs_url,
            sp_entity_id=sp_entity_id,
            name_id=NameID(text=name_id, format=name_id_format),
            authn={
                "class_ref": PASSWORD_PROTECTED,
                "authn_instant": int(dt.datetime.now(dt.UTC).timestamp()),
            },
            sign_response=False,  # signed below, after optional encryption
            sign_assertion=sign_assertion,
            sign_alg=SIGN_ALGS[sign_alg],
            digest_alg=DIGEST_ALGS[digest],
            release_policy=Policy(
                {"default": {"lifetime": {"minutes": lifetime_minutes}}}, self.server.metadata
            ),
        )
        xml = str(response).encode()
        root = etree.fromstring(xml)
        if session_index is not None:
            for st in root.iter(f"{{{NS['saml']}}}AuthnStatement"):
                st.set("SessionIndex", session_index)
            xml = etree.tostring(root)
        if encrypt_with_cert is not None:
            xml = encrypt_assertion(xml, encrypt_with_cert, data_encryption, key_transport)
        if sign_response:
            xml = self.sign_response_with_pysaml2(xml, sign_alg=sign_alg, digest=digest)
        return xml

    def make_error_response(
        self,
        *,
        acs_url: str,
        in_response_to: str | None = None,
        status: str = "urn:oasis:names:tc:SAML:2.0:status:AuthnFailed",
        message: str = "authentication failed",
    ) -> bytes:
        """A signed Response whose Status is Responder / `status` (pysaml2's error response)."""
        response = self.server.create_error_response(
            in_response_to, acs_url, (status, message), sign=False
        )
        return self.sign_response_with_pysaml2(str(response).encode())

    def sign_response_with_pysaml2(
        self, xml: bytes, *, sign_alg: str = "rsa-sha256", digest: str = "sha256"
    ) -> bytes:
        """Sign the Response root the way pysaml2's IdP does: template + xmlsec1 --sign.

        The template goes into the document as it is, by lxml, never through pysaml2's
        object model: parsing and re-serialising with pysaml2 rewrites a signed Assertion
        (an empty AttributeValue gains `xsi:nil="true"`), which breaks its signature.
        """
        root = etree.fromstring(xml)
        response_id = root.get("ID")
        template = pre_signature_part(
            ident=response_id,
            public_key=self.server.sec.my_cert,
            sign_alg=SIGN_ALGS[sign_alg],
            digest_alg=DIGEST_ALGS[digest],
        )
        signature = etree.fromstring(template.to_string(nspair={"ds": NS["ds"]}))
        issuer = root.find("saml:Issuer", NS)
        if issuer is not None:  # schema order (SAML Core §3.2.2): Signature right after Issuer
            issuer.addnext(signature)
        else:
            root.insert(0, signature)
        signed = self.server.sec.sign_statement(
            etree.tostring(root).decode(), RESPONSE_CLASS, node_id=response_id
        )
        return signed.encode() if isinstance(signed, str) else signed

    def authn_response_for_request(self, request_xml: str, binding: str) -> tuple[str, bytes]:
        """Answer an AuthnRequest (already decoded by the binding) for `next_user`."""
        parsed = self.server.parse_authn_request(request_xml, binding)
        request = parsed.message
        acs_url = request.assertion_consumer_service_url
        if not acs_url:
            acs_url = self.server.metadata.assertion_consumer_service(
                request.issuer.text, BINDING_HTTP_POST
            )[0]["location"]
        user = self.next_user
        opts = self.options
        xml = self.make_response(
            sp_entity_id=request.issuer.text,
            acs_url=acs_url,
            in_response_to=request.id,
            name_id=user.name_id,
            name_id_format=user.name_id_format,
            attributes=user.attributes,
            sign_response=opts.sign_response,
            sign_assertion=opts.sign_assertion,
            encrypt_with_cert=opts.encrypt_with_cert,
            data_encryption=opts.data_encryption,
            key_transport=opts.key_transport,
            digest=opts.digest,
            sign_alg=opts.sign_alg,
            lifetime_minutes=opts.lifetime_minutes,
        )
        return acs_url, xml

    def unsolicited_form(self, *, sp_entity_id: str, acs_url: str, relay_state: str = "") -> str:
        """IdP-initiated login: an auto-submitting form carrying a Response with no InResponseTo."""
        user, opts = self.next_user, self.options
        xml = self.make_response(
            sp_entity_id=sp_entity_id,
            acs_url=acs_url,
            name_id=user.name_id,
            name_id_format=user.name_id_format,
            attributes=user.attributes,
            sign_response=opts.sign_response,
            sign_assertion=opts.sign_assertion,
            encrypt_with_cert=opts.encrypt_with_cert,
            digest=opts.digest,
            sign_alg=opts.sign_alg,
        )
        return post_form(acs_url, xml, relay_state)

    # ------------------------------------------------------------ HTTP

    def make_app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/metadata", self._metadata)
        app.router.add_route("GET", "/sso", self._sso)
        app.router.add_route("POST", "/sso", self._sso)
        app.router.add_post("/idp-initiated", self._idp_initiated)
        return app

    async def start(self) -> web.AppRunner:
        """Serve on 127.0.0.1 at a free port; sets base_url. Call `runner.cleanup()` after."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        self.base_url = f"http://127.0.0.1:{port}"
        runner = web.AppRunner(self.make_app())
        await runner.setup()
        await web.SockSite(runner, sock).start()
        return runner

    async def _metadata(self, request: web.Request) -> web.Response:
        return web.Response(body=self.metadata_xml(), content_type="application/samlmetadata+xml")

    async def _sso(self, request: web.Request) -> web.Response:
        if request.method == "GET":
            saml_request = request.query.get("SAMLRequest")
            relay_state = request.query.get("RelayState", "")
            binding = BINDING_HTTP_REDIRECT
        else:
            form = await request.post()
            saml_request = str(form.get("SAMLRequest") or "") or None
            relay_state = str(form.get("RelayState") or "")
            binding = BINDING_HTTP_POST
        if not saml_request:
            raise web.HTTPBadRequest(text="SAMLRequest missing")
        self.received_requests.append(_decode_request(saml_request, binding))
        try:
            acs_url, xml = self.authn_response_for_request(saml_request, binding)
        except (UnknownPrincipal, UnsupportedBinding, KeyError, IndexError) as exc:
            raise web.HTTPBadRequest(text=f"cannot answer AuthnRequest: {exc!r}") from exc
        return web.Response(text=post_form(acs_url, xml, relay_state), content_type="text/html")

    async def _idp_initiated(self, request: web.Request) -> web.Response:
        form = await request.post()
        html_form = self.unsolicited_form(
            sp_entity_id=str(form["sp_entity_id"]),
            acs_url=str(form["acs_url"]),
            relay_state=str(form.get("RelayState") or ""),
        )
        return web.Response(text=html_form, content_type="text/html")


# ---------------------------------------------------------------- helpers


def minimal_sp_metadata(sp_entity_id: str, acs_url: str) -> str:
    """SP metadata with one HTTP-POST ACS, for SPs the test did not register."""
    return (
        '<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" '
        f'entityID="{html.escape(sp_entity_id)}">'
        '<md:SPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">'
        f'<md:AssertionConsumerService Binding="{BINDING_HTTP_POST}" '
        f'Location="{html.escape(acs_url)}" index="0"/>'
        "</md:SPSSODescriptor></md:EntityDescriptor>"
    )


def post_form(acs_url: str, response_xml: bytes, relay_state: str) -> str:
    """The HTTP-POST binding page (Bindings §3.5.4): auto-submits SAMLResponse + RelayState."""
    value = base64.b64encode(response_xml).decode()
    return (
        '<!doctype html><html><body onload="document.forms[0].submit()">'
        f'<form method="post" action="{html.escape(acs_url)}">'
        f'<input type="hidden" name="SAMLResponse" value="{value}">'
        f'<input type="hidden" name="RelayState" value="{html.escape(relay_state)}">'
        '<noscript><button type="submit">Continue</button></noscript>'
        "</form></body></html>"
    )


def _decode_request(saml_request: str, binding: str) -> str:
    raw = base64.b64decode(saml_request)
    if binding == BINDING_HTTP_REDIRECT:
        raw = zlib.decompress(raw, -15)
    return raw.decode()


def encrypt_assertion(
    xml: bytes,
    cert_pem: str,
    data_encryption: str = "aes256-gcm",
    key_transport: str = "rsa-oaep-mgf1p",
) -> bytes:
    """Replace the Assertion with an EncryptedAssertion for `cert_pem` (python-xmlsec).

    The plaintext is the Assertion serialised self-contained (every namespace it uses
    declared on it), as IdPs do, so that it parses on its own after decryption.
    """
    root = etree.fromstring(xml)
    assertion = root.find("saml:Assertion", NS)
    assert assertion is not None
    plaintext = etree.tostring(copy.deepcopy(assertion))
    enc_data = xmlsec.template.encrypted_data_create(
        root, DATA_ENC[data_encryption], type=xmlsec.constants.TypeEncElement, ns="xenc"
    )
    xmlsec.template.encrypted_data_ensure_cipher_value(enc_data)
    key_info = xmlsec.template.encrypted_data_ensure_key_info(enc_data, ns="ds")
    transport = KEY_TRANSPORT[key_transport]
    if isinstance(transport, str):  # xmlenc11#rsa-oaep: same transform, 1.1 algorithm URI
        enc_key = xmlsec.template.add_encrypted_key(key_info, xmlsec.constants.TransformRsaOaep)
        enc_key.find("xenc:EncryptionMethod", NS).set("Algorithm", transport)
    else:
        enc_key = xmlsec.template.add_encrypted_key(key_info, transport)
    xmlsec.template.encrypted_data_ensure_cipher_value(enc_key)
    manager = xmlsec.KeysManager()
    manager.add_key(
        xmlsec.Key.from_memory(cert_pem.encode(), xmlsec.constants.KeyDataFormatCertPem)
    )
    ctx = xmlsec.EncryptionContext(manager)
    ctx.key = xmlsec.Key.generate(
        xmlsec.constants.KeyDataAes,
        int(data_encryption[3:6]),
        xmlsec.constants.KeyDataTypeSession,
    )
    encrypted = ctx.encrypt_binary(enc_data, plaintext)
    wrapper = etree.Element(f"{{{NS['saml']}}}EncryptedAssertion", nsmap={"saml": NS["saml"]})
    wrapper.append(encrypted)
    root.replace(assertion, wrapper)
    return etree.tostring(root)


def sign_element(
    root: etree._Element,
    element: etree._Element,
    key_pem: str,
    cert_pem: str,
    *,
    sign_alg: str = "rsa-sha256",
    digest: str = "sha256",
    c14n: Any = xmlsec.constants.TransformExclC14N,
) -> None:
    """Sign `element` in place (enveloped, exclusive c14n, Reference #ID), KeyInfo=cert.

    Used to build attacks (an attacker's own key) and IdP-side edge cases (a value
    with a comment signed by the real IdP key). Any existing direct Signature goes.
    Nodes xmlsec's template functions create are not always found by lxml's
    path-based `find` on the same tree: serialise and re-parse before searching them.
    """
    for old in element.findall("ds:Signature", NS):
        element.remove(old)
    signature = xmlsec.template.create(element, c14n, _XMLSEC_SIGN[sign_alg], ns="ds")
    issuer = element.find("saml:Issuer", NS)
    if issuer is not None:  # schema order: Signature right after Issuer
        issuer.addnext(signature)
    else:
        element.insert(0, signature)
    ref = xmlsec.template.add_reference(
        signature, _XMLSEC_DIGEST[digest], uri="#" + element.get("ID")
    )
    xmlsec.template.add_transform(ref, xmlsec.constants.TransformEnveloped)
    xmlsec.template.add_transform(ref, c14n)
    key_info = xmlsec.template.ensure_key_info(signature)
    x509_data = xmlsec.template.add_x509_data(key_info)
    xmlsec.template.x509_data_add_certificate(x509_data)
    xmlsec.tree.add_ids(root, ["ID"])
    ctx = xmlsec.SignatureContext()
    key = xmlsec.Key.from_memory(key_pem.encode(), xmlsec.constants.KeyDataFormatPem)
    key.load_cert_from_memory(cert_pem.encode(), xmlsec.constants.KeyDataFormatCertPem)
    ctx.key = key
    ctx.sign(signature)
