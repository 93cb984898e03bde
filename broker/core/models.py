"""Plain records the core works with. The store maps rows to these; edges map wire formats."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

Seat = Literal["full", "basic"]
DomainState = Literal["pending", "verified", "failed"]
ConnectionState = Literal["draft", "active", "inactive"]
ConnectionType = Literal["saml", "oidc"]


@dataclass(frozen=True)
class Organization:
    id: str
    name: str
    sso_enabled: bool
    dsync_enabled: bool
    default_seat: Seat
    default_role: str
    created_at: float
    updated_at: float
    external_id: str | None = None


@dataclass(frozen=True)
class Domain:
    id: str
    organization_id: str
    domain: str
    state: DomainState
    verification_token: str
    created_at: float
    verified_at: float | None = None
    last_checked_at: float | None = None
    next_check_at: float | None = None
    check_count: int = 0
    last_error: str | None = None


@dataclass(frozen=True)
class Connection:
    id: str
    organization_id: str
    type: ConnectionType
    preset: str
    name: str
    state: ConnectionState
    config: dict[str, Any]
    created_at: float
    updated_at: float
    tested_at: float | None = None


@dataclass(frozen=True)
class Client:
    id: str
    name: str
    secret_hash: str | None
    redirect_uris: tuple[str, ...]
    post_logout_redirect_uris: tuple[str, ...] = ()
    initiate_login_uri: str | None = None
    backchannel_logout_uri: str | None = None
    token_endpoint_auth_method: str = "client_secret_basic"
    id_token_signed_response_alg: str = "RS256"
    jwks: dict[str, Any] | None = None
    front_channel_only: bool = False
    webhook_url: str | None = None
    webhook_secret_enc: str | None = None
    organization_ids: tuple[str, ...] = ()
    created_at: float = 0.0
    updated_at: float = 0.0


@dataclass(frozen=True)
class Admin:
    id: str
    username: str
    password_hash: str
    created_at: float
    last_login_at: float | None = None


@dataclass(frozen=True)
class Event:
    seq: int
    id: str
    type: str
    organization_id: str | None
    data: dict[str, Any]
    created_at: float


@dataclass(frozen=True)
class AuditEntry:
    actor: str
    action: str
    organization_id: str | None = None
    target: str | None = None
    correlation_id: str | None = None
    remote_addr: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)
    at: float = 0.0
    id: int = 0


@dataclass(frozen=True)
class UpstreamIdentity:
    """What an upstream login proved: the one neutral type that crosses the upstream
    seam (dex's connector.Identity). No pysaml2 or Authlib object reaches the core."""

    connection_id: str
    idp_subject: str  # SAML NameID or OIDC `sub`
    email: str | None
    given_name: str | None = None
    family_name: str | None = None
    groups: tuple[str, ...] = ()
    groups_overage: bool = False  # Entra sent groups.link/_claim_names instead of groups
    email_verified_by_idp: bool | None = None
    acr: str | None = None
    amr: tuple[str, ...] = ()
    raw_attributes: dict[str, Any] = field(default_factory=dict)
    authn_instant: float | None = None


DirectoryUserState = Literal["active", "inactive", "deleted"]


@dataclass(frozen=True)
class DirectoryUser:
    """A user provisioned over SCIM. `directory_id` is None once unlinked (Directory Sync off)."""

    id: str  # usr_...
    organization_id: str
    directory_id: str | None
    user_name: str
    email: str | None
    state: DirectoryUserState
    role: str
    seat: Seat
    external_id: str | None = None
    idp_id: str | None = None
    given_name: str | None = None
    family_name: str | None = None
    groups: tuple[str, ...] = ()  # display names
    raw: dict[str, Any] = field(default_factory=dict)
    version: int = 1
    created_at: float = 0.0
    updated_at: float = 0.0


@dataclass(frozen=True)
class DirectoryGroup:
    id: str  # grp_...
    organization_id: str
    directory_id: str | None
    display_name: str
    external_id: str | None = None
    raw: dict[str, Any] = field(default_factory=dict)
    version: int = 1
    created_at: float = 0.0
    updated_at: float = 0.0
