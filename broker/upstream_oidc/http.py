"""SSRF-safe HTTP client for the back channel to a customer's OIDC IdP.

DESIGN.md §6: discovery, JWKS, token and userinfo calls go to URLs an admin (or the IdP's
discovery document) gave us, so they obey the same rules as SAML metadata fetches: HTTPS
only, a timeout on every call, a size limit, private addresses only for hosts on
`network.private_hosts_allowlist` (or the store's run-time list), every redirect
re-checked, connections pooled per vetted address set. The machinery is
broker.web.safe_http, shared with the SAML edge (which this edge may not import); this
module gives it the names this edge's callers use, and speaks of "the identity provider"
in its public messages.

It must never: follow a redirect unless a caller asks for it on a GET (a bearer token or
client secret would follow it), honour proxy environment variables, connect to an address
it did not check, or put response bytes in an error's public message.
"""

from __future__ import annotations

from broker.web import safe_http
from broker.web.safe_http import (
    MAX_REDIRECTS,
    FetchPolicy,
    HttpResponse,
    Resolver,
    check_url,
    normalize_host,
    system_resolver,
)

# The one error type of broker.web.safe_http, under the name this edge has always used.
UpstreamHttpError = safe_http.SafeHttpError

__all__ = [
    "MAX_REDIRECTS",
    "FetchPolicy",
    "HttpResponse",
    "Resolver",
    "SafeHttp",
    "UpstreamHttpError",
    "check_url",
    "normalize_host",
    "system_resolver",
]


class SafeHttp(safe_http.SafeHttp):
    """The shared pooled client; one per application, `close()` at shutdown."""

    peer = "the identity provider"
