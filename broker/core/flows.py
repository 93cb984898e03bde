"""The flow row that drives one login (DESIGN §4): the validated authorize request,
lifetimes, and how refusals are written down.

Pending requests live in the store, never in process memory, so any worker can carry
a login on (DESIGN §8). A refusal's private detail goes to the flow row and the audit
log with the request's correlation id, never to the browser (STYLE §6).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from broker.core import audit, events
from broker.core.ports import Flow, Store
from broker.errors import LoginRefused, NotFound


@dataclass(frozen=True)
class LoginConfig:
    """Settings of the login core: the issuer (public URL) and the `oidc.*` lifetimes.

    Every caller passes one explicitly (`config=`; the edges build it once per app from
    the settings, broker.web.services.Services.login_config). There is no process-wide
    value: two apps in one process never see each other's settings."""

    issuer: str = "http://127.0.0.1:8080"
    code_ttl: int = 60
    session_ttl: int = 8 * 3600
    flow_ttl: int = 600
    refresh_ttl: int = 30 * 86400


@dataclass(frozen=True)
class AuthorizeRequest:
    """An authorize request the OIDC edge has validated (RFC 6749 §4.1.1, OIDC Core
    §3.1.2.1): the client and redirect URI are known to match, PKCE is S256."""

    client_id: str
    redirect_uri: str
    response_type: str  # "code" | "id_token" (front-channel-only clients)
    response_mode: str  # "query" | "form_post"
    scope: str
    state: str | None = None
    nonce: str | None = None
    code_challenge: str | None = None
    code_challenge_method: str | None = None
    prompt: tuple[str, ...] = ()
    max_age: int | None = None
    login_hint: str | None = None
    domain_hint: str | None = None
    organization: str | None = None
    connection: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["prompt"] = list(self.prompt)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AuthorizeRequest:
        values = dict(data)
        values["prompt"] = tuple(values.get("prompt") or ())
        return cls(**values)


def create(
    store: Store,
    now: float,
    *,
    kind: str,
    status: str,
    client_id: str | None = None,
    organization_id: str | None = None,
    connection_id: str | None = None,
    request: dict[str, Any] | None = None,
    ttl: float | None = None,
    flow_id: str,
    config: LoginConfig,
) -> Flow:
    flow = Flow(
        id=flow_id,
        kind=kind,  # type: ignore[arg-type]
        status=status,  # type: ignore[arg-type]
        client_id=client_id,
        organization_id=organization_id,
        connection_id=connection_id,
        request=request or {},
        upstream={},
        result=None,
        error=None,
        created_at=now,
        updated_at=now,
        expires_at=now + (config.flow_ttl if ttl is None else ttl),
    )
    store.flows.create(flow)
    return flow


def load_live(store: Store, flow_id: str, now: float) -> Flow:
    """A flow that exists and has not expired, else LoginRefused (shown as a clear page)."""
    try:
        flow = store.flows.get(flow_id)
    except NotFound:
        raise LoginRefused(
            "flow_unknown",
            "This sign-in link is not valid. Start again from the application.",
            f"flow {flow_id!r} not found",
        ) from None
    if flow.expires_at <= now:
        raise LoginRefused(
            "flow_expired",
            "This sign-in took too long. Start again from the application.",
            f"flow {flow_id} expired at {flow.expires_at}",
        )
    return flow


def record_test_refusal(store: Store, now: float, exc: LoginRefused, flow: Flow) -> None:
    """Only the admin's test-login flow row hears of a refusal nobody authenticated (a
    response before its signature verified): its result page says which check failed.
    No audit row and no event, so junk POSTs cannot grow the store or reach Exec."""
    if flow.kind != "test_login":
        return
    with store.transaction():
        store.flows.update(
            flow.id,
            status="refused",
            error=exc.reason,
            updated_at=now,
            result={"reason": exc.reason, "detail": exc.detail},
        )


def record_refusal(
    store: Store,
    now: float,
    actor: audit.Actor,
    exc: LoginRefused,
    *,
    flow: Flow | None,
    organization_id: str | None,
    connection_id: str | None,
    event: bool = True,
) -> None:
    """Write a real user's refused login on the flow row, the audit log and (unless
    `event=False`) the event feed. Callers only come here once the IdP's answer was
    authentic (signature verified, state bound to the browser): refusals of
    unauthenticated input must not write per request (see `record_test_refusal`)."""
    with store.transaction():
        if flow is not None:
            store.flows.update(
                flow.id,
                status="refused",
                error=exc.reason,
                updated_at=now,
                result={"reason": exc.reason, "detail": exc.detail},
            )
        audit.record(
            store,
            actor,
            "login.refused",
            now,
            organization_id=organization_id,
            target=connection_id,
            flow_id=flow.id if flow else None,
            reason=exc.reason,
            detail=exc.detail,
        )
        if event and organization_id is not None:
            events.record(
                store,
                "authentication.sso_failed",
                organization_id,
                {
                    "object": "authentication_event",
                    "type": "sso",
                    "status": "failed",
                    "connection_id": connection_id,
                    "organization_id": organization_id,
                    "error": {"code": exc.reason, "message": exc.public},
                },
                now,
            )
