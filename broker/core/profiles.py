"""Identity → profile → ID-token claims, and the domain rule (DESIGN §5, §6).

`sub` is a deterministic hash of (organization id, IdP subject): stable for as long as
the IdP keeps the subject, the same across the organization's connections and workers,
different across organizations (so one IdP subject never maps to two tenants' users),
and needs no table or write on the login path. It reveals neither the IdP subject nor
the organization.

`session_refusal` re-applies the login's policy to a broker session later on (answering
an authorize request from it, redeeming a code, refreshing): policy may have changed
since the login, and a deprovisioned user must lose access at once (DESIGN §4, §6).

The domain rule: the email an IdP asserts must be at a VERIFIED domain of the
organization that owns the connection, else the login is refused (no cross-tenant
takeover by a misconfigured or hostile IdP). So `email_verified` is true on every token
we issue, and only for that reason (never because the IdP said so).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from broker.core import domains
from broker.core.discovery import email_domain
from broker.core.models import Connection, DirectoryUser, Organization, UpstreamIdentity
from broker.core.ports import BrokerSession, Store
from broker.errors import LoginRefused, NotFound


def subject_for(organization_id: str, idp_subject: str) -> str:
    digest = hashlib.sha256(f"exec-broker-sub\x00{organization_id}\x00{idp_subject}".encode())
    return "u_" + digest.hexdigest()[:40]


def normalized_email(identity: UpstreamIdentity) -> str:
    email = (identity.email or "").strip()
    if not email or email.count("@") != 1 or not email_domain(email):
        raise LoginRefused(
            "email_missing",
            "Your identity provider did not send a usable email address.",
            f"email attribute was {identity.email!r}",
        )
    local, domain = email.split("@")
    return f"{local}@{domain.lower()}"


def check_domain(store: Store, organization_id: str, email: str) -> None:
    """DESIGN §6: the email's domain must be verified by the connection's organization."""
    domain = email_domain(email) or ""
    if not domains.is_verified_for(store, organization_id, domain):
        raise LoginRefused(
            "domain_not_verified",
            f"Sign-in with an address at {domain} is not allowed for this organization.",
            f"email domain {domain!r} is not a verified domain of {organization_id}",
        )


def build_claims(
    org: Organization,
    connection: Connection,
    identity: UpstreamIdentity,
    email: str,
    user: DirectoryUser | None,
) -> dict[str, Any]:
    """The user claims of DESIGN §5 (the token layer adds iss, aud, exp, iat, nonce, sid)."""
    given = (user.given_name if user and user.given_name else identity.given_name) or None
    family = (user.family_name if user and user.family_name else identity.family_name) or None
    name = " ".join(part for part in (given, family) if part) or None
    claims: dict[str, Any] = {
        "sub": subject_for(org.id, identity.idp_subject),
        "email": email,
        "email_verified": True,  # check_domain passed: the domain is verified for org.id
        "given_name": given,
        "family_name": family,
        "name": name,
        "org_id": org.id,
        "connection_id": connection.id,
        "connection_type": connection.type,
        "idp_id": identity.idp_subject,
        "groups": list(user.groups if user else identity.groups),
        "role": user.role if user else org.default_role,
        "seat": user.seat if user else org.default_seat,
    }
    if user is not None:
        claims["directory_user_id"] = user.id
    if identity.acr:
        claims["acr"] = identity.acr
    if identity.amr:
        claims["amr"] = list(identity.amr)
    return {k: v for k, v in claims.items() if v is not None}


def overage_note(identity: UpstreamIdentity, user: DirectoryUser | None) -> dict[str, str]:
    """Entra's group overage (groups.link / _claim_names instead of groups) is never a silent
    "no groups": build_claims takes a linked directory user's groups; say which happened."""
    if not identity.groups_overage:
        return {}
    if user is not None:
        return {"groups_overage": "groups taken from Directory Sync"}
    return {
        "groups_overage": "the IdP sent a groups link (over 150 groups) and the user "
        "is not in Directory Sync: no groups available"
    }


def identity_summary(identity: UpstreamIdentity) -> dict[str, Any]:
    """What the admin sees of a test login: everything the IdP sent, nothing secret."""
    return {
        "idp_subject": identity.idp_subject,
        "email": identity.email,
        "given_name": identity.given_name,
        "family_name": identity.family_name,
        "groups": list(identity.groups),
        "groups_overage": identity.groups_overage,
        "email_verified_by_idp": identity.email_verified_by_idp,
        "acr": identity.acr,
        "amr": list(identity.amr),
        # Round-trip through JSON so that odd values (datetimes, bytes) become text.
        "raw_attributes": json.loads(json.dumps(identity.raw_attributes, default=str)),
    }


def session_refusal(store: Store, session: BrokerSession) -> str | None:
    """Why nothing more may be issued from this broker session, or None when it may: the
    session ended (logout, deprovisioning, SSO off, connection deactivated), its
    connection is no longer active, SSO is off, its email's domain is no longer verified
    for the organization, or (Directory Sync on) the directory user is gone or inactive.
    Expiry is the caller's business: a refresh token outlives its session on purpose."""
    if session.ended_at is not None:
        return f"session ended ({session.end_reason})"
    try:
        connection = store.connections.get(session.connection_id)
        org = store.organizations.get(session.organization_id)
    except NotFound:
        return "connection or organization removed"
    if connection.state != "active":
        return f"connection {connection.id} is {connection.state}"
    if not org.sso_enabled:
        return f"{org.id} has SSO off"
    domain = email_domain(session.email or "") or ""
    if not domains.is_verified_for(store, org.id, domain):
        return f"email domain {domain!r} is no longer verified for {org.id}"
    if org.dsync_enabled:
        user = store.users.find_for_login(org.id, session.claims.get("idp_id"), session.email)
        if user is None or user.state != "active":
            return "directory user " + ("missing" if user is None else f"{user.id} {user.state}")
    return None
