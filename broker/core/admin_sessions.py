"""Setup-UI sign-in: first-run setup tokens, throttled password sign-in, sessions, CSRF.

Rules (DESIGN §6, issue 8):
- While no administrator exists, `exec-broker serve` prints a one-time setup URL: a
  random token, stored hashed, that expires and is consumed atomically on use.
- Passwords are argon2 (checked through an injected function; broker.crypto holds argon2).
  An unknown username is checked against a dummy hash, so it answers as slowly as a
  wrong password and says the same words.
- Failed sign-ins are counted per (username, address) and per username across all
  addresses (OWASP Authentication Cheat Sheet, "Account lockout"); past either limit
  within the window, that pair or that username is refused for the lockout time without
  checking the password. The limits are settings (`admin.login_*`), passed in as
  `ThrottleLimits` by the edge. The per-username count lives in the same table as the
  pairs, under the address USER_WIDE ("" — never an address: an unknown one is "-").
- A session is a random cookie stored as its SHA-256; it carries a synchronizer CSRF
  token and ends after the configured idle time.
Every sign-in, failure, sign-out and setup is written to the audit log (never a secret).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from broker.clock import Clock
from broker.core import admins, audit
from broker.core.models import Admin
from broker.core.ports import AdminSession, LoginThrottle, Store
from broker.errors import InvalidInput, NotFound, PolicyError
from broker.ids import hash_token, new_token, tokens_equal

USER_WIDE = ""  # the throttle row counting one username's failures from every address
TOUCH_EVERY_SECONDS = 15  # write last-seen at most this often (fewer writes per page)


@dataclass(frozen=True)
class ThrottleLimits:
    """Sign-in throttle limits (settings `admin.login_*`; defaults in broker.settings)."""

    max_failures: int  # per (username, address) within the window
    window_seconds: float
    lockout_seconds: float
    max_failures_per_user: int  # per username, every address together, within the window


@dataclass(frozen=True)
class SignIn:
    """The outcome of a sign-in attempt; `message` is safe to show."""

    ok: bool
    message: str
    cookie: str | None = None  # the session cookie value, only when ok
    retry_after: float = 0.0


def issue_setup_token(store: Store, clock: Clock, ttl_seconds: float) -> str | None:
    """A fresh one-time setup token while no administrator exists; None once one does."""
    now = clock.now()
    with store.transaction():
        if store.admins.count() > 0:
            return None
        token = new_token()
        store.admin_sessions.add_setup_token(hash_token(token), now, now + ttl_seconds)
    return token


def setup_token_usable(store: Store, clock: Clock, token: str) -> bool:
    if not token or store.admins.count() > 0:
        return False
    return store.admin_sessions.setup_token_valid(hash_token(token), clock.now())


def complete_setup(
    store: Store,
    clock: Clock,
    actor: audit.Actor,
    token: str,
    username: str,
    password: str,
    hash_password: Callable[[str], str],
    user_agent: str | None = None,
) -> tuple[Admin, str]:
    """Create the first administrator with a setup token (single use); sign them in."""
    hashed = hash_password(password)  # slow (argon2): outside the write transaction
    now = clock.now()
    with store.transaction():
        if store.admins.count() > 0:
            raise PolicyError("an administrator already exists; sign in instead")
        if not token or not store.admin_sessions.consume_setup_token(hash_token(token), now):
            raise PolicyError(
                "this setup link has expired or was already used; restart `exec-broker serve` "
                "for a new one, or run `exec-broker admin create`"
            )
        admin = admins.create_admin(store, clock, actor, username, password, lambda _: hashed)
        audit.record(store, actor, "admin.setup_completed", now, target=admin.id)
        cookie = _start_session(store, now, admin, actor, user_agent)
    return admin, cookie


def sign_in(
    store: Store,
    clock: Clock,
    actor: audit.Actor,
    username: str,
    password: str,
    check_password: Callable[[str, str], bool],
    dummy_hash: str,
    limits: ThrottleLimits,
    user_agent: str | None = None,
) -> SignIn:
    """Check a password under the throttle; start a session when it is right."""
    now = clock.now()
    name = username.strip().lower()[:64]
    key = (name, actor.remote_addr or "-")
    state = store.admin_sessions.throttle(*key)
    user_state = store.admin_sessions.throttle(name, USER_WIDE)
    wait = max(_locked_for(state, now), _locked_for(user_state, now))
    if wait > 0:
        with store.transaction():
            audit.record(store, actor, "admin.sign_in_throttled", now, username=name)
        return SignIn(False, _locked_message(wait), retry_after=wait)
    try:
        admin: Admin | None = store.admins.get_by_username(username.strip())
    except NotFound:
        admin = None
    # Always run one argon2 check, so an unknown name takes as long as a wrong password.
    good = check_password(admin.password_hash if admin else dummy_hash, password)
    with store.transaction():
        if admin is None or not good:
            # Read again under the write lock: parallel guesses must not share one count.
            state = store.admin_sessions.throttle(*key)
            user_state = store.admin_sessions.throttle(name, USER_WIDE)
            failures, pair_locked = _record_failure(
                store, key, state, now, limits.max_failures, limits
            )
            user_failures, user_locked = _record_failure(
                store, (name, USER_WIDE), user_state, now, limits.max_failures_per_user, limits
            )
            audit.record(
                store,
                actor,
                "admin.sign_in_failed",
                now,
                username=name,
                failures=failures,
                failures_all_addresses=user_failures,
            )
            if pair_locked or user_locked:
                wait = limits.lockout_seconds
                return SignIn(False, _locked_message(wait), retry_after=wait)
            return SignIn(False, "The username or password is not right.")
        # Only this address's count is cleared: the username-wide count may hold another
        # address's guesses, which a right password from here does not excuse.
        store.admin_sessions.clear_throttle(*key)
        store.admins.update(admin.id, last_login_at=now)
        cookie = _start_session(store, now, admin, actor, user_agent)
        audit.record(store, _as(admin, actor), "admin.signed_in", now, target=admin.id)
    return SignIn(True, "Signed in.", cookie=cookie)


def current(
    store: Store, clock: Clock, cookie: str | None, idle_timeout_seconds: float
) -> AdminSession | None:
    """The live session behind a cookie, or None (unknown, ended or idle too long)."""
    if not cookie:
        return None
    now = clock.now()
    session = store.admin_sessions.live(hash_token(cookie))
    if session is None:
        return None
    if now - session.last_seen_at > idle_timeout_seconds:
        with store.transaction():
            store.admin_sessions.end(session.id, now)
            audit.record(store, audit.SYSTEM, "admin.session_expired", now, target=session.admin_id)
        return None
    if now - session.last_seen_at >= TOUCH_EVERY_SECONDS:
        with store.transaction():
            store.admin_sessions.touch(session.id, now)
    return session


def sign_out(store: Store, clock: Clock, actor: audit.Actor, session: AdminSession) -> None:
    now = clock.now()
    with store.transaction():
        store.admin_sessions.end(session.id, now)
        audit.record(store, actor, "admin.signed_out", now, target=session.admin_id)


def csrf_matches(expected: str, submitted: str | None) -> bool:
    """Synchronizer-token check in constant time (OWASP CSRF cheat sheet)."""
    return bool(submitted) and bool(expected) and tokens_equal(expected, submitted or "")


def actor_for(session: AdminSession, remote_addr: str | None, correlation_id: str) -> audit.Actor:
    return audit.Actor(f"admin:{session.admin_id}", remote_addr, correlation_id)


def _as(admin: Admin, actor: audit.Actor) -> audit.Actor:
    return audit.Actor(f"admin:{admin.id}", actor.remote_addr, actor.correlation_id)


def _start_session(
    store: Store, now: float, admin: Admin, actor: audit.Actor, user_agent: str | None
) -> str:
    cookie = new_token()
    store.admin_sessions.create(
        hash_token(cookie), admin.id, new_token(), actor.remote_addr, user_agent, now
    )
    return cookie


def _locked_for(state: LoginThrottle | None, now: float) -> float:
    """Seconds left on a lock, 0 when there is none."""
    if state is None or state.locked_until is None:
        return 0.0
    return max(0.0, state.locked_until - now)


def _record_failure(
    store: Store,
    key: tuple[str, str],
    state: LoginThrottle | None,
    now: float,
    limit: int,
    limits: ThrottleLimits,
) -> tuple[int, bool]:
    """Count one failure under `key`; (failures in the window, whether it is now locked)."""
    # A new window after the old one ran out, or after a lock ended (else, with a lockout
    # shorter than the window, the next single mistake would lock again at once). A lock
    # still running (a parallel guess set it) is never reset here, only extended.
    if state is None or (
        _locked_for(state, now) == 0
        and (state.locked_until is not None or now - state.window_start > limits.window_seconds)
    ):
        state = LoginThrottle(0, now)
    failures = state.failures + 1
    locked = now + limits.lockout_seconds if failures >= limit else state.locked_until
    store.admin_sessions.set_throttle(*key, LoginThrottle(failures, state.window_start, locked))
    return failures, locked is not None


def _locked_message(seconds: float) -> str:
    minutes = max(1, round(seconds / 60))
    return (
        f"Too many failed attempts. Sign-in is paused for about {minutes} minute"
        f"{'s' if minutes != 1 else ''}; ask another administrator or try again later."
    )


def require_text(value: str | None, what: str) -> str:
    text = (value or "").strip()
    if not text:
        raise InvalidInput(f"{what} is required")
    return text
