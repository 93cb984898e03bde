"""Rendering for the setup UI: every page gets the admin, the CSRF token and notices."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

from aiohttp import web

from broker.admin.security import REQ_SESSION, actor, csrf_token, services_of
from broker.errors import BrokerError
from broker.web.render import render

T = TypeVar("T")

# Which optional page areas are wired (connections wizard, Directory Sync pages).
FEATURES: web.AppKey[dict[str, bool]] = web.AppKey("admin_features", dict)


def when(ts: float | None) -> str:
    """A timestamp as the admin reads it (UTC, minute precision)."""
    if ts is None:
        return ""
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(ts))


@dataclass(frozen=True)
class Notice:
    """A message at the top of a page: `ok` (green), `bad` (red) or `info` (neutral)."""

    kind: Literal["ok", "bad", "info"]
    text: str


def page(
    request: web.Request,
    template: str,
    context: dict[str, Any] | None = None,
    *,
    notices: list[Notice] | None = None,
    status: int = 200,
) -> web.Response:
    values: dict[str, Any] = {
        "admin": request.get(REQ_SESSION),
        "csrf": csrf_token(request),
        "notices": notices or [],
        "path": request.path,
        "when": when,
        "features": request.config_dict.get(FEATURES, {}),
    }
    values.update(context or {})
    return render(request, f"admin/{template}", values, status=status)


async def attempt(call: Awaitable[T], notices: list[Notice]) -> T | None:
    """Await a core call; a refusal (bad input, policy, conflict) becomes a red notice."""
    try:
        return await call
    except BrokerError as exc:
        notices.append(Notice("bad", _sentence(exc.public)))
        return None


def _sentence(text: str) -> str:
    text = text.strip()
    first = text.split(" ", 1)[0]
    if first.isalpha() and first.islower():  # not a domain or an identifier
        text = text[0].upper() + text[1:]
    return text if text.endswith((".", "!", "?")) else text + "."


async def form_text(request: web.Request, name: str) -> str:
    value = (await request.post()).get(name, "")
    return value.strip() if isinstance(value, str) else ""


async def form_checked(request: web.Request, name: str) -> bool:
    return (await request.post()).get(name) in ("on", "yes", "1", "true")


def redirect(location: str) -> web.Response:
    """303 See Other: after a POST, the browser GETs the page (no re-submission)."""
    return web.Response(status=303, headers={"Location": location})


Shown = Callable[[web.Request, list[Notice], int], Awaitable[web.StreamResponse]]


async def confirmed_switch(
    request: web.Request,
    switch: Callable[..., Any],
    *,
    unconfirmed: str,
    done: str,
    show: Shown,
) -> web.StreamResponse:
    """A policy switch behind a "tick to confirm" box: the core call decides, the page tells."""
    services = services_of(request)
    notices: list[Notice] = []
    if not await form_checked(request, "confirm"):
        notices.append(Notice("bad", unconfirmed))
        return await show(request, notices, 400)
    org = await attempt(
        services.run(
            switch, services.store, services.clock, actor(request), request.match_info["org_id"]
        ),
        notices,
    )
    if org is not None:
        notices.append(Notice("ok", done))
    return await show(request, notices, 200 if org is not None else 400)
