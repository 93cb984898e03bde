"""ID token validation, OpenID Connect Core §3.1.3.7 (and §3.1.3.8 for `at_hash`).

Signature with joserfc against the IdP's published key for the token's `kid` (the
caller looks it up in the JWKS cache); asymmetric algorithms only, from the IdP's
advertised list — never `none`, never HMAC (a client secret is not a key we let an IdP
sign identity with). Then the claims, each failure naming expected vs got in its
private detail: `iss` exactly the discovered issuer, `aud` containing our client ID
(several audiences only with `azp` = our client ID), `exp` in the future and `iat` not
in the future (both within the allowed skew), `nonce` equal to the one stored on the flow
row, `sub` present.

It must never: read a claim from a token whose signature was not checked, or accept
an algorithm named by the token that the relying party did not allow.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, OKPKey, RSAKey

from broker.errors import BrokerError

ASYMMETRIC_ALGS = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
)
_HASH_OF = {"256": hashlib.sha256, "384": hashlib.sha384, "512": hashlib.sha512}


class IdTokenError(BrokerError):
    """The ID token was refused; `kind` is a stable reason (bad_signature, wrong_issuer,
    wrong_audience, expired, issued_in_future, nonce_mismatch, malformed, ...)."""

    code = "bad_id_token"

    def __init__(self, kind: str, detail: str) -> None:
        super().__init__("The identity provider's sign-in token could not be accepted.", detail)
        self.kind = kind


@dataclass(frozen=True)
class Expectations:
    issuer: str
    client_id: str
    nonce: str
    now: float
    skew: float = 120.0
    allowed_algs: Sequence[str] = ("RS256",)
    access_token: str | None = None  # checked against `at_hash` when both are present


@dataclass(frozen=True)
class Header:
    alg: str
    kid: str | None


def read_header(raw: str) -> Header:
    """The protected header, parsed without trusting anything in it except to choose
    which allowed key and algorithm to try."""
    parts = raw.split(".")
    if len(parts) != 3:
        kind = "encrypted" if len(parts) == 5 else "malformed"
        raise IdTokenError(kind, f"an ID token must be a compact JWS, got {len(parts)} parts")
    try:
        header = json.loads(_b64decode(parts[0]))
    except ValueError as exc:
        raise IdTokenError("malformed", f"header is not base64url JSON: {exc}") from exc
    if not isinstance(header, dict) or not isinstance(header.get("alg"), str):
        raise IdTokenError("malformed", "header has no alg")
    kid = header.get("kid")
    return Header(alg=header["alg"], kid=kid if isinstance(kid, str) else None)


def allowed_algorithms(advertised: Sequence[str]) -> tuple[str, ...]:
    allowed = tuple(a for a in advertised if a in ASYMMETRIC_ALGS)
    return allowed or ("RS256",)


def check_alg(header: Header, expect: Expectations) -> None:
    if header.alg not in expect.allowed_algs or header.alg not in ASYMMETRIC_ALGS:
        raise IdTokenError(
            "bad_algorithm",
            f"alg {header.alg!r} is not allowed (allowed: {', '.join(expect.allowed_algs)})",
        )


def validate(
    raw: str, key: RSAKey | ECKey | OKPKey, header: Header, expect: Expectations
) -> dict[str, Any]:
    """Verify the signature with `key`, then every claim; return the claims."""
    check_alg(header, expect)
    try:
        token = jwt.decode(raw, key, algorithms=[header.alg])
    except JoseError as exc:
        raise IdTokenError("bad_signature", f"signature check failed: {exc!r}") from exc
    except ValueError as exc:
        raise IdTokenError("malformed", f"token could not be decoded: {exc}") from exc
    claims = dict(token.claims)
    _check_claims(claims, expect, header.alg)
    return claims


def _check_claims(claims: dict[str, Any], expect: Expectations, alg: str) -> None:
    if claims.get("iss") != expect.issuer:
        raise IdTokenError(
            "wrong_issuer", f"iss: expected {expect.issuer!r}, got {claims.get('iss')!r}"
        )
    aud = claims.get("aud")
    audiences = aud if isinstance(aud, list) else [aud]
    if expect.client_id not in audiences:
        raise IdTokenError("wrong_audience", f"aud: expected {expect.client_id!r}, got {aud!r}")
    azp = claims.get("azp")
    if len(audiences) > 1 and azp != expect.client_id:
        raise IdTokenError(
            "wrong_audience", f"several audiences {aud!r} and azp {azp!r} is not our client ID"
        )
    if azp is not None and azp != expect.client_id:
        raise IdTokenError("wrong_audience", f"azp: expected {expect.client_id!r}, got {azp!r}")
    raw_exp, raw_iat = claims.get("exp"), claims.get("iat")
    if not _number(raw_exp) or not _number(raw_iat):
        raise IdTokenError(
            "malformed", f"exp and iat must be numbers, got {raw_exp!r}, {raw_iat!r}"
        )
    exp, iat = float(raw_exp or 0), float(raw_iat or 0)
    if exp <= expect.now - expect.skew:
        raise IdTokenError("expired", f"exp {exp} is before now {expect.now:.0f} - skew")
    if iat > expect.now + expect.skew:
        raise IdTokenError("issued_in_future", f"iat {iat} is after now {expect.now:.0f} + skew")
    nonce = claims.get("nonce")
    if not isinstance(nonce, str) or not hmac.compare_digest(nonce.encode(), expect.nonce.encode()):
        raise IdTokenError("nonce_mismatch", f"nonce: expected the flow's, got {nonce!r}")
    sub = claims.get("sub")
    if not isinstance(sub, str) or not sub or len(sub) > 255:
        raise IdTokenError("malformed", f"sub must be a non-empty string, got {sub!r}")
    at_hash = claims.get("at_hash")
    if at_hash is not None and expect.access_token is not None:
        expected = _at_hash(expect.access_token, alg)
        if expected is not None and not hmac.compare_digest(str(at_hash), expected):
            raise IdTokenError("at_hash_mismatch", "at_hash does not match the access token")


def _at_hash(access_token: str, alg: str) -> str | None:
    """OIDC Core §3.1.3.6: left half of the hash named by the alg's size, base64url."""
    hash_fn = _HASH_OF.get(alg[-3:])
    if hash_fn is None:  # EdDSA: the spec names no hash; skip (at_hash is optional)
        return None
    digest = hash_fn(access_token.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest[: len(digest) // 2]).rstrip(b"=").decode()


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _b64decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
