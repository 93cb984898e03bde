"""Authorization codes and refresh tokens: issue, redeem once, rotate (RFC 6749 §4.1.2,
§6, §10.4-10.5; OAuth 2.0 Security BCP §4.14).

- A code is 256 random bits, stored as SHA-256, lives 60 s, and is bound to the client,
  redirect URI, PKCE challenge and nonce. Redeeming it is one atomic UPDATE; a second
  redemption revokes every token issued from the first (§4.1.2: "SHOULD revoke").
  The code is read first and consumed in the same transaction that records the tokens
  (one write per exchange), so a lost race records nothing and returns no tokens.
- A refresh token is rotated on every use; presenting a rotated one again revokes its
  whole family (the thief and the victim both lose it, and the victim signs in again).

Token minting (JWT signing) is the OIDC edge's job; this module only decides and records.
"""

from __future__ import annotations

from broker.clock import Clock
from broker.core import audit
from broker.core.flows import AuthorizeRequest, config
from broker.core.ports import (
    AccessTokenRecord,
    AuthCode,
    BrokerSession,
    RefreshTokenRecord,
    Store,
)
from broker.ids import hash_token, new_id, new_token


def issue_code(store: Store, now: float, *, request: AuthorizeRequest, session: BrokerSession,
               flow_id: str | None) -> str:
    """Mint a one-time code for this request and session; return it (shown once)."""
    code = new_token(32)
    store.grants.create_code(hash_token(code), AuthCode(
        grant_id=new_id("fam"), client_id=request.client_id, session_id=session.id,
        flow_id=flow_id, redirect_uri=request.redirect_uri,
        code_challenge=request.code_challenge or "",
        code_challenge_method=request.code_challenge_method or "",
        nonce=request.nonce, scope=request.scope, claims=dict(session.claims),
        auth_time=session.auth_time, created_at=now, expires_at=now + config().code_ttl))
    store.sessions.add_client(session.id, request.client_id, session.claims["sub"], now)
    return code


class AlreadyUsed(Exception):
    """Another request consumed the code or rotated the refresh token first."""


def peek_code(store: Store, clock: Clock, client_id: str, code: str,
              actor: audit.Actor = audit.SYSTEM) -> AuthCode | None:
    """The code's grant if it is unused, unexpired and this client's (read only: it is
    consumed by `record_issued`, in the transaction that records the tokens). A code
    that was already used revokes the tokens its first use produced."""
    now = clock.now()
    known = store.grants.find_code(hash_token(code))
    if known is None or known.client_id != client_id:
        return None
    if known.consumed_at is not None:
        with store.transaction():
            revoked = store.grants.revoke_grant(known.grant_id, now, "code_replayed")
            audit.record(store, actor, "oauth.code_replayed", now, target=client_id,
                         grant_id=known.grant_id, tokens_revoked=revoked)
        return None
    return known if known.expires_at > now else None


def peek_refresh(store: Store, clock: Clock, client_id: str, token: str,
                 actor: audit.Actor = audit.SYSTEM) -> RefreshTokenRecord | None:
    """The refresh token's record if live and this client's (rotated by `record_issued`).
    Reuse of a rotated token revokes its family."""
    now = clock.now()
    known = store.grants.find_refresh(hash_token(token))
    if known is None or known.client_id != client_id or known.revoked_at is not None:
        return None
    if known.rotated_at is not None:
        with store.transaction():
            revoked = store.grants.revoke_grant(known.family_id, now, "refresh_reused")
            audit.record(store, actor, "oauth.refresh_reused", now,
                         organization_id=known.organization_id or None, target=client_id,
                         family_id=known.family_id, tokens_revoked=revoked)
        return None
    return known if known.expires_at > now else None


def record_issued(store: Store, now: float, *, grant_id: str, client_id: str,
                  session_id: str, claims: dict[str, object], scope: str, auth_time: float,
                  refresh_token: str | None, access_jti: str, access_expires_at: float,
                  code: str | None = None, spent_refresh: str | None = None) -> None:
    """In ONE write transaction: consume the code (or rotate the presented refresh
    token) atomically and remember the new tokens (hashes only). Raises AlreadyUsed when
    another request won the race, and then nothing is recorded."""
    with store.transaction():
        if code is not None and store.grants.consume_code(hash_token(code), client_id,
                                                          now) is None:
            raise AlreadyUsed("authorization code already used")
        if spent_refresh is not None and store.grants.rotate_refresh(
                hash_token(spent_refresh), client_id, now) is None:
            raise AlreadyUsed("refresh token already used")
        store.grants.create_access(AccessTokenRecord(
            jti=access_jti, grant_id=grant_id, client_id=client_id, session_id=session_id,
            claims=dict(claims), created_at=now, expires_at=access_expires_at))
        if refresh_token is not None:
            store.grants.create_refresh(hash_token(refresh_token), RefreshTokenRecord(
                family_id=grant_id, client_id=client_id, session_id=session_id,
                organization_id=str(claims.get("org_id", "")), subject=str(claims["sub"]),
                email=_str_or_none(claims.get("email")),
                directory_user_id=_str_or_none(claims.get("directory_user_id")),
                scope=scope, claims=dict(claims), auth_time=auth_time, created_at=now,
                expires_at=now + config().refresh_ttl))


def find_refresh(store: Store, client_id: str, token: str) -> RefreshTokenRecord | None:
    record = store.grants.find_refresh(hash_token(token))
    return record if record is not None and record.client_id == client_id else None


def revoke_refresh(store: Store, clock: Clock, record: RefreshTokenRecord) -> int:
    """RFC 7009 §2.1: revoking a refresh token also revokes its access tokens."""
    with store.transaction():
        return store.grants.revoke_grant(record.family_id, clock.now(), "revoked_by_client")


def _str_or_none(value: object) -> str | None:
    return None if value is None else str(value)
