"""Attributes of a verified assertion → the neutral profile fields, per provider preset.

Order of look-up for each field: the admin's override (exclusive when set), the preset's
names, then the generic alias table; within each list exact names first, then a
case-insensitive match (claim URIs and `User.email` spellings vary in case between tenants).
Also maps the AuthnContextClassRef (SAML Authn Context §3.4, Entra/AD FS method URIs) to
OIDC `acr`/`amr` (RFC 8176 values where one exists).

It must only be given attributes read from the element whose signature was verified
(`broker.saml.verify`); it trusts its input and does no crypto itself. Whether the email's
domain is a verified domain of the organization is decided in the core, not here.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from broker.errors import LoginRefused
from broker.saml.presets import (
    CLAIM_ENTRA_GROUPS_LINK,
    FIELDS,
    GENERIC_ALIASES,
    Field,
    Preset,
)

NAMEID_TRANSIENT = "urn:oasis:names:tc:SAML:2.0:nameid-format:transient"
_EMAIL = re.compile(r"^[^@\s<>\"]+@[^@\s<>\"]+\.[^@\s<>\"]+$")
MAX_GROUPS = 2000


@dataclass(frozen=True)
class MappedProfile:
    email: str | None
    given_name: str | None
    family_name: str | None
    groups: tuple[str, ...]
    idp_id: str
    groups_overage: bool  # Entra replaced the groups claim by groups.link (over 150 groups)
    raw_attributes: Mapping[str, tuple[str, ...]]


def looks_like_email(value: str) -> bool:
    return bool(_EMAIL.match(value))


def map_attributes(
    preset: Preset,
    attributes: Mapping[str, Sequence[str]],
    name_id: str,
    name_id_format: str | None,
    overrides: Mapping[str, str] | None = None,
) -> MappedProfile:
    """Pick email, names, groups and the IdP's user id out of `attributes`."""
    overrides = overrides or {}
    unknown = set(overrides) - set(FIELDS)
    if unknown:
        raise ValueError(f"unknown override fields: {sorted(unknown)}")
    attrs = {
        name: tuple(v.strip() for v in values if v and v.strip())
        for name, values in attributes.items()
    }
    folded: dict[str, str] = {}
    for name in attrs:
        folded.setdefault(name.casefold(), name)

    def candidates(field: Field) -> tuple[str, ...]:
        if overrides.get(field):
            return (overrides[field],)
        return preset.attributes.for_field(field) + GENERIC_ALIASES.for_field(field)

    def values(field: Field) -> tuple[str, ...]:
        for candidate in candidates(field):
            found = attrs.get(candidate) or attrs.get(folded.get(candidate.casefold(), ""))
            if found:
                return found
        return ()

    def first(field: Field) -> str | None:
        found = values(field)
        return found[0] if found else None

    email = _email(candidates("email"), attrs, folded, name_id, name_id_format)
    groups = tuple(dict.fromkeys(values("groups")))[:MAX_GROUPS]
    idp_id = first("idp_id") or _subject(name_id, name_id_format, email)
    return MappedProfile(
        email=email,
        given_name=first("given_name"),
        family_name=first("family_name"),
        groups=groups,
        idp_id=idp_id,
        groups_overage=CLAIM_ENTRA_GROUPS_LINK in attrs,
        raw_attributes=attrs,
    )


def _email(
    candidates: Sequence[str],
    attrs: Mapping[str, tuple[str, ...]],
    folded: Mapping[str, str],
    name_id: str,
    name_id_format: str | None,
) -> str | None:
    # Only values shaped like an address count: Entra's `name` claim may hold a UPN such as
    # `x_y.com#EXT#@tenant.onmicrosoft.com`, which is shaped like one and is then up to the
    # core's verified-domain check; a bare user name is skipped.
    for candidate in candidates:
        found = attrs.get(candidate) or attrs.get(folded.get(candidate.casefold(), ""))
        for value in found or ():
            if looks_like_email(value):
                return value
    # Fall back to the NameID when it holds an address: emailAddress format (Okta, OneLogin,
    # Entra) or unspecified holding one (Google, JumpCloud). A NameID that claims the
    # emailAddress format but holds something else is not an email.
    name_id = name_id.strip()
    if name_id and looks_like_email(name_id):
        return name_id
    return None


def _subject(name_id: str, name_id_format: str | None, email: str | None) -> str:
    name_id = name_id.strip()
    if name_id and name_id_format != NAMEID_TRANSIENT:
        return name_id
    # A transient NameID changes at every login: it cannot identify a user.
    if email:
        return email
    raise LoginRefused(
        "no_subject",
        "The identity provider sent no stable user identifier.",
        f"NameID format {name_id_format!r} and no id attribute or email",
    )


# --- AuthnContext → acr / amr -------------------------------------------------------------

_AC = "urn:oasis:names:tc:SAML:2.0:ac:classes:"
_MS_METHOD = "http://schemas.microsoft.com/ws/2008/06/identity/authenticationmethod/"
_MFA = "http://schemas.microsoft.com/claims/multipleauthn"
_AMR_BY_CLASS: dict[str, tuple[str, ...]] = {
    _AC + "Password": ("pwd",),
    _AC + "PasswordProtectedTransport": ("pwd",),
    _AC + "SecureRemotePassword": ("pwd",),
    _AC + "X509": ("x509",),  # no RFC 8176 value for a software certificate
    _AC + "TLSClient": ("x509",),
    _AC + "Smartcard": ("sc",),
    _AC + "SmartcardPKI": ("sc", "pin"),
    _AC + "TimeSyncToken": ("otp",),
    _AC + "MobileTwoFactorContract": ("mfa",),
    _AC + "MobileTwoFactorUnregistered": ("mfa",),
    _AC + "Kerberos": ("kerberos",),
    "urn:federation:authentication:windows": ("kerberos",),  # AD FS Windows integrated auth
    _MS_METHOD + "password": ("pwd",),
    _MS_METHOD + "x509": ("x509",),
    _MS_METHOD + "windows": ("kerberos",),
    _MS_METHOD + "kerberos": ("kerberos",),
    _MFA: ("mfa",),  # Entra ID and AD FS
    "https://refeds.org/profile/mfa": ("mfa",),
    "http://schemas.microsoft.com/ws/2012/12/authmethod/phoneappnotification": ("mfa",),
    "http://schemas.microsoft.com/ws/2012/12/authmethod/otp": ("otp",),
}


def authn_context_to_acr_amr(
    class_ref: str | None, method_refs: Sequence[str] = ()
) -> tuple[str | None, list[str]]:
    """acr is the class reference itself; amr merges it with Entra's authnmethodsreferences.

    `method_refs` are the values of `http://schemas.microsoft.com/claims/authnmethodsreferences`
    when the IdP sends it (Entra ID does; see its SAML token claims reference).
    """
    acr = class_ref.strip() if class_ref and class_ref.strip() else None
    amr: list[str] = []
    for ref in ([acr] if acr else []) + [m.strip() for m in method_refs]:
        for value in _AMR_BY_CLASS.get(ref, ()):
            if value not in amr:
                amr.append(value)
    if "mfa" not in amr and len({v for v in amr if v != "pin"}) > 1:
        amr.append("mfa")  # two distinct factors are multi-factor (RFC 8176 §2, "mfa")
    return acr, amr
