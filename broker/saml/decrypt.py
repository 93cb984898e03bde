"""Decryption of a SAML <EncryptedAssertion> with the SP's private keys, in process.

Implements SAML Core §2.3.4 (EncryptedAssertion) and §6.2 (XML Encryption use in
SAML) on top of python-xmlsec (XML Encryption 1.0/1.1). The decrypted
<Assertion> takes the place of the <EncryptedAssertion> in the same tree, so the
caller keeps reading one tree and "exactly one Assertion, a direct child of the
Response" holds afterwards as before.

Allowed: key transport RSA-OAEP (xmlenc#rsa-oaep-mgf1p and xmlenc11#rsa-oaep);
block ciphers AES-128/256-GCM and AES-128/256-CBC. Refused: RSA PKCS#1 v1.5 key
transport (Bleichenbacher oracles), 3DES, key agreement and anything else.

It must never: trust a key named by the message, accept an algorithm outside the
allow-list, or decide that a decrypted assertion is authentic (signatures are
checked by verify.py on the decrypted node afterwards).
"""

from __future__ import annotations

import functools

import xmlsec
from lxml import etree

from broker.saml.xmlsafe import XML_ID_ATTR

NS_XENC = "http://www.w3.org/2001/04/xmlenc#"
NS_DS = "http://www.w3.org/2000/09/xmldsig#"
NS_SAML = "urn:oasis:names:tc:SAML:2.0:assertion"

KEY_TRANSPORT_ALGORITHMS = frozenset(
    {
        "http://www.w3.org/2001/04/xmlenc#rsa-oaep-mgf1p",
        "http://www.w3.org/2009/xmlenc11#rsa-oaep",
    }
)
DATA_ALGORITHMS = frozenset(
    {
        "http://www.w3.org/2009/xmlenc11#aes128-gcm",
        "http://www.w3.org/2009/xmlenc11#aes256-gcm",
        "http://www.w3.org/2001/04/xmlenc#aes128-cbc",
        "http://www.w3.org/2001/04/xmlenc#aes256-cbc",
    }
)
_ENCRYPTED_KEY_TYPE = NS_XENC + "EncryptedKey"


class DecryptionError(Exception):
    """The EncryptedAssertion could not be decrypted; `check` is "decrypt" or "algorithm"."""

    def __init__(self, check: str, message: str, got: str | None = None) -> None:
        super().__init__(message)
        self.check = check
        self.got = got


@functools.lru_cache(maxsize=32)
def _keys_manager(private_key_pem: str) -> xmlsec.KeysManager:
    # Loading an RSA key costs ~100 µs; the SP keys change only at rotation.
    manager = xmlsec.KeysManager()
    manager.add_key(
        xmlsec.Key.from_memory(private_key_pem.encode(), xmlsec.constants.KeyDataFormatPem)
    )
    return manager


def _algorithm(node: etree._Element) -> str | None:
    method = node.find(f"{{{NS_XENC}}}EncryptionMethod")
    return None if method is None else method.get("Algorithm")


def _inline_encrypted_key(encrypted_assertion: etree._Element, key_info: etree._Element) -> None:
    """Move a sibling <EncryptedKey> referenced by <RetrievalMethod> into <KeyInfo>.

    Several IdPs (Shibboleth, some AD FS builds) put the EncryptedKey next to the
    EncryptedData, as SAML Core §6.2 allows; xmlsec looks for it inside KeyInfo.
    The reference is resolved by Id among the EncryptedAssertion's children only.
    """
    for child in list(key_info):
        if child.tag != f"{{{NS_DS}}}RetrievalMethod":
            continue
        if child.get("Type") != _ENCRYPTED_KEY_TYPE:
            raise DecryptionError("decrypt", "RetrievalMethod of an unexpected type")
        wanted = (child.get("URI") or "").removeprefix("#")
        matches = [
            k
            for k in encrypted_assertion.findall(f"{{{NS_XENC}}}EncryptedKey")
            if k.get("Id") == wanted
        ]
        if len(matches) != 1:
            raise DecryptionError("decrypt", "RetrievalMethod names no unique EncryptedKey")
        key_info.remove(child)
        key_info.append(matches[0])


def _check_algorithms(encrypted_data: etree._Element) -> None:
    data_alg = _algorithm(encrypted_data)
    if data_alg not in DATA_ALGORITHMS:
        raise DecryptionError("algorithm", "data encryption algorithm not allowed", data_alg)
    keys = encrypted_data.findall(f"{{{NS_DS}}}KeyInfo/{{{NS_XENC}}}EncryptedKey")
    if not keys:
        raise DecryptionError("decrypt", "EncryptedData carries no EncryptedKey")
    for key in keys:
        key_alg = _algorithm(key)
        if key_alg not in KEY_TRANSPORT_ALGORITHMS:
            raise DecryptionError("algorithm", "key transport algorithm not allowed", key_alg)


def decrypt_assertion(
    encrypted_assertion: etree._Element, private_keys_pem: tuple[str, ...]
) -> etree._Element:
    """Decrypt in place and return the <Assertion> that replaced `encrypted_assertion`."""
    if not private_keys_pem:
        raise DecryptionError("decrypt", "encrypted assertion but no SP decryption key configured")
    data_nodes = encrypted_assertion.findall(f"{{{NS_XENC}}}EncryptedData")
    if len(data_nodes) != 1:
        raise DecryptionError("decrypt", "EncryptedAssertion must hold one EncryptedData")
    encrypted_data = data_nodes[0]
    if encrypted_data.get("Type") not in (None, NS_XENC + "Element"):
        raise DecryptionError("decrypt", "EncryptedData is not of type Element")
    key_info = encrypted_data.find(f"{{{NS_DS}}}KeyInfo")
    if key_info is None:
        raise DecryptionError("decrypt", "EncryptedData carries no KeyInfo")
    _inline_encrypted_key(encrypted_assertion, key_info)
    _check_algorithms(encrypted_data)

    decrypted: etree._Element | None = None
    for pem in private_keys_pem:  # current key first, then the previous one during rollover
        try:
            result = xmlsec.EncryptionContext(_keys_manager(pem)).decrypt(encrypted_data)
        except xmlsec.Error:
            continue  # wrong key (OAEP fails before the tree is touched) or bad ciphertext
        if not isinstance(result, etree._Element):
            raise DecryptionError("decrypt", "EncryptedData did not decrypt to an element")
        decrypted = result
        break
    if decrypted is None:
        raise DecryptionError("decrypt", "no SP key decrypts the assertion")
    if decrypted.tag != f"{{{NS_SAML}}}Assertion":
        raise DecryptionError("decrypt", "EncryptedAssertion did not hold an Assertion")
    _check_decrypted_content(decrypted)
    # The Assertion takes the EncryptedAssertion's place: one tree, one Assertion child.
    parent = encrypted_assertion.getparent()
    if parent is None:
        raise DecryptionError("decrypt", "EncryptedAssertion has no parent")
    decrypted.tail = encrypted_assertion.tail
    parent.replace(encrypted_assertion, decrypted)
    return decrypted


def _check_decrypted_content(assertion: etree._Element) -> None:
    # xmlsec parses the plaintext as a fragment inside our document: make sure it
    # brought no entity references or xml:id attributes (auto-registered IDs).
    for node in assertion.iter():
        if isinstance(node, etree._Entity):
            raise DecryptionError("decrypt", "decrypted assertion contains an entity reference")
        if isinstance(node.tag, str) and node.get(XML_ID_ATTR) is not None:
            raise DecryptionError("decrypt", "decrypted assertion carries xml:id")
