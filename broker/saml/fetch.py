"""SSRF-safe fetch of IdP metadata (and anything else an admin points us at by URL).

DESIGN.md §6: HTTPS only, timeouts and size limits, private addresses only for hosts on an
admin-managed allow-list (on-prem AD FS lives there), every redirect re-checked. Those
rules, address pinning and the per-call CA bundle are broker.web.safe_http's, shared with
the upstream OIDC edge; this module adds what a metadata fetch wants on top: one GET with
its own connection (closed after), redirects followed (each hop vetted again, at most
`MAX_REDIRECTS`), and anything but 200 at the end is an error.

It must never: follow a redirect unchecked, honour proxy environment variables, connect
to an address it did not check, or put response bytes in an error's public message.
"""

from __future__ import annotations

from collections.abc import Sequence

from broker.web.safe_http import (
    MAX_REDIRECTS,
    FetchPolicy,
    Resolver,
    SafeHttp,
    SafeHttpError,
    system_resolver,
)

# The one error type of broker.web.safe_http, under the name this edge has always used.
FetchError = SafeHttpError

_ACCEPT = "application/samlmetadata+xml, application/xml, text/xml, */*"

__all__ = ["MAX_REDIRECTS", "FetchError", "Resolver", "fetch_metadata", "system_resolver"]


async def fetch_metadata(
    url: str,
    *,
    allowlist: Sequence[str],
    ca_bundle_pem: str | None,
    timeout: float,
    max_bytes: int,
    resolver: Resolver | None = None,
    allow_insecure_loopback: bool = False,
) -> bytes:
    """GET `url` safely and return the body; raise `FetchError` otherwise."""
    policy = FetchPolicy(
        allowlist=frozenset(allowlist),
        timeout=timeout,
        max_bytes=max_bytes,
        allow_insecure_loopback=allow_insecure_loopback,
    )
    async with SafeHttp(policy, resolver) as http:
        response = await http.request(
            "GET",
            url,
            ca_pem=ca_bundle_pem,
            headers={"Accept": _ACCEPT},
            follow_redirects=True,
        )
    if response.status != 200:
        raise FetchError("http_status", f"The server answered HTTP {response.status}.")
    return response.body
