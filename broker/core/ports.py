"""What the core needs from the outside world, as Protocols.

The SQLite store (broker.storage) implements the repositories; broker.dns the TXT
look-up. Conventions (dex storage/storage.go): `get_*` raises NotFound, `create_*`
raises AlreadyExists, single-use things are `consume_*`d atomically. Every method
runs inside the caller's transaction when there is one (`store.transaction()`).
"""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from broker.core.directory_types import Directory, JournalEntry, Page, RoleMapping
from broker.core.models import (
    Admin,
    AuditEntry,
    Client,
    Connection,
    DirectoryGroup,
    DirectoryUser,
    Domain,
    Event,
    Organization,
)
from broker.core.query import Query


class OrganizationRepo(Protocol):
    def create(self, org: Organization) -> None: ...
    def get(self, org_id: str) -> Organization: ...
    def list(self) -> builtins.list[Organization]: ...
    def update(self, org_id: str, **fields: Any) -> Organization: ...


class DomainRepo(Protocol):
    def create(self, domain: Domain) -> None: ...
    def get(self, domain_id: str) -> Domain: ...
    def find(self, organization_id: str, domain: str) -> Domain: ...
    def list(self, organization_id: str) -> builtins.list[Domain]: ...
    def verified_owner(self, domain: str) -> Domain | None: ...
    def due_for_check(self, now: float, limit: int) -> builtins.list[Domain]: ...
    def update(self, domain_id: str, **fields: Any) -> Domain: ...
    def delete(self, domain_id: str) -> None: ...


class ConnectionRepo(Protocol):
    def create(self, connection: Connection) -> None: ...
    def get(self, connection_id: str) -> Connection: ...
    def list(self, organization_id: str | None = None) -> builtins.list[Connection]: ...
    def update(self, connection_id: str, **fields: Any) -> Connection: ...
    def delete(self, connection_id: str) -> None: ...


class ClientRepo(Protocol):
    def create(self, client: Client) -> None: ...
    def get(self, client_id: str) -> Client: ...
    def list(self) -> builtins.list[Client]: ...
    def update(self, client_id: str, **fields: Any) -> Client: ...
    def bind_organization(self, client_id: str, organization_id: str) -> None: ...


class AdminRepo(Protocol):
    def create(self, admin: Admin) -> None: ...
    def get_by_username(self, username: str) -> Admin: ...
    def count(self) -> int: ...
    def update(self, admin_id: str, **fields: Any) -> None: ...


@dataclass(frozen=True)
class AdminSession:
    """A signed-in setup-UI administrator (core.admin_sessions). `id` is the cookie's hash."""

    id: str
    admin_id: str
    username: str
    csrf_token: str
    remote_addr: str | None
    created_at: float
    last_seen_at: float


@dataclass(frozen=True)
class LoginThrottle:
    failures: int
    window_start: float
    locked_until: float | None = None


class AdminSessionRepo(Protocol):
    def create(
        self,
        session_hash: str,
        admin_id: str,
        csrf_token: str,
        remote_addr: str | None,
        user_agent: str | None,
        now: float,
    ) -> None: ...
    def live(self, session_hash: str) -> AdminSession | None:
        """The session whose cookie hashes to this, unless it was ended."""
        ...

    def touch(self, session_hash: str, now: float) -> None: ...
    def end(self, session_hash: str, now: float) -> None: ...
    def throttle(self, username: str, remote_addr: str) -> LoginThrottle | None: ...
    def set_throttle(self, username: str, remote_addr: str, state: LoginThrottle) -> None: ...
    def clear_throttle(self, username: str, remote_addr: str) -> None: ...
    def add_setup_token(self, token_hash: str, now: float, expires_at: float) -> None: ...
    def setup_token_valid(self, token_hash: str, now: float) -> bool: ...
    def consume_setup_token(self, token_hash: str, now: float) -> bool:
        """Mark an unexpired, unused token used; False when it was not (single use)."""
        ...


class EventRepo(Protocol):
    def append(
        self, event_id: str, type: str, organization_id: str | None, data: dict[str, Any], at: float
    ) -> Event: ...
    def after(
        self,
        seq: int,
        limit: int,
        types: Sequence[str] = (),
        organization_ids: Sequence[str] | None = None,
    ) -> builtins.list[Event]: ...
    def purge_before(self, at: float) -> int: ...


class AuditRepo(Protocol):
    def append(self, entry: AuditEntry) -> None: ...
    def list(
        self,
        organization_id: str | None = None,
        limit: int = 100,
        correlation_id: str | None = None,
    ) -> builtins.list[AuditEntry]: ...


@dataclass(frozen=True)
class SigningKeyRecord:
    kid: str
    alg: Literal["RS256", "ES256"]
    state: Literal["next", "current", "retired"]
    private_path: str
    public_jwk: dict[str, Any]
    created_at: float
    activated_at: float | None = None
    retired_at: float | None = None


class SigningKeyRepo(Protocol):
    def create(self, key: SigningKeyRecord) -> None: ...
    def list(self) -> builtins.list[SigningKeyRecord]: ...
    def set_state(self, kid: str, state: str, at: float) -> None: ...
    def delete(self, kid: str) -> None: ...


class DirectoryRepo(Protocol):
    def create(self, directory: Directory) -> None: ...
    def get(self, directory_id: str) -> Directory: ...
    def for_organization(self, organization_id: str) -> Directory | None: ...
    def update(self, directory_id: str, **fields: Any) -> Directory: ...
    def take_request(self, directory_id: str, now: float, rate: float, burst: float) -> float:
        """Take one token from the directory's bucket; 0 when allowed, else seconds to wait."""
        ...


class DirectoryUserRepo(Protocol):
    def create(self, user: DirectoryUser, base_seat: str) -> None: ...
    def get(self, directory_id: str, user_id: str) -> DirectoryUser:
        """A live (not deleted) user of that directory, else NotFound."""
        ...

    def get_any(self, user_id: str) -> DirectoryUser: ...
    def base_seat(self, user_id: str) -> str: ...
    def update(self, user_id: str, **fields: Any) -> None: ...
    def query(self, directory_id: str, query: Query) -> Page[DirectoryUser]: ...
    def find_unlinked(
        self, organization_id: str, user_name: str, external_id: str | None
    ) -> DirectoryUser | None: ...
    def find_for_login(
        self, organization_id: str, idp_id: str | None, email: str | None
    ) -> DirectoryUser | None: ...
    def list(self, directory_id: str) -> builtins.list[DirectoryUser]: ...
    def unlink_all(self, directory_id: str, now: float) -> int: ...


class DirectoryGroupRepo(Protocol):
    def create(self, group: DirectoryGroup) -> None: ...
    def get(self, directory_id: str, group_id: str) -> DirectoryGroup: ...
    def update(self, group_id: str, **fields: Any) -> None: ...
    def delete(self, group_id: str) -> None: ...
    def query(self, directory_id: str, query: Query) -> Page[DirectoryGroup]: ...
    def list(self, directory_id: str) -> builtins.list[DirectoryGroup]: ...
    def member_count(self, group_id: str) -> int: ...
    def members(self, group_id: str) -> builtins.list[tuple[str, str]]:
        """(user id, userName) of every member."""
        ...

    def member_ids(self, group_id: str) -> set[str]: ...
    def add_member(self, group_id: str, user_id: str) -> bool: ...
    def remove_member(self, group_id: str, user_id: str) -> bool: ...
    def groups_of(self, user_id: str) -> builtins.list[tuple[str, str]]:
        """(group id, displayName) of every group the user is in."""
        ...

    def groups_of_many(
        self, user_ids: Sequence[str]
    ) -> dict[str, builtins.list[tuple[str, str]]]: ...
    def unlink_all(self, directory_id: str, now: float) -> int: ...


class RoleMappingRepo(Protocol):
    def create(self, mapping: RoleMapping) -> None: ...
    def list(self, organization_id: str) -> builtins.list[RoleMapping]: ...
    def delete(self, organization_id: str, mapping_id: str) -> None: ...
    def matching(self, organization_id: str, user_id: str) -> builtins.list[RoleMapping]:
        """Mappings whose group (by id or display name) the user is in, best first."""
        ...


class ScimJournalRepo(Protocol):
    def append(self, entry: JournalEntry) -> None: ...
    def list(
        self, directory_id: str, limit: int = 100, before_id: int | None = None
    ) -> builtins.list[JournalEntry]: ...
    def purge_before(self, at: float) -> int: ...


@dataclass(frozen=True)
class WebhookEndpointState:
    """The delivery cursor of one client's webhook endpoint (core.webhooks)."""

    client_id: str
    acked_seq: int
    state: Literal["ok", "retrying", "failing"]
    attempts: int  # consecutive failed attempts of the event at the head
    next_attempt_at: float
    lease_owner: str | None
    lease_expires_at: float
    first_failure_at: float | None = None
    last_success_at: float | None = None
    last_error: str | None = None


@dataclass(frozen=True)
class WebhookDelivery:
    """One attempt (or a queued manual re-send) in an endpoint's delivery log."""

    id: str  # dlv_...
    client_id: str
    event_seq: int
    event_id: str
    event_type: str
    kind: Literal["stream", "resend"]
    status: Literal["pending", "succeeded", "failed"]
    attempt: int
    url: str | None
    created_at: float
    http_status: int | None = None
    latency_ms: float | None = None
    response_excerpt: str | None = None
    error: str | None = None
    finished_at: float | None = None


class WebhookRepo(Protocol):
    def clients_without_state(self) -> builtins.list[str]: ...
    def create_state(self, client_id: str, now: float) -> None: ...
    def states(self) -> builtins.list[WebhookEndpointState]:
        """Cursor rows of clients that have a webhook URL."""
        ...

    def state(self, client_id: str) -> WebhookEndpointState: ...
    def take_lease(self, client_id: str, owner: str, now: float, until: float) -> bool:
        """Atomically take the lease if it is free or expired; True when taken."""
        ...

    def extend_lease(self, client_id: str, owner: str, until: float) -> None: ...
    def release_lease(self, client_id: str, owner: str) -> None: ...
    def acknowledge(
        self, client_id: str, owner: str, seq: int, now: float, lease_until: float
    ) -> None: ...
    def schedule_retry(
        self,
        client_id: str,
        *,
        attempts: int,
        first_failure_at: float,
        next_attempt_at: float,
        state: str,
        error: str,
        at: float,
    ) -> None: ...
    def log_delivery(self, delivery: WebhookDelivery) -> None: ...
    def finish_delivery(
        self,
        delivery_id: str,
        *,
        ok: bool,
        http_status: int | None,
        latency_ms: float,
        excerpt: str,
        error: str | None,
        at: float,
    ) -> None: ...
    def pending_resends(self, client_id: str, limit: int) -> builtins.list[WebhookDelivery]: ...
    def deliveries(self, client_id: str, limit: int) -> builtins.list[WebhookDelivery]: ...
    def purge_deliveries_before(self, at: float) -> int: ...
    def event_by_id(self, event_id: str) -> Event: ...
    def event_page(
        self, after: int, limit: int, types: Sequence[str], organization_ids: Sequence[str]
    ) -> tuple[builtins.list[Event], int]:
        """Events after `after` in seq order, and the highest seq that existed in the
        same snapshot (a cursor that may skip past non-matching rows safely)."""
        ...


# -- OpenID Connect provider state (broker.core.login, grants, access) ---------------


@dataclass(frozen=True)
class Flow:
    """One login, driven by core.login (DESIGN §4): the pending authorize request, the
    upstream step's state and the outcome or failure reason."""

    id: str  # flow_...
    kind: Literal["authorize", "test_login", "idp_initiated"]
    status: str  # pending → upstream → authenticated → answered | refused | succeeded | failed
    client_id: str | None
    organization_id: str | None
    connection_id: str | None
    request: dict[str, Any]
    upstream: dict[str, Any]
    result: dict[str, Any] | None
    error: str | None
    created_at: float
    updated_at: float
    expires_at: float


@dataclass(frozen=True)
class BrokerSession:
    id: str  # ses_...; also the OIDC `sid`
    organization_id: str
    connection_id: str
    subject: str
    email: str | None
    directory_user_id: str | None
    claims: dict[str, Any]
    auth_time: float
    created_at: float
    expires_at: float
    ended_at: float | None = None
    end_reason: str | None = None


@dataclass(frozen=True)
class AuthCode:
    grant_id: str  # fam_...: tags the tokens issued from the code
    client_id: str
    session_id: str
    flow_id: str | None
    redirect_uri: str
    code_challenge: str
    code_challenge_method: str
    nonce: str | None
    scope: str
    claims: dict[str, Any]
    auth_time: float
    created_at: float
    expires_at: float
    consumed_at: float | None = None


@dataclass(frozen=True)
class RefreshTokenRecord:
    family_id: str
    client_id: str
    session_id: str
    organization_id: str
    subject: str
    email: str | None
    directory_user_id: str | None
    scope: str
    claims: dict[str, Any]
    auth_time: float
    created_at: float
    expires_at: float
    rotated_at: float | None = None
    revoked_at: float | None = None


@dataclass(frozen=True)
class AccessTokenRecord:
    jti: str
    grant_id: str
    client_id: str
    session_id: str
    claims: dict[str, Any]
    created_at: float
    expires_at: float
    revoked_at: float | None = None


@dataclass(frozen=True)
class LogoutDelivery:
    id: int
    client_id: str
    session_id: str
    subject: str
    reason: str
    attempts: int
    created_at: float


class FlowRepo(Protocol):
    def create(self, flow: Flow) -> None: ...
    def get(self, flow_id: str) -> Flow: ...
    def update(self, flow_id: str, **fields: Any) -> Flow: ...
    def transition(
        self, flow_id: str, from_status: str, to_status: str, now: float, **fields: Any
    ) -> bool:
        """Atomically move a flow from one status to another; False if it was not there."""
        ...

    def purge_expired(self, now: float, keep_seconds: float) -> int: ...


class SessionRepo(Protocol):
    def create(self, session: BrokerSession, token_hash: str) -> None: ...
    def get(self, session_id: str) -> BrokerSession: ...
    def by_token(self, token_hash: str, now: float) -> BrokerSession | None:
        """The live (not ended, not expired) session whose cookie hashes to this."""
        ...

    def end(self, session_id: str, now: float, reason: str) -> bool: ...
    def end_for_organization(self, org_id: str, now: float) -> int:
        """End every live session of the organization, revoke its refresh tokens and
        queue back-channel logouts; return how many sessions ended."""
        ...

    def live_for_user(
        self, organization_id: str, email: str | None, directory_user_id: str | None, now: float
    ) -> builtins.list[BrokerSession]: ...
    def unended_for_connection(self, connection_id: str) -> builtins.list[str]:
        """Ids of the connection's sessions not ended yet (expired ones included: their
        refresh tokens may still be live)."""
        ...

    def add_client(self, session_id: str, client_id: str, subject: str, now: float) -> None: ...
    def clients(self, session_id: str) -> builtins.list[tuple[str, str]]:
        """(client_id, subject) of the clients that got tokens in this session."""
        ...


class GrantRepo(Protocol):
    """Authorization codes, refresh tokens and access-token records (all hashed)."""

    def create_code(self, code_hash: str, code: AuthCode) -> None: ...
    def consume_code(self, code_hash: str, client_id: str, now: float) -> AuthCode | None:
        """Mark an unexpired, unconsumed code of this client consumed; None otherwise."""
        ...

    def find_code(self, code_hash: str) -> AuthCode | None: ...
    def create_refresh(self, token_hash: str, token: RefreshTokenRecord) -> None: ...
    def rotate_refresh(
        self, token_hash: str, client_id: str, now: float
    ) -> RefreshTokenRecord | None:
        """Mark a live refresh token rotated; None when unknown, expired, rotated or revoked."""
        ...

    def find_refresh(self, token_hash: str) -> RefreshTokenRecord | None: ...
    def create_access(self, token: AccessTokenRecord) -> None: ...
    def find_access(self, jti: str) -> AccessTokenRecord | None: ...
    def revoke_access(self, jti: str, now: float) -> bool: ...
    def revoke_grant(self, grant_id: str, now: float, reason: str) -> int:
        """Revoke every refresh and access token of a grant (code replay, reuse)."""
        ...

    def revoke_session(self, session_id: str, now: float, reason: str) -> int: ...
    def revoke_user(
        self,
        organization_id: str,
        email: str | None,
        directory_user_id: str | None,
        now: float,
        reason: str,
    ) -> builtins.list[tuple[str, str, str]]:
        """Revoke the user's live refresh tokens; return (client_id, session_id, subject)."""
        ...

    def remember_assertion(self, jti_hash: str, client_id: str, expires_at: float) -> bool: ...
    def purge_expired(self, now: float) -> int: ...


class LogoutOutboxRepo(Protocol):
    def enqueue(
        self, client_id: str, session_id: str, subject: str, reason: str, now: float
    ) -> bool: ...
    def due(self, now: float, limit: int) -> builtins.list[LogoutDelivery]: ...
    def claim(self, delivery_id: int, now: float, lease_until: float) -> bool: ...
    def delivered(self, delivery_id: int, now: float) -> None: ...
    def retry(
        self,
        delivery_id: int,
        attempts: int,
        next_attempt_at: float,
        error: str,
        failed: bool,
        now: float,
    ) -> None: ...
    def pending(self) -> builtins.list[LogoutDelivery]: ...


# -- SAML service provider state (broker.saml, broker.core.connections) ------------------


@dataclass(frozen=True)
class SamlLoginAttempt:
    """One SAML login attempt as the admin sees it (ssoready's saml_flows): the outcome and,
    for a refusal, which check failed with expected vs got."""

    connection_id: str
    at: float
    kind: Literal["sp_initiated", "idp_initiated", "test_login"]
    outcome: Literal["succeeded", "refused"]
    flow_id: str | None = None
    check: str | None = None
    expected: str | None = None
    got: str | None = None
    subject: str | None = None
    correlation_id: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)
    id: int = 0


@dataclass(frozen=True)
class SamlRequestRecord:
    request_id: str
    connection_id: str
    flow_id: str
    created_at: float
    expires_at: float
    consumed_at: float | None = None


@dataclass(frozen=True)
class MetadataRefreshState:
    connection_id: str
    next_at: float
    lease_owner: str | None
    lease_until: float
    last_attempt_at: float | None = None
    last_success_at: float | None = None
    last_error: str | None = None
    failures: int = 0


class SamlRepo(Protocol):
    def add_request(self, record: SamlRequestRecord) -> None: ...
    def find_request(self, request_id: str) -> SamlRequestRecord | None: ...
    def consume_request(self, request_id: str, connection_id: str, now: float) -> bool:
        """Mark an unexpired, unconsumed request of this connection consumed; False otherwise."""
        ...

    def remember_assertion(
        self, assertion_id: str, connection_id: str, now: float, expires_at: float
    ) -> bool:
        """Insert into the replay cache; False when the ID is already there (a replay)."""
        ...

    def purge_expired(self, now: float) -> int: ...
    def record_attempt(self, attempt: SamlLoginAttempt, keep: int) -> None:
        """Append an attempt and keep only the newest `keep` of its connection."""
        ...

    def attempts(self, connection_id: str, limit: int = 50) -> builtins.list[SamlLoginAttempt]: ...
    def schedule_refresh(self, connection_id: str, next_at: float) -> None: ...
    def cancel_refresh(self, connection_id: str) -> None: ...
    def refresh_state(self, connection_id: str) -> MetadataRefreshState | None: ...
    def due_refreshes(self, now: float, limit: int) -> builtins.list[str]: ...
    def take_refresh_lease(self, connection_id: str, owner: str, now: float, until: float) -> bool:
        """Atomically take the refresh lease if free or expired; True when taken."""
        ...

    def finish_refresh(
        self, connection_id: str, owner: str, *, now: float, next_at: float, error: str | None
    ) -> None: ...


class NetworkAllowlistRepo(Protocol):
    """Hosts an administrator allowed to resolve to private addresses (DESIGN §6)."""

    def add(self, host: str, now: float, added_by: str, note: str | None = None) -> None: ...
    def remove(self, host: str) -> None: ...
    def list(self) -> builtins.list[str]: ...


class Store(Protocol):
    """The whole store: one repository per aggregate and a write transaction."""

    @property
    def organizations(self) -> OrganizationRepo: ...
    @property
    def domains(self) -> DomainRepo: ...
    @property
    def connections(self) -> ConnectionRepo: ...
    @property
    def clients(self) -> ClientRepo: ...
    @property
    def admins(self) -> AdminRepo: ...
    @property
    def admin_sessions(self) -> AdminSessionRepo: ...
    @property
    def events(self) -> EventRepo: ...
    @property
    def audit(self) -> AuditRepo: ...
    @property
    def signing_keys(self) -> SigningKeyRepo: ...
    @property
    def flows(self) -> FlowRepo: ...
    @property
    def sessions(self) -> SessionRepo: ...
    @property
    def grants(self) -> GrantRepo: ...
    @property
    def logout_outbox(self) -> LogoutOutboxRepo: ...
    @property
    def webhooks(self) -> WebhookRepo: ...
    @property
    def directories(self) -> DirectoryRepo: ...
    @property
    def users(self) -> DirectoryUserRepo: ...
    @property
    def groups(self) -> DirectoryGroupRepo: ...
    @property
    def role_mappings(self) -> RoleMappingRepo: ...
    @property
    def scim_journal(self) -> ScimJournalRepo: ...
    @property
    def saml(self) -> SamlRepo: ...
    @property
    def network_hosts(self) -> NetworkAllowlistRepo: ...

    def transaction(self) -> AbstractContextManager[Any]: ...
    def check(self) -> None: ...
    def checkpoint(self) -> None: ...
    def close(self) -> None: ...


@dataclass(frozen=True)
class TxtAnswer:
    """What a DNS TXT look-up found; the core decides what it means."""

    status: Literal["found", "nxdomain", "no_answer", "timeout", "servfail", "error"]
    values: tuple[str, ...] = ()
    detail: str = ""


class TxtResolver(Protocol):
    async def lookup(self, name: str) -> Any: ...
