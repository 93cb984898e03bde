"""Jinja2 rendering shared by the edges: templates live in the top-level ui/ folder,
packaged into the wheel as `broker._ui` (docs/adr/0005)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

import jinja2
from aiohttp import web

from broker.web.middlewares import request_id

ENV_KEY: web.AppKey[jinja2.Environment] = web.AppKey("jinja_env", jinja2.Environment)


def ui_dir() -> Path:
    return Path(str(resources.files("broker._ui")))


def make_environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(ui_dir() / "templates")),
        autoescape=jinja2.select_autoescape(default=True, default_for_string=True),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    return env


def _environment(request: web.Request) -> jinja2.Environment:
    app = request.app
    while True:
        if ENV_KEY in app:
            return app[ENV_KEY]
        parent = getattr(app, "_parent_app", None)  # sub-apps see the root's environment
        if parent is None:
            env = make_environment()
            return env
        app = parent


def render(
    request: web.Request,
    template: str,
    context: dict[str, Any] | None = None,
    status: int = 200,
    headers: dict[str, str] | None = None,
) -> web.Response:
    html = (
        _environment(request)
        .get_template(template)
        .render(request_id=request_id(request), **(context or {}))
    )
    response = web.Response(text=html, status=status, content_type="text/html", headers=headers)
    response.headers.setdefault("Cache-Control", "no-store")
    response.headers.setdefault(
        "Content-Security-Policy",
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "form-action *; frame-ancestors 'none'; base-uri 'none'",
    )
    return response


def error_page(
    request: web.Request,
    message: str,
    *,
    status: int = 400,
    title: str = "Sign-in could not be completed",
) -> web.Response:
    """A short reason and the correlation id; the full reason is in the audit log."""
    return render(request, "error.html", {"title": title, "message": message}, status=status)
