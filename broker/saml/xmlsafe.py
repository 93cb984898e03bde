"""Hardened XML parsing for untrusted SAML messages.

Role: turn the bytes an IdP (or an attacker) posted into one lxml tree, refusing
anything that could make two parsers see two documents or make the parser do
work it should not: DTDs (internal or external), entity declarations and
references, network access, oversized documents and huge text nodes.

Spec context: SAML Core §3.2 / Bindings §3.5 carry a single XML document; XML 1.0
§2.8 (DTDs) has no place in a SAML protocol message (SAML Core §1.3 forbids
relying on DTD-supplied defaults), so any DOCTYPE is refused outright (OWASP XXE
guidance, "billion laughs").

It must never: resolve an entity, load a DTD, fetch anything over the network,
or quietly drop part of the input (recover=False).

Also home of `check_libxml2_versions`: lxml and python-xmlsec each link libxml2;
if they link different builds, a node created by one is freed or walked by the
other with a different struct layout (docs/adr: "Signatures in process").
"""

from __future__ import annotations

import re
import threading

import xmlsec
from lxml import etree

# A SAML Response in the POST binding is a few kilobytes; even Entra's group
# overage keeps them well under this. Anything bigger is refused before parsing.
MAX_DOCUMENT_BYTES = 512 * 1024

XML_ID_ATTR = "{http://www.w3.org/XML/1998/namespace}id"

# "<!DOCTYPE" in any case, also with the UTF-16 encodings a SAML message could in
# principle arrive in. The parser below would refuse to load a DTD anyway; the
# byte check makes the refusal explicit and cheap.
_DOCTYPE_PATTERNS = (
    re.compile(rb"<!DOCTYPE", re.IGNORECASE),
    re.compile("<!DOCTYPE".encode("utf-16-le"), re.IGNORECASE),
    re.compile("<!DOCTYPE".encode("utf-16-be"), re.IGNORECASE),
)
_ENTITY_PATTERN = re.compile(rb"<!ENTITY", re.IGNORECASE)


class UnsafeXmlError(ValueError):
    """The document is refused before or while parsing; `reason` is "dtd" or "malformed"."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def _make_parser() -> etree.XMLParser:
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        attribute_defaults=False,
        huge_tree=False,
        remove_comments=False,  # comments stay so that text reads see them for what they are
        remove_pis=False,
        remove_blank_text=False,
        strip_cdata=True,
        recover=False,
        collect_ids=False,  # IDs are registered explicitly for xmlsec, never by the parser
    )


# A parser object is not thread-safe across concurrent parses; one per thread.
_local = threading.local()


def _parser() -> etree.XMLParser:
    parser: etree.XMLParser | None = getattr(_local, "parser", None)
    if parser is None:
        parser = _make_parser()
        _local.parser = parser
    return parser


def parse_untrusted(data: bytes) -> etree._Element:
    """Parse untrusted XML bytes once and return the root element.

    Raises UnsafeXmlError("dtd") for any DOCTYPE or entity declaration and
    UnsafeXmlError("malformed") for anything that is not one well-formed document.
    """
    if not isinstance(data, bytes):
        raise UnsafeXmlError("malformed", "XML input must be bytes")
    if len(data) > MAX_DOCUMENT_BYTES:
        raise UnsafeXmlError("malformed", f"document larger than {MAX_DOCUMENT_BYTES} bytes")
    if any(p.search(data) for p in _DOCTYPE_PATTERNS) or _ENTITY_PATTERN.search(data):
        raise UnsafeXmlError("dtd", "document contains a DOCTYPE or entity declaration")
    try:
        root = etree.fromstring(data, parser=_parser())
    except etree.XMLSyntaxError as exc:
        raise UnsafeXmlError("malformed", f"not well-formed XML: {exc}") from exc
    tree = root.getroottree()
    # Belt and braces: an encoding the byte scan did not foresee still ends here.
    if tree.docinfo.doctype or tree.docinfo.internalDTD is not None:
        raise UnsafeXmlError("dtd", "document carries a DTD")
    for node in root.iter():
        if isinstance(node, etree._Entity):
            raise UnsafeXmlError("dtd", "document contains an entity reference")
    return root


def text_of(node: etree._Element) -> str:
    """The full character content of `node`, comments and PIs skipped, text on both sides kept.

    `user@evil.com<!---->.good.com` reads as "user@evil.com.good.com", never as the
    part before the comment (the 2018 SAML comment-truncation bugs read `.text`).
    """
    parts: list[str] = []
    if node.text:
        parts.append(node.text)
    for child in node:
        if isinstance(child.tag, str):  # an element: its own text, recursively
            parts.append(text_of(child))
        if child.tail:  # comments and PIs contribute only the text after them
            parts.append(child.tail)
    return "".join(parts)


def check_libxml2_versions() -> None:
    """Refuse to run when lxml and python-xmlsec link different libxml2 builds."""
    lxml_version = tuple(etree.LIBXML_VERSION)
    xmlsec_version = tuple(xmlsec.get_libxml_version())
    if lxml_version != xmlsec_version:
        raise RuntimeError(
            "lxml and xmlsec link different libxml2 versions "
            f"(lxml: {'.'.join(map(str, lxml_version))}, "
            f"xmlsec: {'.'.join(map(str, xmlsec_version))}); reinstall them from source "
            "against the same libxml2 (pip install --no-binary lxml,xmlsec lxml xmlsec) "
            "or pin wheels that bundle the same version"
        )
