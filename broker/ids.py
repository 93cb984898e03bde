"""Prefixed identifiers and secrets.

Ids are `prefix_` + 26 Crockford base32 characters (time-ordered, like a ULID) so
that they sort by creation and say what they name. Secrets carry a `brk_*_`
prefix so that a leaked one is easy to grep for (DESIGN §6).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import time

_CROCKFORD = "0123456789abcdefghjkmnpqrstvwxyz"

PREFIXES = frozenset(
    {
        "org",
        "dom",
        "conn",
        "dir",
        "usr",
        "grp",
        "evt",
        "flow",
        "ses",
        "cli",
        "adm",
        "key",
        "aud",
        "whk",
        "dlv",
        "rmap",
        "fam",
        "req",
        "att",
    }
)


def _encode(value: int, length: int) -> str:
    chars = []
    for _ in range(length):
        value, rem = divmod(value, 32)
        chars.append(_CROCKFORD[rem])
    return "".join(reversed(chars))


def new_id(prefix: str) -> str:
    """A new time-ordered id such as `org_01j9...`."""
    if prefix not in PREFIXES:
        raise ValueError(f"unknown id prefix {prefix!r}")
    millis = time.time_ns() // 1_000_000
    randomness = int.from_bytes(os.urandom(10), "big")
    return f"{prefix}_{_encode(millis, 10)}{_encode(randomness, 16)}"


def has_prefix(value: str, prefix: str) -> bool:
    return value.startswith(prefix + "_") and len(value) == len(prefix) + 27


def new_secret(kind: str, nbytes: int = 32) -> str:
    """A high-entropy secret such as `brk_scim_...`; shown once, stored hashed."""
    return f"brk_{kind}_{secrets.token_urlsafe(nbytes)}"


def new_token(nbytes: int = 32) -> str:
    """An unprefixed random token (authorization codes, CSRF tokens, state)."""
    return secrets.token_urlsafe(nbytes)


def hash_token(token: str) -> str:
    """SHA-256 of a high-entropy token. Enough for random secrets (no dictionary to
    attack); passwords use argon2 instead (broker.crypto.passwords)."""
    return hashlib.sha256(token.encode()).hexdigest()


def tokens_equal(a: str, b: str) -> bool:
    """Constant-time comparison of two secrets or their hashes."""
    return hmac.compare_digest(a.encode(), b.encode())
