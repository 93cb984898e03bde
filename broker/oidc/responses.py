"""Authorization responses to the client: query redirect or form_post (OAuth 2.0 Form
Post Response Mode), for answers and for RFC 6749 §4.1.2.1 errors alike.

A redirect or a form only ever targets a redirect URI that exactly matched the client's
registration; every other error is an HTML page (RFC 6749 §4.1.2.1, first paragraph).
The form_post page's one inline script is allowed by its hash, nothing else runs.
"""

from __future__ import annotations

import base64
import hashlib
from urllib.parse import urlencode, urlsplit

from aiohttp import web

from broker.web.render import render

# Must equal the <script> body of ui/templates/form_post.html byte for byte.
AUTO_SUBMIT_JS = "document.forms[0].submit();"
_SCRIPT_HASH = base64.b64encode(hashlib.sha256(AUTO_SUBMIT_JS.encode()).digest()).decode()


def redirect_with(uri: str, params: dict[str, str | None]) -> str:
    query = urlencode({k: v for k, v in params.items() if v is not None})
    return uri + ("&" if "?" in uri else "?") + query


def respond(
    request: web.Request, redirect_uri: str, response_mode: str, params: dict[str, str | None]
) -> web.Response:
    """Send `params` to the client's (verified) redirect URI in the requested mode."""
    if response_mode == "form_post":
        return form_post(request, redirect_uri, params)
    response = web.Response(
        status=302,
        headers={"Location": redirect_with(redirect_uri, params), "Cache-Control": "no-store"},
    )
    return response


def form_post(request: web.Request, action: str, params: dict[str, str | None]) -> web.Response:
    target = urlsplit(action)
    csp = (
        f"default-src 'none'; script-src 'sha256-{_SCRIPT_HASH}'; style-src 'self'; "
        f"form-action {target.scheme}://{target.netloc}; frame-ancestors 'none'; "
        "base-uri 'none'"
    )
    fields = [(k, v) for k, v in params.items() if v is not None]
    return render(
        request,
        "form_post.html",
        {"action": action, "fields": fields, "script": AUTO_SUBMIT_JS},
        headers={"Content-Security-Policy": csp, "Cache-Control": "no-store"},
    )
