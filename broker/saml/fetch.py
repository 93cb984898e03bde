"""SSRF-safe fetch of IdP metadata (and anything else an admin points us at by URL).

DESIGN.md §6: HTTPS only, timeouts and size limits, private addresses only for hosts on an
admin-managed allow-list (on-prem AD FS lives there), every redirect re-checked.

How: the host name is resolved here, every address is vetted, and the connection is made
through an aiohttp resolver that can answer only with those vetted addresses for that one
host (no second DNS look-up between check and connect, so no DNS-rebinding TOCTOU).
Redirects are followed by hand (at most `MAX_REDIRECTS`), each hop vetted again; a redirect
to a non-HTTPS URL is refused. The body is streamed and abandoned past `max_bytes`. A CA
bundle given per call replaces the system trust store for that call (private AD FS CAs).

It must never: follow a redirect automatically, honour proxy environment variables, connect
to an address it did not check, or put response bytes in an error's public message.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import ssl
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult

from broker.errors import BrokerError

MAX_REDIRECTS = 3
_REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
_LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})

# (host, port) -> addresses as text; injectable for tests and for a DNS module with settings.
Resolver = Callable[[str, int], Awaitable[Sequence[str]]]
IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class FetchError(BrokerError):
    """A fetch was refused or failed; `kind` is a stable machine-readable reason."""

    code = "fetch_failed"

    def __init__(self, kind: str, public: str, detail: str | None = None) -> None:
        super().__init__(public, detail)
        self.kind = kind


async def system_resolver(host: str, port: int) -> Sequence[str]:
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


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
    allowed = frozenset(_normalize_host(h) for h in allowlist)
    resolve = resolver or system_resolver
    ssl_context = _ssl_context(ca_bundle_pem)
    try:
        async with asyncio.timeout(timeout):
            current = url
            for hop in range(MAX_REDIRECTS + 1):
                target = _check_url(current, allow_insecure_loopback, first=hop == 0)
                addresses = await _vet(target, allowed, resolve)
                status, location, body = await _get_once(target, addresses, ssl_context, max_bytes)
                if status in _REDIRECT_STATUSES:
                    if not location:
                        raise FetchError(
                            "http_status", f"The server answered {status} without a Location."
                        )
                    current = urljoin(current, location)
                    continue
                if status != 200:
                    raise FetchError("http_status", f"The server answered HTTP {status}.")
                return body
            raise FetchError(
                "redirect_refused", f"More than {MAX_REDIRECTS} redirects; giving up.", url
            )
    except TimeoutError as exc:
        raise FetchError("timeout", f"The server did not answer within {timeout:g} s.") from exc


@dataclass(frozen=True)
class _Target:
    url: str
    host: str  # normalized: lower case, no trailing dot, IPv6 without brackets
    port: int
    scheme: str


def _check_url(url: str, allow_insecure_loopback: bool, *, first: bool) -> _Target:
    kind = "bad_url" if first else "redirect_refused"
    try:
        parts = urlsplit(url)
        host = parts.hostname
        port = parts.port
    except ValueError as exc:
        raise FetchError(kind, "The URL is not valid.", url) from exc
    if not host:
        raise FetchError(kind, "The URL has no host.", url)
    if parts.username is not None or parts.password is not None:
        raise FetchError(kind, "URLs with a user name or password are not allowed.")
    host = _normalize_host(host)
    if parts.scheme == "http" and allow_insecure_loopback and host in _LOOPBACK_NAMES:
        pass  # tests and local demos only: plain HTTP to this machine, by explicit opt-in
    elif parts.scheme != "https":
        what = "The URL" if first else "A redirect"
        raise FetchError(kind, f"{what} does not use HTTPS.", url)
    default_port = 443 if parts.scheme == "https" else 80
    return _Target(url=url, host=host, port=port or default_port, scheme=parts.scheme)


def _normalize_host(host: str) -> str:
    return host.strip().strip("[]").rstrip(".").lower()


async def _vet(target: _Target, allowed: frozenset[str], resolve: Resolver) -> tuple[str, ...]:
    literal = _ip_or_none(target.host)
    if literal is not None:
        texts: Sequence[str] = [str(literal)]
    else:
        try:
            texts = await resolve(target.host, target.port)
        except OSError as exc:
            raise FetchError(
                "dns", f"The host name {target.host} could not be resolved.", str(exc)
            ) from exc
    addresses = [ip for ip in (_ip_or_none(t) for t in texts) if ip is not None]
    if not addresses:
        raise FetchError("dns", f"The host name {target.host} could not be resolved.")
    if target.host not in allowed:
        blocked = [str(ip) for ip in addresses if not _is_public(ip)]
        if blocked:
            # Refuse even when some addresses are public: a mixed answer is a rebinding tell.
            raise FetchError(
                "blocked_address",
                f"{target.host} resolves to a private or reserved address; an administrator "
                "must add the host to the allow-list first.",
                f"{target.host} -> {', '.join(blocked)}",
            )
    return tuple(str(ip) for ip in addresses)


def _ip_or_none(text: str) -> IpAddress | None:
    try:
        ip = ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped  # ::ffff:10.0.0.1 is 10.0.0.1
    return ip


def _is_public(ip: IpAddress) -> bool:
    return ip.is_global and not (
        ip.is_multicast or ip.is_reserved or ip.is_unspecified or ip.is_link_local
    )


def _ssl_context(ca_bundle_pem: str | None) -> ssl.SSLContext:
    try:
        if ca_bundle_pem:
            context = ssl.create_default_context(cadata=ca_bundle_pem)
        else:
            context = ssl.create_default_context()
    except ssl.SSLError as exc:
        raise FetchError("tls", "The CA bundle cannot be read.", str(exc)) from exc
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


class _PinnedResolver(AbstractResolver):
    """Answers for exactly one host name, with the addresses that were vetted."""

    def __init__(self, host: str, addresses: Sequence[str]) -> None:
        self._host = host
        self._addresses = tuple(addresses)

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        if _normalize_host(host) != self._host:
            raise OSError(f"refusing to resolve unvetted host {host}")
        results: list[ResolveResult] = []
        for text in self._addresses:
            ip = ipaddress.ip_address(text)
            results.append(
                ResolveResult(
                    hostname=host,
                    host=text,
                    port=port,
                    family=socket.AF_INET6 if ip.version == 6 else socket.AF_INET,
                    proto=0,
                    flags=socket.AI_NUMERICHOST,
                )
            )
        return results

    async def close(self) -> None:
        return None


async def _get_once(
    target: _Target, addresses: Sequence[str], ssl_context: ssl.SSLContext, max_bytes: int
) -> tuple[int, str | None, bytes]:
    connector = aiohttp.TCPConnector(
        resolver=_PinnedResolver(target.host, addresses),
        use_dns_cache=False,
        ssl=ssl_context if target.scheme == "https" else False,
        force_close=True,
    )
    headers = {"Accept": "application/samlmetadata+xml, application/xml, text/xml, */*"}
    try:
        async with (
            aiohttp.ClientSession(connector=connector, trust_env=False) as session,
            session.get(target.url, allow_redirects=False, headers=headers) as response,
        ):
            if response.status in _REDIRECT_STATUSES:
                return response.status, response.headers.get("Location"), b""
            if response.status != 200:
                return response.status, None, b""
            if response.content_length is not None and response.content_length > max_bytes:
                raise _too_big(max_bytes)
            body = bytearray()
            async for chunk in response.content.iter_chunked(64 * 1024):
                body += chunk
                if len(body) > max_bytes:
                    raise _too_big(max_bytes)
            return 200, None, bytes(body)
    except (aiohttp.ClientConnectorCertificateError, aiohttp.ClientSSLError) as exc:
        raise FetchError(
            "tls", f"The TLS certificate of {target.host} could not be verified.", str(exc)
        ) from exc
    except aiohttp.ClientConnectorError as exc:
        raise FetchError("connect", f"Could not connect to {target.host}.", str(exc)) from exc
    except aiohttp.ClientError as exc:
        raise FetchError("connect", f"The request to {target.host} failed.", str(exc)) from exc


def _too_big(max_bytes: int) -> FetchError:
    return FetchError("too_big", f"The document is larger than {max_bytes} bytes.")
