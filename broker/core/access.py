"""Taking access away: ending broker sessions and revoking a user (DESIGN §6).

Whenever a user must lose access (RP-initiated logout, a directory user deactivated or
deleted, SSO switched off, the user's connection deactivated) the broker ends the user's
broker sessions, revokes their refresh tokens and queues an OpenID Connect Back-Channel
Logout 1.0 notice for every client that got tokens in an affected session.
broker.oidc.backchannel signs and POSTs the logout tokens after commit (an outbox, as
for events).
"""

from __future__ import annotations

from broker.clock import Clock
from broker.core import audit, grants
from broker.core.ports import Store


def _queue_logouts(store: Store, now: float, session_id: str, reason: str) -> int:
    queued = 0
    for client_id, subject in store.sessions.clients(session_id):
        client = store.clients.get(client_id)
        if client.backchannel_logout_uri:
            queued += store.logout_outbox.enqueue(client_id, session_id, subject, reason, now)
    return queued


def end_session(
    store: Store, clock: Clock, session_id: str, *, reason: str, actor: audit.Actor = audit.SYSTEM
) -> bool:
    """End one broker session: its refresh tokens are revoked and each client that got
    tokens in it hears of it by back-channel logout. False if it had already ended."""
    with store.transaction():
        return _end(store, clock.now(), session_id, reason, actor)


def end_connection_sessions(
    store: Store, now: float, connection_id: str, *, reason: str, actor: audit.Actor = audit.SYSTEM
) -> int:
    """A connection was deactivated: every session it started ends, their refresh tokens
    are revoked and clients hear of it by back-channel logout (call inside the
    transaction that deactivates it). Returns how many sessions ended."""
    with store.transaction():
        return sum(
            _end(store, now, session_id, reason, actor)
            for session_id in store.sessions.unended_for_connection(connection_id)
        )


def _end(store: Store, now: float, session_id: str, reason: str, actor: audit.Actor) -> bool:
    if not store.sessions.end(session_id, now, reason):
        return False
    session = store.sessions.get(session_id)
    revoked = grants.revoke_session_tokens(store, now, session_id, reason)
    queued = _queue_logouts(store, now, session_id, reason)
    audit.record(
        store,
        actor,
        "session.ended",
        now,
        organization_id=session.organization_id,
        target=session_id,
        reason=reason,
        tokens_revoked=revoked,
        logouts_queued=queued,
    )
    return True


def revoke_user(
    store: Store,
    clock: Clock,
    *,
    organization_id: str,
    email: str | None = None,
    directory_user_id: str | None = None,
    reason: str,
    actor: audit.Actor = audit.SYSTEM,
) -> int:
    """The user loses access now: sessions end, refresh tokens are revoked, back-channel
    logouts are queued. Matches by email (case-insensitive) or directory user id.
    Returns the number of sessions and token families affected."""
    if not email and not directory_user_id:
        return 0
    now = clock.now()
    with store.transaction():
        sessions = store.sessions.live_for_user(organization_id, email, directory_user_id, now)
        touched: set[str] = set()
        for session in sessions:
            store.sessions.end(session.id, now, reason)
            grants.revoke_session_tokens(store, now, session.id, reason)
            _queue_logouts(store, now, session.id, reason)
            touched.add(session.id)
        for client_id, session_id, subject in store.grants.revoke_user(
            organization_id, email, directory_user_id, now, reason
        ):
            if session_id not in touched:  # a session that expired on its own
                grants.revoke_session_tokens(store, now, session_id, reason)
            client = store.clients.get(client_id)
            if client.backchannel_logout_uri:
                store.logout_outbox.enqueue(client_id, session_id, subject, reason, now)
            touched.add(session_id)
        if touched:
            audit.record(
                store,
                actor,
                "user.access_revoked",
                now,
                organization_id=organization_id,
                target=directory_user_id or email,
                reason=reason,
                sessions=sorted(touched),
            )
    return len(touched)
