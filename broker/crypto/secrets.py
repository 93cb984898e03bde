"""Password hashing (argon2id) and encryption at rest (AES-256-GCM with a key under certs/).

High-entropy tokens (codes, refresh tokens, SCIM tokens, client secrets) are hashed
with SHA-256 in broker.ids; only human-chosen passwords need argon2. Secrets that
the broker must use again later (upstream client secrets, webhook signing secrets)
are encrypted, never hashed, with the key in certs/secret.key.
"""

from __future__ import annotations

import base64
import os
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from broker.crypto.files import write_private
from broker.errors import ConfigError, InvalidInput

_hasher = PasswordHasher()

SECRET_KEY_FILE = "secret.key"


def hash_password(password: str) -> str:
    if len(password) < 12:
        raise InvalidInput("the password must have at least 12 characters")
    return _hasher.hash(password)


def check_password(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


# A well-formed hash to verify against when the user does not exist, so that the
# answer takes as long for an unknown user as for a wrong password.
DUMMY_HASH = _hasher.hash("not-a-real-password-" + base64.b64encode(os.urandom(9)).decode())


class SecretBox:
    """AES-256-GCM with a random nonce per message; text form `v1.<base64>`."""

    def __init__(self, key: bytes) -> None:
        if len(key) != 32:
            raise ConfigError("certs/secret.key must hold 32 bytes")
        self._aead = AESGCM(key)

    @classmethod
    def load(cls, certs_dir: Path) -> SecretBox:
        path = certs_dir / SECRET_KEY_FILE
        try:
            return cls(path.read_bytes())
        except OSError as exc:
            raise ConfigError(f"{path}: cannot read the encryption key ({exc.strerror})") from None

    @staticmethod
    def create(certs_dir: Path) -> None:
        write_private(certs_dir / SECRET_KEY_FILE, AESGCM.generate_key(bit_length=256))

    def encrypt(self, plaintext: str, context: str = "") -> str:
        nonce = os.urandom(12)
        sealed = self._aead.encrypt(nonce, plaintext.encode(), context.encode())
        return "v1." + base64.urlsafe_b64encode(nonce + sealed).decode()

    def decrypt(self, token: str, context: str = "") -> str:
        if not token.startswith("v1."):
            raise InvalidInput("unknown secret format")
        raw = base64.urlsafe_b64decode(token[3:])
        try:
            return self._aead.decrypt(raw[:12], raw[12:], context.encode()).decode()
        except InvalidTag:
            raise InvalidInput("secret cannot be decrypted with this key") from None
