"""The SAML SP's signing/encryption key and self-signed certificate."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from broker.crypto.files import write_private, write_public

SP_KEY = "saml-sp.key"
SP_CERT = "saml-sp.crt"


def self_signed(common_name: str, years: int = 10) -> tuple[bytes, bytes]:
    """A 3072-bit RSA key and a self-signed certificate, both PEM."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=3072)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name[:64])])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=365 * years))
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return key_pem, cert.public_bytes(serialization.Encoding.PEM)


def ensure_sp_certificate(certs_dir: Path, common_name: str, force: bool = False) -> bool:
    """Create the SP key pair unless present; return True when one was written."""
    key_path, cert_path = certs_dir / SP_KEY, certs_dir / SP_CERT
    if key_path.exists() and cert_path.exists() and not force:
        return False
    key_pem, cert_pem = self_signed(common_name)
    write_private(key_path, key_pem)
    write_public(cert_path, cert_pem)
    return True
