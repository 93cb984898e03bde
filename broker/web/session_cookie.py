"""The broker session cookie, shared by every edge that completes a login.

The value is a random secret; the store keeps only its SHA-256 (core.login). The
cookie is HttpOnly and SameSite=Lax (sent on the top-level GET that brings Exec's next
authorize request, never on cross-site sub-requests), and Secure with the `__Host-`
prefix when the public URL is https (DESIGN §6). Its id (`sid`) never opens it.
"""

from __future__ import annotations

from aiohttp import web

from broker.settings import Settings

PLAIN_NAME = "broker_session"
SECURE_NAME = "__Host-broker_session"


def _secure(settings: Settings) -> bool:
    return settings.public_url.startswith("https://")


def cookie_name(settings: Settings) -> str:
    return SECURE_NAME if _secure(settings) else PLAIN_NAME


def set_session_cookie(
    response: web.StreamResponse, settings: Settings, token: str, max_age: int | None = None
) -> None:
    response.set_cookie(
        cookie_name(settings),
        token,
        max_age=max_age,
        path="/",
        httponly=True,
        secure=_secure(settings),
        samesite="Lax",
    )


def read_session_cookie(request: web.Request, settings: Settings) -> str | None:
    value = request.cookies.get(cookie_name(settings))
    return value if value else None


def clear_session_cookie(response: web.StreamResponse, settings: Settings) -> None:
    response.del_cookie(
        cookie_name(settings), path="/", secure=_secure(settings), httponly=True, samesite="Lax"
    )
