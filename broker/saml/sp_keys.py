"""The SP's key pairs under certs/, with rollover: current, next and previous.

SAML Metadata §2.4.1.1 lets an entity list several KeyDescriptors of the same use, which
is how an SP rolls its key without a flag day:
  1. `prepare_next` writes saml-sp.next.{key,crt}; metadata now lists current + next, so
     IdPs that re-read our metadata learn the new certificate in advance.
  2. `promote` makes next the current pair (we sign AuthnRequests with it) and keeps the
     old pair as previous: still listed, still able to decrypt assertions that IdPs
     encrypted for it.
  3. `retire_previous` removes the old pair once every IdP has the new certificate.
Every worker re-reads the files when they change (mtime), so no restart is needed.
Private keys are written 0600 (broker.crypto.files) and never leave this module except to
sign or decrypt in process.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from broker.crypto.certs import SP_CERT, SP_KEY, self_signed
from broker.crypto.files import write_private, write_public
from broker.errors import ConfigError, Conflict

NEXT_KEY, NEXT_CERT = "saml-sp.next.key", "saml-sp.next.crt"
PREVIOUS_KEY, PREVIOUS_CERT = "saml-sp.previous.key", "saml-sp.previous.crt"


@dataclass(frozen=True)
class KeyPair:
    key_pem: str
    cert_pem: str


@dataclass(frozen=True)
class SpKeys:
    current: KeyPair
    next: KeyPair | None = None
    previous: KeyPair | None = None

    def published_certificates(self) -> list[str]:
        """What SP metadata lists (signing and encryption): current, next, previous."""
        return [p.cert_pem for p in (self.current, self.next, self.previous) if p is not None]

    def decryption_keys(self) -> tuple[str, ...]:
        return tuple(p.key_pem for p in (self.current, self.next, self.previous) if p is not None)


_cache: dict[Path, tuple[tuple[float, ...], SpKeys]] = {}
_lock = threading.Lock()


def _files(certs_dir: Path) -> list[Path]:
    names = (SP_KEY, SP_CERT, NEXT_KEY, NEXT_CERT, PREVIOUS_KEY, PREVIOUS_CERT)
    return [certs_dir / n for n in names]


def _stamp(certs_dir: Path) -> tuple[float, ...]:
    return tuple(p.stat().st_mtime_ns if p.exists() else -1 for p in _files(certs_dir))


def _pair(certs_dir: Path, key_name: str, cert_name: str) -> KeyPair | None:
    key_path, cert_path = certs_dir / key_name, certs_dir / cert_name
    if not (key_path.exists() and cert_path.exists()):
        return None
    pair = KeyPair(key_path.read_text("ascii"), cert_path.read_text("ascii"))
    _check_match(pair, cert_path)
    return pair


def _check_match(pair: KeyPair, where: Path) -> None:
    key = serialization.load_pem_private_key(pair.key_pem.encode(), password=None)
    cert = x509.load_pem_x509_certificate(pair.cert_pem.encode())
    spki = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    if key.public_key().public_bytes(*spki) != cert.public_key().public_bytes(*spki):
        raise ConfigError(f"{where}: the SAML SP certificate does not match its key")


def load(certs_dir: Path) -> SpKeys:
    """The SP key pairs, re-read whenever a file under certs/ changed."""
    stamp = _stamp(certs_dir)
    with _lock:
        cached = _cache.get(certs_dir)
        if cached and cached[0] == stamp:
            return cached[1]
    try:
        keys = _read(certs_dir)
    except ConfigError:
        # Another process may be between the two file replacements of `promote`: once more.
        time.sleep(0.2)
        keys = _read(certs_dir)
    with _lock:
        _cache[certs_dir] = (stamp, keys)
    return keys


def _read(certs_dir: Path) -> SpKeys:
    current = _pair(certs_dir, SP_KEY, SP_CERT)
    if current is None:
        raise ConfigError(f"{certs_dir}: the SAML SP key is missing (run `exec-broker init`)")
    return SpKeys(
        current,
        _pair(certs_dir, NEXT_KEY, NEXT_CERT),
        _pair(certs_dir, PREVIOUS_KEY, PREVIOUS_CERT),
    )


def prepare_next(certs_dir: Path, common_name: str) -> KeyPair:
    """Step 1: a new pair, published beside the current one."""
    if (certs_dir / NEXT_CERT).exists():
        raise Conflict("A next SP certificate already exists; promote it first.")
    key_pem, cert_pem = self_signed(common_name)
    write_private(certs_dir / NEXT_KEY, key_pem)
    write_public(certs_dir / NEXT_CERT, cert_pem)
    return KeyPair(key_pem.decode(), cert_pem.decode())


def promote(certs_dir: Path) -> SpKeys:
    """Step 2: next becomes current; the old current stays as previous."""
    keys = load(certs_dir)
    if keys.next is None:
        raise Conflict("There is no next SP certificate; run `saml rotate-sp-cert` first.")
    write_private(certs_dir / PREVIOUS_KEY, keys.current.key_pem.encode())
    write_public(certs_dir / PREVIOUS_CERT, keys.current.cert_pem.encode())
    write_private(certs_dir / SP_KEY, keys.next.key_pem.encode())
    write_public(certs_dir / SP_CERT, keys.next.cert_pem.encode())
    for name in (NEXT_KEY, NEXT_CERT):
        os.unlink(certs_dir / name)
    return load(certs_dir)


def retire_previous(certs_dir: Path) -> SpKeys:
    """Step 3: stop publishing (and decrypting with) the old pair."""
    for name in (PREVIOUS_KEY, PREVIOUS_CERT):
        path = certs_dir / name
        if path.exists():
            os.unlink(path)
    return load(certs_dir)
