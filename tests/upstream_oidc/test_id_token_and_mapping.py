"""ID token validation (OIDC Core §3.1.3.7) with keys made here, and claims → identity
through the presets."""

from __future__ import annotations

import base64
import hashlib
import json
import time
from typing import Any

import pytest
from joserfc import jwt
from joserfc.jwk import OctKey, RSAKey

from broker.core import oidc_connections
from broker.upstream_oidc import mapping, presets
from broker.upstream_oidc.id_token import Expectations, IdTokenError, read_header, validate

ISS, CLIENT, NONCE = "https://idp.example.com", "client-1", "nonce-1"
KEY = RSAKey.generate_key(2048, parameters={"kid": "k1", "alg": "RS256"}, private=True)


def _token(key: Any = KEY, alg: str = "RS256", **claims: Any) -> str:
    now = int(time.time())
    body = {
        "iss": ISS,
        "aud": CLIENT,
        "sub": "u1",
        "iat": now,
        "exp": now + 300,
        "nonce": NONCE,
        **claims,
    }
    body = {k: v for k, v in body.items() if v is not None}
    return jwt.encode({"alg": alg, "kid": "k1"}, body, key)


def _check(raw: str, **expect: Any) -> dict[str, Any]:
    e = Expectations(
        issuer=ISS,
        client_id=CLIENT,
        nonce=NONCE,
        now=time.time(),
        allowed_algs=("RS256",),
        **expect,
    )
    return validate(raw, KEY, read_header(raw), e)


def _kind(raw: str, **expect: Any) -> str:
    with pytest.raises(IdTokenError) as caught:
        _check(raw, **expect)
    return caught.value.kind


def test_valid_token() -> None:
    assert _check(_token())["sub"] == "u1"
    assert _check(_token(aud=[CLIENT, "other"], azp=CLIENT))["azp"] == CLIENT


@pytest.mark.parametrize(
    ("claims", "kind"),
    [
        ({"iss": ISS + "/"}, "wrong_issuer"),
        ({"aud": "other"}, "wrong_audience"),
        ({"aud": [CLIENT, "other"]}, "wrong_audience"),  # several audiences need azp
        ({"azp": "other"}, "wrong_audience"),
        ({"exp": int(time.time()) - 600}, "expired"),
        ({"iat": int(time.time()) + 600}, "issued_in_future"),
        ({"nonce": "other"}, "nonce_mismatch"),
        ({"nonce": None}, "nonce_mismatch"),
        ({"sub": None}, "malformed"),
        ({"exp": "soon"}, "malformed"),
    ],
)
def test_claim_checks(claims: dict[str, Any], kind: str) -> None:
    assert _kind(_token(**claims)) == kind


def test_skew_is_allowed() -> None:
    assert _check(_token(exp=int(time.time()) - 60))  # within the default 120 s
    assert _kind(_token(exp=int(time.time()) - 60), skew=10) == "expired"


def test_signature_and_algorithm() -> None:
    other = RSAKey.generate_key(2048, parameters={"kid": "k1"}, private=True)
    assert _kind(_token(key=other)) == "bad_signature"
    # HMAC with the public key's bytes as secret (the classic confusion): refused by alg.
    hmac_key = OctKey.import_key(b"a-shared-secret-of-enough-length-123")
    assert _kind(_token(key=hmac_key, alg="HS256")) == "bad_algorithm"
    header = base64.urlsafe_b64encode(json.dumps({"alg": "none"}).encode()).rstrip(b"=")
    assert _kind(header.decode() + "." + _token().split(".")[1] + ".") == "bad_algorithm"
    assert _kind("a.b.c.d.e") == "encrypted"


def test_at_hash() -> None:
    access = "access-token-1"
    digest = hashlib.sha256(access.encode()).digest()[:16]
    good = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
    assert _check(_token(at_hash=good), access_token=access)
    assert _kind(_token(at_hash="bad"), access_token=access) == "at_hash_mismatch"


def test_every_core_preset_has_claim_names_and_a_source() -> None:
    assert set(oidc_connections.OIDC_PRESETS) == set(presets.PRESETS)
    for preset in presets.PRESETS.values():
        assert preset.source.startswith("https://") and preset.guidance


def test_mapping_with_presets_and_overrides() -> None:
    claims = {
        "sub": "s1",
        "oid": "o1",
        "preferred_username": "ada@example.com",
        "given_name": "Ada",
        "groups": ["g1"],
        "roles": ["Admin", "g1"],
        "email_verified": "true",
        "amr": ["pwd"],
        "acr": "1",
        "auth_time": 1700000000,
        "nonce": "n",
    }
    entra = mapping.to_identity("conn_1", claims, presets.preset("entra"), {})
    assert entra.idp_subject == "o1" and entra.email == "ada@example.com"
    assert entra.groups == ("g1", "Admin") and entra.email_verified_by_idp is True
    assert entra.amr == ("pwd",) and entra.acr == "1" and entra.authn_instant == 1700000000.0
    assert "nonce" not in entra.raw_attributes and not entra.groups_overage
    overage = mapping.to_identity(
        "conn_1",
        {**claims, "groups": None, "_claim_names": {"groups": "src1"}},
        presets.preset("entra"),
        {},
    )
    assert overage.groups_overage is True
    generic = mapping.to_identity(
        "conn_1",
        claims,
        presets.preset("generic"),
        {"email": "preferred_username", "groups": "roles"},
    )
    assert generic.idp_subject == "s1" and generic.email == "ada@example.com"
    assert generic.groups == ("Admin", "g1")
    google = presets.preset("google")
    assert google.groups == () and google.hosted_domain_claim == "hd"
    assert mapping.needs_userinfo({"sub": "s"}, google, {})
    assert not mapping.needs_userinfo({"email": "a@b.c", "family_name": "B"}, google, {})
