"""RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0 §2-§4).

Ending a session is a state change a third party must not trigger (logout CSRF, §6):
- With a valid `id_token_hint` (an ID token we signed, our issuer, `aud` a registered
  client, `client_id` if sent equal to it; its expiry may have passed, §2) the session
  ends at once: the browser's session when it is the hint's (same `sid`, or the same
  user), else the hint's `sid` when that client got tokens in it. Only then may the
  browser go to `post_logout_redirect_uri`, and only when the hint's client registered
  it exactly (§3).
- Without a hint the user is asked (§2: "the OP SHOULD ask the End-User whether to log
  out"): a page whose POST carries a token derived from the session cookie, which a
  cross-site page cannot read. No redirect without a hint.
- A hint that is not ours gets an error page; nothing ends.
Ending a session revokes its refresh tokens and queues back-channel logouts (core.access).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aiohttp import web

from broker.core import access
from broker.core.audit import Actor
from broker.core.models import Client
from broker.errors import NotFound
from broker.ids import hash_token, tokens_equal
from broker.oidc import tokens
from broker.oidc.authorize import actor
from broker.oidc.responses import redirect_with
from broker.web.render import error_page, render
from broker.web.services import SERVICES, Services
from broker.web.session_cookie import clear_session_cookie, read_session_cookie


@dataclass(frozen=True)
class Hint:
    """A verified id_token_hint: the client it was issued to and whose session it names."""

    client: Client
    subject: str
    session_id: str | None


def confirmation_token(cookie: str) -> str:
    """The confirmation form's CSRF token: bound to the session cookie (HttpOnly), so only
    a page of ours, shown to that browser, can carry it."""
    return hash_token("rp-logout-confirm\x00" + cookie)


def check_hint(services: Services, hint: str, client_id: str | None) -> Hint | None:
    """The hint's client and session when it is an ID token of ours for a registered
    client (expired or not), else None."""
    claims = tokens.verify(
        services.keyring, hint, issuer=services.issuer, typ=None, check_exp=False, forbid_typ=True
    )
    if claims is None or "events" in claims or not claims.get("sub"):
        return None  # not an ID token (logout tokens carry `events`)
    aud = claims.get("aud")
    if isinstance(aud, list):
        aud = aud[0] if len(aud) == 1 else None
    if not isinstance(aud, str) or (client_id and client_id != aud):
        return None
    try:
        client = services.store.clients.get(aud)
    except NotFound:
        return None
    sid = claims.get("sid")
    return Hint(client, str(claims["sub"]), sid if isinstance(sid, str) else None)


def _end(services: Services, session_id: str, who: Actor) -> None:
    access.end_session(services.store, services.clock, session_id, reason="rp_logout", actor=who)


def logout_with_hint(services: Services, hint: Hint, cookie: str | None, who: Actor) -> bool:
    """End the session the hint names; False when the browser holds another user's
    session (then the user is asked instead)."""
    now = services.clock.now()
    session = services.store.sessions.by_token(hash_token(cookie), now) if cookie else None
    if session is not None:
        if session.id != hint.session_id and session.subject != hint.subject:
            return False
        _end(services, session.id, who)
    if hint.session_id and (session is None or session.id != hint.session_id):
        seen = services.store.sessions.clients(hint.session_id)
        if (hint.client.id, hint.subject) in seen:
            _end(services, hint.session_id, who)
    return True


def logout_confirmed(services: Services, cookie: str | None, who: Actor) -> None:
    now = services.clock.now()
    session = services.store.sessions.by_token(hash_token(cookie), now) if cookie else None
    if session is not None:
        _end(services, session.id, who)


async def _params(request: web.Request) -> dict[str, str]:
    source: Any = await request.post() if request.method == "POST" else request.query
    return {k: v for k, v in source.items() if isinstance(v, str)}


def _signed_out(request: web.Request, services: Services) -> web.Response:
    response = render(request, "logged_out.html")
    clear_session_cookie(response, services.settings)
    return response


async def logout(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    params = await _params(request)
    cookie = read_session_cookie(request, services.settings)
    who = actor(request)
    if request.method == "POST" and "confirm" in params:
        if cookie is None:
            return _signed_out(request, services)
        if not tokens_equal(params["confirm"], confirmation_token(cookie)):
            return error_page(request, "The sign-out request was not valid.")
        await services.run(logout_confirmed, services, cookie, who)
        return _signed_out(request, services)
    hint_value = params.get("id_token_hint")
    if not hint_value:
        if cookie is None:
            return _signed_out(request, services)
        return _confirm(request, cookie)
    hint = await services.run(check_hint, services, hint_value, params.get("client_id"))
    if hint is None:
        return error_page(request, "The sign-out request was not valid.")
    if not await services.run(logout_with_hint, services, hint, cookie, who):
        return _confirm(request, str(cookie))
    target = params.get("post_logout_redirect_uri")
    if target and target not in hint.client.post_logout_redirect_uris:
        response = error_page(
            request, "You are signed out, but the application's return address is not registered."
        )
    elif target:
        response = web.Response(
            status=302,
            headers={
                "Location": redirect_with(target, {"state": params.get("state")}),
                "Cache-Control": "no-store",
            },
        )
    else:
        response = render(request, "logged_out.html")
    clear_session_cookie(response, services.settings)
    return response


def _confirm(request: web.Request, cookie: str) -> web.Response:
    return render(
        request,
        "logout_confirm.html",
        {"csrf": confirmation_token(cookie)},
        headers={"Cache-Control": "no-store"},
    )
