"""The login dispatcher: authorize request → home realm → upstream → policy → answer.

This is the seam the upstream edges (broker.saml, broker.upstream_oidc) hand their
results to; they never talk to the OIDC edge or to each other (DESIGN §3, STYLE §3).

The contract for upstream edges
-------------------------------
- `start_upstream(store, clock, flow_id, connection) -> str`: the path the browser
  goes to next: `/saml/{connection_id}/start?flow={flow_id}` or
  `/oidc/{connection_id}/start?flow={flow_id}` (the edges own those routes).
- `load_flow_for_upstream(store, clock, flow_id, connection_id) -> Flow`: the live flow
  meant for that connection, else LoginRefused (unknown, expired, other connection,
  already finished).
- `record_upstream_request(store, clock, flow_id, connection_id, data) -> None`: keep the
  edge's request state (SAML AuthnRequest ID; OIDC state, nonce, PKCE verifier) on the
  flow row's `upstream` JSON, merged into what is there.
- `reauthentication(flow) -> dict[str, str]`: what the IdP must be told so that the user
  authenticates afresh (`prompt=login`, `max_age`; a SAML edge sets ForceAuthn when it
  is not empty). A flow goes upstream with a `max_age` only when the broker session
  could not meet it, so any `max_age` asks for a fresh authentication (OIDC Core
  §3.1.2.1); the session's auth_time is the IdP's authentication instant.
- `complete_upstream(store, clock, *, connection_id, flow_id, identity, actor,
  config) -> LoginOutcome`: `flow_id=None` means IdP-initiated (unsolicited).
  `config` is the app's LoginConfig (`services.login_config`). Applies policy:
  connection active (a test-login flow may use a draft connection), the email's domain
  VERIFIED for the connection's organization (DESIGN §6), SSO enabled (not for test
  logins), the directory user present and active when Directory Sync is on. Refusals
  raise LoginRefused(reason, public, detail); the detail is on the flow row and in the
  audit log under `actor.correlation_id`. On success the edge sets the broker session
  cookie (broker.web.session_cookie) to `outcome.session_token` when it is not None,
  then redirects the browser to `outcome.redirect_url`.
- `create_test_login(store, clock, connection_id, actor, config) -> flow_id` and
  `test_login_result(store, flow_id) -> dict`: the admin's test login. Its outcome
  points at TEST_LOGIN_RESULT_PATH and never issues tokens; success stamps the
  connection's `tested_at` (policy: SSO needs a tested connection).

The OIDC edge calls `begin_authorize`, `submit_email` and `resume`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from broker.clock import Clock
from broker.core import audit, events, flows, grants
from broker.core.discovery import email_domain, resolve_connection
from broker.core.flows import AuthorizeRequest, LoginConfig
from broker.core.models import Client, Connection, DirectoryUser, Organization, UpstreamIdentity
from broker.core.ports import BrokerSession, Flow, Store
from broker.core.profiles import (
    build_claims,
    check_domain,
    identity_summary,
    normalized_email,
    overage_note,
    session_refusal,
)
from broker.errors import LoginRefused, NotFound
from broker.ids import hash_token, new_id, new_token

__all__ = [
    "TEST_LOGIN_RESULT_PATH",
    "Answer",
    "AuthorizeRequest",
    "LoginConfig",
    "LoginOutcome",
    "NextStep",
    "begin_authorize",
    "complete_upstream",
    "create_test_login",
    "load_flow_for_upstream",
    "reauthentication",
    "record_upstream_request",
    "resume",
    "start_upstream",
    "submit_email",
    "test_login_result",
]

EMAIL_PAGE_PATH = "/oauth2/login?flow={flow_id}"
RESUME_PATH = "/oauth2/resume?flow={flow_id}"
TEST_LOGIN_RESULT_PATH = "/admin/connections/{connection_id}/test?flow={flow_id}"
UPSTREAM_PATHS = {
    "saml": "/saml/{connection_id}/start?flow={flow_id}",
    "oidc": "/oidc/{connection_id}/start?flow={flow_id}",
}


@dataclass(frozen=True)
class LoginOutcome:
    """Where the browser goes after an upstream login, and the session cookie to set."""

    redirect_url: str
    session_token: str | None  # cookie value to set (None: leave the cookie alone)
    session_id: str | None
    session_expires_at: float | None
    flow_id: str | None
    test_login: bool = False
    notes: dict[str, str] = field(default_factory=dict)  # for the connection's attempt log


@dataclass(frozen=True)
class NextStep:
    """The browser must go somewhere first (email page or upstream IdP)."""

    path: str
    flow_id: str


@dataclass(frozen=True)
class Answer:
    """The answer to an authorize request: a code, or (front-channel-only clients) the
    claims of an ID token the OIDC edge signs."""

    flow_id: str
    client_id: str
    redirect_uri: str
    response_mode: str
    state: str | None
    code: str | None = None
    id_token_claims: dict[str, Any] | None = None
    alg: str = "RS256"


# -- the authorize request ---------------------------------------------------------


def begin_authorize(
    store: Store,
    clock: Clock,
    request: AuthorizeRequest,
    session_token: str | None,
    actor: audit.Actor,
    config: LoginConfig,
) -> Answer | NextStep:
    """Store the request as a flow; answer it from the broker session when that is allowed
    (OIDC Core §3.1.2.3), else send the browser to the IdP or the email page.
    `prompt=none` without a usable session raises LoginRefused('login_required')."""
    now, cfg = clock.now(), config
    flow = flows.create(
        store,
        now,
        kind="authorize",
        status="pending",
        client_id=request.client_id,
        request=request.to_dict(),
        flow_id=new_id("flow"),
        config=cfg,
    )
    session = _session(store, session_token, now)
    if session is not None and _session_usable(store, now, session, request):
        client = store.clients.get(request.client_id)
        with store.transaction():
            if not store.flows.transition(
                flow.id,
                "pending",
                "answered",
                now,
                organization_id=session.organization_id,
                connection_id=session.connection_id,
            ):
                raise LoginRefused("flow_unknown", "This sign-in was already completed.")
            return _answer(store, now, flow.id, request, session, client, cfg)
    if "none" in request.prompt:
        with store.transaction():
            store.flows.update(flow.id, status="refused", error="login_required", updated_at=now)
        raise LoginRefused(
            "login_required", "Sign-in is required.", "prompt=none and no usable broker session"
        )
    connection = resolve_connection(
        store,
        connection_id=request.connection,
        organization_id=request.organization,
        email=request.login_hint,
        domain=request.domain_hint,
    )
    if connection is None:
        return NextStep(EMAIL_PAGE_PATH.format(flow_id=flow.id), flow.id)
    return NextStep(start_upstream(store, clock, flow.id, connection), flow.id)


def submit_email(store: Store, clock: Clock, flow_id: str, email: str) -> str:
    """The email page's answer: the path of the user's IdP, or LoginRefused (shown on
    the page) when no organization verified that domain with an active connection."""
    now = clock.now()
    flow = flows.load_live(store, flow_id, now)
    if flow.kind != "authorize" or flow.status != "pending":
        raise LoginRefused(
            "flow_unknown",
            "This sign-in link is no longer valid. Start again from the application.",
            f"flow {flow_id} is {flow.status}",
        )
    domain = email_domain(email.strip())
    connection = resolve_connection(store, email=email.strip()) if domain else None
    if connection is None:
        raise LoginRefused(
            "unknown_domain",
            "Enter your work email address. Single sign-on is not set up for "
            + (domain or "that address")
            + ".",
            f"no verified domain with an active connection for {domain!r}",
        )
    request = dict(flow.request, login_hint=email.strip())
    with store.transaction():
        store.flows.update(flow_id, request=request, updated_at=now)
    return start_upstream(store, clock, flow_id, connection)


def resume(
    store: Store, clock: Clock, flow_id: str, session_token: str | None, config: LoginConfig
) -> Answer:
    """Answer a flow whose upstream login finished (form_post responses): only the browser
    that holds the session the login created may take the answer, and only once."""
    now = clock.now()
    flow = flows.load_live(store, flow_id, now)
    session = _session(store, session_token, now)
    session_id = (flow.result or {}).get("session_id")
    if session is None or session.id != session_id or flow.status != "authenticated":
        raise LoginRefused(
            "flow_unknown",
            "This sign-in link is no longer valid. Start again from the application.",
            f"resume of {flow_id} refused",
        )
    request = AuthorizeRequest.from_dict(flow.request)
    client = store.clients.get(request.client_id)
    with store.transaction():
        if not store.flows.transition(flow_id, "authenticated", "answered", now):
            raise LoginRefused("flow_unknown", "This sign-in was already completed.")
        return _answer(store, now, flow_id, request, session, client, config)


# -- the upstream hand-off ---------------------------------------------------------


def start_upstream(store: Store, clock: Clock, flow_id: str, connection: Connection) -> str:
    now = clock.now()
    with store.transaction():
        store.flows.update(
            flow_id,
            status="upstream",
            organization_id=connection.organization_id,
            connection_id=connection.id,
            updated_at=now,
        )
    return UPSTREAM_PATHS[connection.type].format(connection_id=connection.id, flow_id=flow_id)


def load_flow_for_upstream(store: Store, clock: Clock, flow_id: str, connection_id: str) -> Flow:
    flow = flows.load_live(store, flow_id, clock.now())
    if flow.connection_id != connection_id or flow.status != "upstream":
        raise LoginRefused(
            "flow_mismatch",
            "This sign-in link is not valid. Start again from the application.",
            f"flow {flow_id} is {flow.status} for {flow.connection_id}, not for {connection_id}",
        )
    return flow


def record_upstream_request(
    store: Store, clock: Clock, flow_id: str, connection_id: str, data: dict[str, Any]
) -> None:
    flow = load_flow_for_upstream(store, clock, flow_id, connection_id)
    with store.transaction():
        store.flows.update(flow_id, upstream={**flow.upstream, **data}, updated_at=clock.now())


def reauthentication(flow: Flow) -> dict[str, str]:
    """What the upstream IdP must be told so that the user authenticates afresh: OIDC's
    `prompt=login` and `max_age` (OIDC Core §3.1.2.1), empty when nothing is asked. The
    SAML edge sets ForceAuthn (SAML Core §3.4.1) when this is not empty."""
    request = flow.request or {}
    max_age = request.get("max_age")
    asked: dict[str, str] = {}
    if "login" in (request.get("prompt") or ()) or max_age is not None:
        asked["prompt"] = "login"
    if max_age is not None:
        asked["max_age"] = str(int(max_age))
    return asked


def complete_upstream(
    store: Store,
    clock: Clock,
    *,
    connection_id: str,
    flow_id: str | None,
    identity: UpstreamIdentity,
    actor: audit.Actor,
    config: LoginConfig,
) -> LoginOutcome:
    now, cfg = clock.now(), config
    flow = load_flow_for_upstream(store, clock, flow_id, connection_id) if flow_id else None
    connection = store.connections.get(connection_id)
    org = store.organizations.get(connection.organization_id)
    if flow is not None and flow.kind == "test_login":
        return _complete_test_login(store, now, flow, connection, org, identity, actor)
    try:
        if identity.connection_id != connection_id:
            raise LoginRefused(
                "connection_mismatch",
                "The sign-in could not be completed.",
                f"identity from {identity.connection_id}, not {connection_id}",
            )
        claims, user = _admit(store, now, org, connection, identity)
        client = _client_for(store, flow, org)
    except LoginRefused as exc:
        flows.record_refusal(
            store, now, actor, exc, flow=flow, organization_id=org.id, connection_id=connection_id
        )
        raise
    notes = overage_note(identity, user)
    with store.transaction():
        session, token = _create_session(store, now, connection, claims, user, identity, cfg)
        _record_success(store, now, actor, session, connection, flow)
        if flow is None:
            url = _initiate_login_url(client, claims["email"], now, store, org, connection, cfg)
            return LoginOutcome(url, token, session.id, session.expires_at, None, notes=notes)
        request = AuthorizeRequest.from_dict(flow.request)
        if request.response_mode == "query" and request.response_type == "code":
            if not store.flows.transition(flow.id, "upstream", "answered", now):
                raise LoginRefused("flow_unknown", "This sign-in was already completed.")
            answer = _answer(store, now, flow.id, request, session, client, cfg)
            url = redirect_with(
                answer.redirect_uri, code=answer.code, state=answer.state, iss=cfg.issuer
            )
        else:  # form_post (and ID tokens, which the OIDC edge signs): answered by `resume`
            if not store.flows.transition(
                flow.id, "upstream", "authenticated", now, result={"session_id": session.id}
            ):
                raise LoginRefused("flow_unknown", "This sign-in was already completed.")
            url = cfg.issuer + RESUME_PATH.format(flow_id=flow.id)
    return LoginOutcome(url, token, session.id, session.expires_at, flow.id, notes=notes)


# -- test login --------------------------------------------------------------------


def create_test_login(
    store: Store, clock: Clock, connection_id: str, actor: audit.Actor, config: LoginConfig
) -> str:
    now = clock.now()
    connection = store.connections.get(connection_id)
    with store.transaction():
        flow = flows.create(
            store,
            now,
            kind="test_login",
            status="upstream",
            organization_id=connection.organization_id,
            connection_id=connection.id,
            flow_id=new_id("flow"),
            config=config,
        )
        audit.record(
            store,
            actor,
            "connection.test_started",
            now,
            organization_id=connection.organization_id,
            target=connection.id,
            flow_id=flow.id,
        )
    return flow.id


def test_login_result(store: Store, flow_id: str) -> dict[str, Any]:
    flow = store.flows.get(flow_id)
    if flow.kind != "test_login":
        raise NotFound(f"flow {flow_id} is not a test login")
    return {
        "flow_id": flow.id,
        "connection_id": flow.connection_id,
        "organization_id": flow.organization_id,
        "status": flow.status,
        "error": flow.error,
        "created_at": flow.created_at,
        "updated_at": flow.updated_at,
        **(flow.result or {}),
    }


def _complete_test_login(
    store: Store,
    now: float,
    flow: Flow,
    connection: Connection,
    org: Organization,
    identity: UpstreamIdentity,
    actor: audit.Actor,
) -> LoginOutcome:
    """Everything the IdP sent and how policy judged it, for the admin; no tokens, no
    session. SSO need not be on yet (that is what the test is for)."""
    result: dict[str, Any] = {"identity": identity_summary(identity), "profile": None}
    status, error = "succeeded", None
    try:
        email = normalized_email(identity)
        check_domain(store, org.id, email)
        user = _directory_user(store, org, identity, email)
        result["profile"] = build_claims(org, connection, identity, email, user)
    except LoginRefused as exc:
        status, error = "failed", exc.reason
        result["refusal"] = {"reason": exc.reason, "message": exc.public, "detail": exc.detail}
    with store.transaction():
        if not store.flows.transition(flow.id, "upstream", status, now, result=result):
            raise LoginRefused("flow_unknown", "This test login was already completed.")
        if error:
            store.flows.update(flow.id, error=error)
        else:
            store.connections.update(connection.id, tested_at=now, updated_at=now)
        audit.record(
            store,
            actor,
            f"connection.test_{status}",
            now,
            organization_id=org.id,
            target=connection.id,
            flow_id=flow.id,
            reason=error,
        )
    url = TEST_LOGIN_RESULT_PATH.format(connection_id=connection.id, flow_id=flow.id)
    return LoginOutcome(url, None, None, None, flow.id, test_login=True)


# -- policy ------------------------------------------------------------------------


def _admit(
    store: Store, now: float, org: Organization, connection: Connection, identity: UpstreamIdentity
) -> tuple[dict[str, Any], DirectoryUser | None]:
    if connection.state != "active":
        raise LoginRefused(
            "connection_inactive",
            "Single sign-on through this identity provider is switched off.",
            f"{connection.id} is {connection.state}",
        )
    if not org.sso_enabled:
        raise LoginRefused(
            "sso_disabled",
            "Single sign-on is not enabled for this organization yet.",
            f"{org.id} has SSO off",
        )
    email = normalized_email(identity)
    check_domain(store, org.id, email)
    user = _directory_user(store, org, identity, email)
    return build_claims(org, connection, identity, email, user), user


def _directory_user(
    store: Store, org: Organization, identity: UpstreamIdentity, email: str
) -> DirectoryUser | None:
    """With Directory Sync on, the user must be in the directory and active (DESIGN §4)."""
    if not org.dsync_enabled:
        return None
    user = store.users.find_for_login(org.id, identity.idp_subject, email)
    if user is None:
        raise LoginRefused(
            "not_in_directory",
            "Your account is not provisioned for this application. Ask your IT team for access.",
            f"no directory user for {email} / {identity.idp_subject}",
        )
    if user.state != "active":
        raise LoginRefused(
            "user_inactive",
            "Your account is deactivated. Ask your IT team for access.",
            f"directory user {user.id} is {user.state}",
        )
    return user


def _client_for(store: Store, flow: Flow | None, org: Organization) -> Client:
    if flow is not None and flow.client_id:
        client = store.clients.get(flow.client_id)
        if client.organization_ids and org.id not in client.organization_ids:
            raise LoginRefused(
                "client_not_allowed",
                "This application is not available to your organization.",
                f"{client.id} is not bound to {org.id}",
            )
        return client
    candidates = [
        c
        for c in store.clients.list()
        if c.initiate_login_uri and (not c.organization_ids or org.id in c.organization_ids)
    ]
    if not candidates:
        raise LoginRefused(
            "no_initiate_login",
            "Sign-in must start from the application.",
            f"no client with an initiate_login_uri for {org.id}",
        )
    return candidates[0]


def _session(store: Store, token: str | None, now: float) -> BrokerSession | None:
    return store.sessions.by_token(hash_token(token), now) if token else None


def _session_usable(
    store: Store, now: float, session: BrokerSession, request: AuthorizeRequest
) -> bool:
    """May this authorize request be answered from the session without the IdP?"""
    if "login" in request.prompt:
        return False
    if request.max_age is not None and now - session.auth_time > request.max_age:
        return False
    if request.connection and request.connection != session.connection_id:
        return False
    if request.organization and request.organization != session.organization_id:
        return False
    hint = (request.login_hint or "").strip()
    if "@" in hint and hint.lower() != (session.email or "").lower():
        return False
    if request.domain_hint and not _verified_for(
        store, session.organization_id, request.domain_hint
    ):
        return False
    try:
        client = store.clients.get(request.client_id)
    except NotFound:
        return False
    if client.organization_ids and session.organization_id not in client.organization_ids:
        return False
    # Policy may have changed since the session began: connection, SSO, domain, directory.
    return session_refusal(store, session) is None


def _verified_for(store: Store, org_id: str, domain: str) -> bool:
    owner = store.domains.verified_owner(domain.strip().lower())
    return owner is not None and owner.organization_id == org_id


def _create_session(
    store: Store,
    now: float,
    connection: Connection,
    claims: dict[str, Any],
    user: DirectoryUser | None,
    identity: UpstreamIdentity,
    cfg: LoginConfig,
) -> tuple[BrokerSession, str]:
    token = new_token(32)
    auth_time = identity.authn_instant if identity.authn_instant else now
    session = BrokerSession(
        id=new_id("ses"),
        organization_id=connection.organization_id,
        connection_id=connection.id,
        subject=claims["sub"],
        email=claims.get("email"),
        directory_user_id=user.id if user else None,
        claims=claims,
        auth_time=min(auth_time, now),
        created_at=now,
        expires_at=now + cfg.session_ttl,
    )
    store.sessions.create(session, hash_token(token))
    return session, token


def _record_success(
    store: Store,
    now: float,
    actor: audit.Actor,
    session: BrokerSession,
    connection: Connection,
    flow: Flow | None,
) -> None:
    audit.record(
        store,
        actor,
        "login.succeeded",
        now,
        organization_id=session.organization_id,
        target=connection.id,
        flow_id=flow.id if flow else None,
        session_id=session.id,
        subject=session.subject,
        idp_initiated=flow is None,
    )
    events.record(
        store,
        "authentication.sso_succeeded",
        session.organization_id,
        {
            "object": "authentication_event",
            "type": "sso",
            "status": "succeeded",
            "organization_id": session.organization_id,
            "connection_id": connection.id,
            "user": {
                "sub": session.subject,
                "email": session.email,
                "directory_user_id": session.directory_user_id,
            },
        },
        now,
    )


def _answer(
    store: Store,
    now: float,
    flow_id: str,
    request: AuthorizeRequest,
    session: BrokerSession,
    client: Client,
    cfg: LoginConfig,
) -> Answer:
    """Call inside a transaction, after the flow moved to 'answered'."""

    def reply(**extra: Any) -> Answer:
        return Answer(
            flow_id=flow_id,
            client_id=client.id,
            redirect_uri=request.redirect_uri,
            response_mode=request.response_mode,
            state=request.state,
            alg=client.id_token_signed_response_alg,
            **extra,
        )

    if request.response_type == "id_token":
        store.sessions.add_client(session.id, client.id, session.subject, now)
        claims = dict(
            session.claims, auth_time=int(session.auth_time), sid=session.id, nonce=request.nonce
        )
        return reply(id_token_claims=claims)
    return reply(
        code=grants.issue_code(
            store, now, request=request, session=session, flow_id=flow_id, config=cfg
        )
    )


def _initiate_login_url(
    client: Client,
    email: str,
    now: float,
    store: Store,
    org: Organization,
    connection: Connection,
    cfg: LoginConfig,
) -> str:
    """OIDC Core §4: the client starts its own authorize request (with its own state and
    nonce), which the session answers. No code ever leaves without the client's state."""
    flows.create(
        store,
        now,
        kind="idp_initiated",
        status="answered",
        client_id=client.id,
        organization_id=org.id,
        connection_id=connection.id,
        ttl=0,
        request={"login_hint": email},
        flow_id=new_id("flow"),
        config=cfg,
    )
    return redirect_with(str(client.initiate_login_uri), iss=cfg.issuer, login_hint=email)


def redirect_with(uri: str, **params: str | None) -> str:
    """`uri` with parameters added to its query (RFC 6749 §4.1.2 keeps existing ones)."""
    query = urlencode({k: v for k, v in params.items() if v is not None})
    return uri + ("&" if "?" in uri else "?") + query
