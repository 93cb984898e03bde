"""RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0 §2-3).

Ends the broker session (the cookie's, else the one named by the `sid` of a valid
`id_token_hint`), which revokes its refresh tokens and queues back-channel logouts
(core.access). `post_logout_redirect_uri` must exactly match one the client registered
(the client named by the hint's `aud` or by `client_id`); otherwise no redirect.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from broker.core import access
from broker.core.models import Client
from broker.errors import NotFound
from broker.ids import hash_token
from broker.oidc import tokens
from broker.oidc.authorize import actor
from broker.oidc.responses import redirect_with
from broker.web.render import error_page, render
from broker.web.services import SERVICES, Services
from broker.web.session_cookie import clear_session_cookie, read_session_cookie


def _logout(services: Services, params: dict[str, str], cookie: str | None,
            who: Any) -> tuple[bool, Client | None]:
    """(hint valid or absent, the client it names); ends the session."""
    hint_claims: dict[str, Any] | None = None
    hint = params.get("id_token_hint")
    if hint:
        hint_claims = tokens.verify(services.keyring, hint, issuer=services.issuer, typ=None,
                                    check_exp=False)
        if hint_claims is None:
            return False, None
    client_id = params.get("client_id") or (hint_claims or {}).get("aud")
    if isinstance(client_id, list):
        client_id = client_id[0] if client_id else None
    client = None
    if client_id:
        try:
            client = services.store.clients.get(str(client_id))
        except NotFound:
            client = None
    now = services.clock.now()
    session = services.store.sessions.by_token(hash_token(cookie), now) if cookie else None
    session_id = session.id if session else (hint_claims or {}).get("sid")
    if session_id:
        access.end_session(services.store, services.clock, str(session_id),
                           reason="rp_logout", actor=who)
    return True, client


async def logout(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    source = await request.post() if request.method == "POST" else request.query
    params = {k: v for k, v in source.items() if isinstance(v, str)}
    cookie = read_session_cookie(request, services.settings)
    ok, client = await services.run(_logout, services, params, cookie, actor(request))
    if not ok:
        return error_page(request, "The sign-out request was not valid.")
    target = params.get("post_logout_redirect_uri")
    if target and (client is None or target not in client.post_logout_redirect_uris):
        response = error_page(request, "You are signed out, but the application's return "
                              "address is not registered.")
    elif target:
        response = web.Response(status=302, headers={
            "Location": redirect_with(target, {"state": params.get("state")}),
            "Cache-Control": "no-store"})
    else:
        response = render(request, "logged_out.html")
    clear_session_cookie(response, services.settings)
    return response
