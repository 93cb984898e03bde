"""Authorization codes and refresh tokens: issue, redeem once, rotate (RFC 6749 §4.1.2,
§6, §10.4-10.5; OAuth 2.0 Security BCP §4.14).

- A code is 256 random bits, stored as SHA-256, lives 60 s, and is bound to the client,
  redirect URI, PKCE challenge and nonce. Redeeming it is one atomic UPDATE; a second
  redemption revokes every token issued from the first (§4.1.2: "SHOULD revoke").
  The code is read first and consumed in the same transaction that records the tokens
  (one write per exchange), so a lost race records nothing and returns no tokens.
- A refresh token is rotated on every use; presenting a rotated one again revokes its
  whole family (the thief and the victim both lose it, and the victim signs in again).

- Nothing is issued from a broker session that has ended (logout, deprovisioning, SSO
  off, connection deactivated) or whose policy no longer admits it (profiles.
  session_refusal: connection inactive, domain unverified, directory user gone or
  inactive): checked when the code or refresh token is read, and again inside the
  transaction that records the new refresh token, so a revocation that commits in
  between wins (DESIGN §4, §6: deprovisioning reaches Exec at once). A code issued
  before a logout is thus worthless after it, and no refresh token outlives its user.

- Access tokens are self-contained RFC 9068 JWTs: issuing one writes nothing (the
  exchange's one transaction holds only the code and refresh token). Revocation writes
  a row instead: for one token (its `jti`), for a grant (code replay, refresh reuse,
  RFC 7009) or for a session (logout, deprovisioning), and `access_claims` refuses a
  token that any of the three names, or whose session has ended.

Token minting (JWT signing) is the OIDC edge's job; this module only decides and records.
"""

from __future__ import annotations

import contextlib

from broker.clock import Clock
from broker.core import audit
from broker.core.flows import AuthorizeRequest, LoginConfig
from broker.core.ports import (
    AccessTokenRecord,
    AuthCode,
    BrokerSession,
    RefreshTokenRecord,
    Store,
)
from broker.core.profiles import session_refusal
from broker.errors import AlreadyExists, NotFound
from broker.ids import hash_token, new_id, new_token

# Revocation rows of a grant or a session must outlive every access token issued before
# them: the longest access-token lifetime the settings allow (oidc.access_token_ttl_seconds).
MAX_ACCESS_TTL = 86400
_GRANT, _SESSION = "grant:", "session:"  # never clash with a jti (32 hex digits)


def issue_code(
    store: Store,
    now: float,
    *,
    request: AuthorizeRequest,
    session: BrokerSession,
    flow_id: str | None,
    config: LoginConfig,
) -> str:
    """Mint a one-time code for this request and session; return it (shown once)."""
    code = new_token(32)
    store.grants.create_code(
        hash_token(code),
        AuthCode(
            grant_id=new_id("fam"),
            client_id=request.client_id,
            session_id=session.id,
            flow_id=flow_id,
            redirect_uri=request.redirect_uri,
            code_challenge=request.code_challenge or "",
            code_challenge_method=request.code_challenge_method or "",
            nonce=request.nonce,
            scope=request.scope,
            claims=dict(session.claims),
            auth_time=session.auth_time,
            created_at=now,
            expires_at=now + config.code_ttl,
        ),
    )
    store.sessions.add_client(session.id, request.client_id, session.claims["sub"], now)
    return code


class AlreadyUsed(Exception):
    """Another request consumed the code or rotated the refresh token first."""


class SessionEnded(Exception):
    """The grant's broker session ended, or policy no longer admits its user."""


def grant_refusal(store: Store, session_id: str) -> str | None:
    """Why no token may be issued in this session now (None: it may)."""
    try:
        session = store.sessions.get(session_id)
    except NotFound:
        return f"session {session_id} not found"
    return session_refusal(store, session)


def peek_code(
    store: Store, clock: Clock, client_id: str, code: str, actor: audit.Actor = audit.SYSTEM
) -> AuthCode | None:
    """The code's grant if it is unused, unexpired and this client's (read only: it is
    consumed by `record_issued`, in the transaction that records the tokens). A code
    that was already used revokes the tokens its first use produced."""
    now = clock.now()
    known = store.grants.find_code(hash_token(code))
    if known is None or known.client_id != client_id:
        return None
    if known.consumed_at is not None:
        with store.transaction():
            revoked = revoke_grant(store, now, known.grant_id, "code_replayed")
            audit.record(
                store,
                actor,
                "oauth.code_replayed",
                now,
                target=client_id,
                grant_id=known.grant_id,
                tokens_revoked=revoked,
            )
        return None
    if known.expires_at <= now or grant_refusal(store, known.session_id) is not None:
        return None
    return known


def peek_refresh(
    store: Store, clock: Clock, client_id: str, token: str, actor: audit.Actor = audit.SYSTEM
) -> RefreshTokenRecord | None:
    """The refresh token's record if live and this client's (rotated by `record_issued`).
    Reuse of a rotated token revokes its family."""
    now = clock.now()
    known = store.grants.find_refresh(hash_token(token))
    if known is None or known.client_id != client_id or known.revoked_at is not None:
        return None
    if known.rotated_at is not None:
        with store.transaction():
            revoked = revoke_grant(store, now, known.family_id, "refresh_reused")
            audit.record(
                store,
                actor,
                "oauth.refresh_reused",
                now,
                organization_id=known.organization_id or None,
                target=client_id,
                family_id=known.family_id,
                tokens_revoked=revoked,
            )
        return None
    if known.expires_at <= now or grant_refusal(store, known.session_id) is not None:
        return None
    return known


def record_issued(
    store: Store,
    now: float,
    *,
    grant_id: str,
    client_id: str,
    session_id: str,
    claims: dict[str, object],
    scope: str,
    auth_time: float,
    refresh_token: str | None,
    code: str | None = None,
    config: LoginConfig,
    spent_refresh: str | None = None,
) -> None:
    """In ONE write transaction: check the session still admits tokens, consume the code
    (or rotate the presented refresh token) atomically and remember the new refresh token
    (its hash). Raises SessionEnded when a logout or deprovisioning committed since the
    code or token was read, AlreadyUsed when another request won the race; then nothing
    is recorded. The access token needs no row (module docstring)."""
    with store.transaction():
        refusal = grant_refusal(store, session_id)
        if refusal is not None:
            raise SessionEnded(refusal)
        if code is not None and store.grants.consume_code(hash_token(code), client_id, now) is None:
            raise AlreadyUsed("authorization code already used")
        if (
            spent_refresh is not None
            and store.grants.rotate_refresh(hash_token(spent_refresh), client_id, now) is None
        ):
            raise AlreadyUsed("refresh token already used")
        if refresh_token is not None:
            store.grants.create_refresh(
                hash_token(refresh_token),
                RefreshTokenRecord(
                    family_id=grant_id,
                    client_id=client_id,
                    session_id=session_id,
                    organization_id=str(claims.get("org_id", "")),
                    subject=str(claims["sub"]),
                    email=_str_or_none(claims.get("email")),
                    directory_user_id=_str_or_none(claims.get("directory_user_id")),
                    scope=scope,
                    claims=dict(claims),
                    auth_time=auth_time,
                    created_at=now,
                    expires_at=now + config.refresh_ttl,
                ),
            )


def find_refresh(store: Store, client_id: str, token: str) -> RefreshTokenRecord | None:
    record = store.grants.find_refresh(hash_token(token))
    return record if record is not None and record.client_id == client_id else None


def revoke_refresh(store: Store, clock: Clock, record: RefreshTokenRecord) -> int:
    """RFC 7009 §2.1: revoking a refresh token also revokes its access tokens."""
    with store.transaction():
        return revoke_grant(store, clock.now(), record.family_id, "revoked_by_client")


# -- revocation of access tokens -----------------------------------------------------


def revoke_grant(store: Store, now: float, grant_id: str, reason: str) -> int:
    """Every refresh and access token of a grant (call inside a transaction)."""
    revoked = store.grants.revoke_grant(grant_id, now, reason)
    _deny(store, now, _GRANT + grant_id, grant_id=grant_id, expires_at=now + MAX_ACCESS_TTL)
    return revoked


def revoke_session_tokens(store: Store, now: float, session_id: str, reason: str) -> int:
    """Every refresh and access token issued in a session (call inside a transaction)."""
    revoked = store.grants.revoke_session(session_id, now, reason)
    _deny(store, now, _SESSION + session_id, session_id=session_id, expires_at=now + MAX_ACCESS_TTL)
    return revoked


def revoke_access(
    store: Store,
    clock: Clock,
    *,
    jti: str,
    client_id: str,
    session_id: str | None,
    grant_id: str | None,
    expires_at: float,
) -> None:
    """RFC 7009: one access token (already verified as ours) is revoked by its jti."""
    now = clock.now()
    with store.transaction():
        if not store.grants.revoke_access(jti, now):  # a row from before self-contained tokens
            _deny(
                store,
                now,
                jti,
                client_id=client_id,
                session_id=session_id or "",
                grant_id=grant_id or "",
                expires_at=expires_at,
            )


def token_revoked(store: Store, jti: str) -> bool:
    """Whether this one access token was revoked (RFC 7009) by its jti: for tokens that
    name no session, such as the client credentials grant's API tokens."""
    record = store.grants.find_access(jti) if jti else None
    return record is not None and record.revoked_at is not None


def access_claims(store: Store, claims: dict[str, object], now: float) -> dict[str, object] | None:
    """The user claims behind an access token whose signature, issuer, audience and
    expiry the edge verified (for userinfo), or None when it was revoked: its jti, its
    grant or its session, or the session has ended."""
    jti, sid, grant_id = (str(claims.get(k) or "") for k in ("jti", "sid", "grant_id"))
    if not jti or not sid:
        return None
    keys = [jti, _SESSION + sid] + ([_GRANT + grant_id] if grant_id else [])
    for key in keys:
        record = store.grants.find_access(key)
        if record is not None and record.revoked_at is not None:
            return None
    try:
        session = store.sessions.get(sid)
    except NotFound:
        return None
    if session.ended_at is not None:
        return None
    return dict(session.claims)


def _deny(
    store: Store,
    now: float,
    key: str,
    *,
    expires_at: float,
    client_id: str = "",
    session_id: str = "",
    grant_id: str = "",
) -> None:
    with contextlib.suppress(AlreadyExists):  # already revoked
        store.grants.create_access(
            AccessTokenRecord(
                jti=key,
                grant_id=grant_id,
                client_id=client_id,
                session_id=session_id,
                claims={},
                created_at=now,
                expires_at=expires_at,
                revoked_at=now,
            )
        )


def _str_or_none(value: object) -> str | None:
    return None if value is None else str(value)
