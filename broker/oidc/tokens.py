"""Minting and checking the JWTs the provider issues, with joserfc and the KeyRing.

- ID tokens: OIDC Core §2 and §3.1.3.6 claims plus DESIGN §5's; RS256 unless the client
  asks ES256 (`id_token_signed_response_alg`); `kid` always set so that rotation works.
- Access tokens: RFC 9068 JWTs (`typ: at+jwt`), short-lived and self-contained: nothing
  is written when one is issued. Userinfo refuses one whose `jti`, grant (`grant_id`,
  a private claim, RFC 9068 §2.2.3) or session (`sid`) was revoked (core.grants).
- API access tokens (client credentials grant, RFC 6749 §4.4): RFC 9068 JWTs whose
  audience is the Exec API (core.api_access.audience) and whose subject is the client.
- Logout tokens: OpenID Connect Back-Channel Logout 1.0 §2.4 (`typ: logout+jwt`, `sid`,
  `events`, never a `nonce`).
Never hand-rolled: joserfc signs and verifies; this module only chooses claims.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from broker.crypto.signing import Alg, KeyRing

BACKCHANNEL_EVENT = "http://schemas.openid.net/event/backchannel-logout"


def sign(keyring: KeyRing, alg: str, claims: dict[str, Any], typ: str | None = None) -> str:
    loaded = keyring.signing_key(alg if alg in ("RS256", "ES256") else "RS256")  # type: ignore[arg-type]
    header: dict[str, Any] = {"alg": loaded.record.alg, "kid": loaded.record.kid}
    if typ:
        header["typ"] = typ
    return jwt.encode(header, claims, loaded.key)


def id_token(
    keyring: KeyRing,
    *,
    issuer: str,
    client_id: str,
    alg: str,
    user_claims: dict[str, Any],
    ttl: int,
    nonce: str | None = None,
    auth_time: float | None = None,
    sid: str | None = None,
    now: float | None = None,
) -> str:
    now = int(time.time() if now is None else now)
    claims = dict(user_claims)
    claims.update({"iss": issuer, "aud": client_id, "iat": now, "exp": now + ttl, "azp": client_id})
    if nonce is not None:
        claims["nonce"] = nonce
    if auth_time is not None:
        claims["auth_time"] = int(auth_time)
    if sid is not None:
        claims["sid"] = sid
    return sign(keyring, alg, claims)


def access_token(
    keyring: KeyRing,
    *,
    issuer: str,
    client_id: str,
    alg: Alg,
    subject: str,
    scope: str,
    ttl: int,
    auth_time: float,
    sid: str,
    org_id: str | None,
    grant_id: str,
    now: float | None = None,
) -> tuple[str, str, int]:
    """(token, jti, exp) of an RFC 9068 access token; its audience is our userinfo."""
    now = int(time.time() if now is None else now)
    jti = uuid.uuid4().hex
    claims: dict[str, Any] = {
        "iss": issuer,
        "sub": subject,
        "aud": issuer + "/oauth2/userinfo",
        "client_id": client_id,
        "iat": now,
        "exp": now + ttl,
        "jti": jti,
        "scope": scope,
        "auth_time": int(auth_time),
        "sid": sid,
        "grant_id": grant_id,
    }
    if org_id:
        claims["org_id"] = org_id
    return sign(keyring, alg, claims, typ="at+jwt"), jti, now + ttl


def api_access_token(
    keyring: KeyRing,
    *,
    issuer: str,
    audience: str,
    client_id: str,
    alg: str,
    scope: str,
    ttl: int,
    now: float | None = None,
) -> str:
    """An RFC 9068 access token for the client itself (RFC 6749 §4.4): `sub` is the
    client (RFC 9068 §2.2: no resource owner), the audience is the API it may call."""
    now = int(time.time() if now is None else now)
    claims = {
        "iss": issuer,
        "sub": client_id,
        "aud": audience,
        "client_id": client_id,
        "iat": now,
        "exp": now + ttl,
        "jti": uuid.uuid4().hex,
        "scope": scope,
    }
    return sign(keyring, alg, claims, typ="at+jwt")


def logout_token(
    keyring: KeyRing,
    *,
    issuer: str,
    client_id: str,
    alg: str,
    subject: str,
    sid: str,
    now: float | None = None,
) -> str:
    now = int(time.time() if now is None else now)
    claims = {
        "iss": issuer,
        "aud": client_id,
        "iat": now,
        "exp": now + 120,
        "jti": uuid.uuid4().hex,
        "sub": subject,
        "sid": sid,
        "events": {BACKCHANNEL_EVENT: {}},
    }
    return sign(keyring, alg, claims, typ="logout+jwt")


def verify(
    keyring: KeyRing,
    token: str,
    *,
    issuer: str,
    typ: str | None,
    audience: str | None = None,
    check_exp: bool = True,
    now: float | None = None,
    forbid_typ: bool = False,
) -> dict[str, Any] | None:
    """Claims of one of our own tokens when the signature, issuer, type, audience and
    (unless told otherwise) expiry hold; None otherwise. `forbid_typ`: the token must
    have no explicit type (ID tokens; access and logout tokens are typed)."""
    keys: KeySet = keyring.verification_keys()
    try:
        decoded = jwt.decode(token, keys, algorithms=["RS256", "ES256"])
    except (JoseError, ValueError):
        return None
    if typ is not None and decoded.header.get("typ") != typ:
        return None
    if forbid_typ and decoded.header.get("typ") not in (None, "JWT"):
        return None
    options: dict[str, Any] = {"iss": {"essential": True, "value": issuer}}
    if audience is not None:
        options["aud"] = {"essential": True, "value": audience}
    registry = jwt.JWTClaimsRegistry(now=int(now) if now else None, leeway=0, **options)
    claims = dict(decoded.claims)
    if not check_exp:
        claims.pop("exp", None)
    try:
        registry.validate(claims)
    except JoseError:
        return None
    return claims
