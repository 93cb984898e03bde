"""Validated ID token claims (+ UserInfo) → UpstreamIdentity, the one type the core sees.

Claim names come from the connection's overrides first (`config["claims"]`, e.g.
`{"email": "upn"}`), then the provider preset (broker.upstream_oidc.presets). Values are
read defensively: IdPs send booleans as strings (CyberArk documents `email_verified` as a
String), groups as one string or a list. Entra's group overage (more than 200 groups:
`_claim_names`/`_claim_sources` instead of `groups`, or `hasgroups`) is reported as
`groups_overage=True`, never followed (the Graph call would need a token we do not have).
Entra app `roles` are added to the groups (de-duplicated), as role mappings work on groups.

`email_verified` from the IdP is only recorded; the core's verified-domain rule decides
(DESIGN §6).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from broker.core.models import UpstreamIdentity
from broker.upstream_oidc.presets import OidcPreset

# Protocol claims that describe the token, not the user: kept out of raw attributes.
_PROTOCOL = frozenset({"nonce", "at_hash", "c_hash", "s_hash", "exp", "iat", "nbf", "jti"})


def _candidates(field: str, preset: OidcPreset, overrides: Mapping[str, str]) -> tuple[str, ...]:
    override = overrides.get(field)
    return (override,) if override else preset.candidates(field)


def _first_string(claims: Mapping[str, Any], names: tuple[str, ...]) -> str | None:
    for name in names:
        value = claims.get(name)
        if isinstance(value, list) and value and isinstance(value[0], str):
            value = value[0]
        if isinstance(value, str) and value.strip():
            return value.strip()
    return None


def _string_list(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value] if value.strip() else []
    if isinstance(value, list):
        return [str(v) for v in value if isinstance(v, str | int) and str(v).strip()]
    return []


def _bool(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    return None


def groups_overage(claims: Mapping[str, Any]) -> bool:
    """Entra: `_claim_names: {"groups": "src1"}` (OIDC Core §5.6.2 distributed claims) or
    `hasgroups: true` replaces the groups claim when a user is in too many groups."""
    names = claims.get("_claim_names")
    return (isinstance(names, dict) and "groups" in names) or claims.get("hasgroups") is True


def to_identity(
    connection_id: str,
    claims: Mapping[str, Any],
    preset: OidcPreset,
    overrides: Mapping[str, str],
) -> UpstreamIdentity:
    """`claims` are the validated ID token claims, already merged with UserInfo's."""
    subject = _first_string(claims, _candidates("idp_id", preset, overrides)) or str(claims["sub"])
    groups: list[str] = []
    for field in ("groups", "roles"):
        for name in _candidates(field, preset, overrides):
            for group in _string_list(claims.get(name)):
                if group not in groups:
                    groups.append(group)
    acr = claims.get("acr")
    auth_time = claims.get("auth_time")
    return UpstreamIdentity(
        connection_id=connection_id,
        idp_subject=subject,
        email=_first_string(claims, _candidates("email", preset, overrides)),
        given_name=_first_string(claims, _candidates("given_name", preset, overrides)),
        family_name=_first_string(claims, _candidates("family_name", preset, overrides)),
        groups=tuple(groups),
        groups_overage=preset.groups_overage_claim_names and groups_overage(claims),
        email_verified_by_idp=_bool(claims.get("email_verified")),
        acr=acr if isinstance(acr, str) else None,
        amr=tuple(_string_list(claims.get("amr"))),
        raw_attributes={k: v for k, v in claims.items() if k not in _PROTOCOL},
        authn_instant=float(auth_time)
        if isinstance(auth_time, int | float) and not isinstance(auth_time, bool)
        else None,
    )


def needs_userinfo(
    claims: Mapping[str, Any], preset: OidcPreset, overrides: Mapping[str, str]
) -> bool:
    """OIDC Core §5.4: many IdPs put profile claims only in UserInfo. Ask when the email or
    both names are missing from the ID token."""
    if not _first_string(claims, _candidates("email", preset, overrides)):
        return True
    return not (
        _first_string(claims, _candidates("given_name", preset, overrides))
        or _first_string(claims, _candidates("family_name", preset, overrides))
    )
