"""SSRF-safe HTTP client for the back channel to a customer's OIDC IdP.

DESIGN.md §6: discovery, JWKS, token and userinfo calls go to URLs an admin (or the
IdP's discovery document) gave us, so they obey the same rules as SAML metadata fetches
(broker/saml/fetch.py, which this edge may not import): HTTPS only, a timeout on every
call, a size limit, private addresses only for hosts on `network.private_hosts_allowlist`,
every redirect re-checked; plain HTTP only to loopback and only when the process was
started with the explicit insecure-loopback flag (tests, local demos).

How: each request resolves the host here and vets every address; the connection is made
through a resolver that can answer only with those vetted addresses for that one host
(no second DNS look-up between check and connect). Unlike the one-shot metadata fetch,
logins are hot: connections are pooled per (host, port, vetted addresses, CA bundle) so
that a login does not pay a TLS handshake per call. Reusing a pooled connection is safe
because it can only ever lead to addresses that were vetted for that host.

It must never: follow a redirect automatically (a bearer token or client secret would
follow it), honour proxy environment variables, connect to an address it did not check,
or put response bytes in an error's public message.
"""

from __future__ import annotations

import asyncio
import hashlib
import ipaddress
import json
import socket
import ssl
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin, urlsplit

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult

from broker.errors import BrokerError

MAX_REDIRECTS = 3
_REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
_LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})
_MAX_POOLS = 64

Resolver = Callable[[str, int], Awaitable[Sequence[str]]]
IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class UpstreamHttpError(BrokerError):
    """A call to the IdP was refused or failed; `kind` is a stable reason
    (bad_url, blocked_address, dns, tls, connect, timeout, too_big, http_status, bad_json)."""

    code = "upstream_http"

    def __init__(self, kind: str, public: str, detail: str | None = None) -> None:
        super().__init__(public, detail)
        self.kind = kind


@dataclass(frozen=True)
class FetchPolicy:
    """How careful to be; one per process, from settings."""

    allowlist: frozenset[str] = frozenset()
    timeout: float = 10.0
    max_bytes: int = 1_000_000
    allow_insecure_loopback: bool = False


@dataclass(frozen=True)
class HttpResponse:
    status: int
    headers: Mapping[str, str]
    body: bytes

    def json(self) -> dict[str, Any]:
        try:
            value = json.loads(self.body)
        except ValueError as exc:
            raise UpstreamHttpError(
                "bad_json",
                "The identity provider answered with something that is not JSON.",
                str(exc),
            ) from exc
        if not isinstance(value, dict):
            raise UpstreamHttpError("bad_json", "The identity provider's answer is not an object.")
        return value


@dataclass(frozen=True)
class _Target:
    url: str
    host: str
    port: int
    scheme: str


async def system_resolver(host: str, port: int) -> Sequence[str]:
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def check_url(url: str, allow_insecure_loopback: bool, *, what: str = "The URL") -> _Target:
    """Refuse anything but https (or http to loopback with the explicit flag)."""
    try:
        parts = urlsplit(url)
        host, port = parts.hostname, parts.port
    except ValueError as exc:
        raise UpstreamHttpError("bad_url", f"{what} is not valid.", url) from exc
    if not host:
        raise UpstreamHttpError("bad_url", f"{what} has no host.", url)
    if parts.username is not None or parts.password is not None:
        raise UpstreamHttpError("bad_url", f"{what} must not carry a user name or password.")
    if parts.fragment:
        raise UpstreamHttpError("bad_url", f"{what} must not have a fragment.", url)
    host = normalize_host(host)
    if parts.scheme == "http" and allow_insecure_loopback and host in _LOOPBACK_NAMES:
        pass  # tests and local demos only, by explicit opt-in
    elif parts.scheme != "https":
        raise UpstreamHttpError("bad_url", f"{what} does not use HTTPS.", url)
    default_port = 443 if parts.scheme == "https" else 80
    return _Target(url=url, host=host, port=port or default_port, scheme=parts.scheme)


def normalize_host(host: str) -> str:
    return host.strip().strip("[]").rstrip(".").lower()


def _ip_or_none(text: str) -> IpAddress | None:
    try:
        ip = ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def _is_public(ip: IpAddress) -> bool:
    return ip.is_global and not (
        ip.is_multicast or ip.is_reserved or ip.is_unspecified or ip.is_link_local
    )


class _PinnedResolver(AbstractResolver):
    """Answers for exactly one host name, with the addresses that were vetted."""

    def __init__(self, host: str, addresses: Sequence[str]) -> None:
        self._host = host
        self._addresses = tuple(addresses)

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        if normalize_host(host) != self._host:
            raise OSError(f"refusing to resolve unvetted host {host}")
        return [
            ResolveResult(
                hostname=host,
                host=text,
                port=port,
                family=socket.AF_INET6
                if ipaddress.ip_address(text).version == 6
                else socket.AF_INET,
                proto=0,
                flags=socket.AI_NUMERICHOST,
            )
            for text in self._addresses
        ]

    async def close(self) -> None:
        return None


class SafeHttp:
    """Pooled, vetted HTTP calls. One per application; `close()` at shutdown."""

    def __init__(self, policy: FetchPolicy, resolver: Resolver | None = None) -> None:
        self.policy = policy
        self._resolve = resolver or system_resolver
        self._pools: OrderedDict[tuple[Any, ...], aiohttp.ClientSession] = OrderedDict()
        self._contexts: dict[str, ssl.SSLContext] = {}
        # Hosts an administrator allowed at run time (the store's network allow-list);
        # the edge refreshes this every few seconds, on top of the settings' list.
        self.extra_allowlist: frozenset[str] = frozenset()

    async def close(self) -> None:
        pools, self._pools = list(self._pools.values()), OrderedDict()
        for session in pools:
            await session.close()

    async def request(
        self,
        method: str,
        url: str,
        *,
        ca_pem: str | None = None,
        headers: Mapping[str, str] | None = None,
        form: Mapping[str, str] | None = None,
        follow_redirects: bool = False,
    ) -> HttpResponse:
        """One call with the policy's timeout covering every hop; non-2xx is returned,
        not raised, so that callers can read OAuth error bodies."""
        timeout = self.policy.timeout
        try:
            async with asyncio.timeout(timeout):
                current = url
                for hop in range(MAX_REDIRECTS + 1):
                    what = "The URL" if hop == 0 else "A redirect"
                    target = check_url(current, self.policy.allow_insecure_loopback, what=what)
                    addresses = await self._vet(target)
                    response = await self._once(
                        method, target, addresses, ca_pem, headers or {}, form
                    )
                    if response.status in _REDIRECT_STATUSES and follow_redirects:
                        location = response.headers.get("Location")
                        if not location:
                            raise UpstreamHttpError(
                                "http_status", f"HTTP {response.status} without a Location."
                            )
                        current = urljoin(current, location)
                        continue
                    return response
                raise UpstreamHttpError(
                    "http_status", f"More than {MAX_REDIRECTS} redirects; giving up.", url
                )
        except TimeoutError as exc:
            host = urlsplit(url).hostname or url
            raise UpstreamHttpError(
                "timeout", f"The identity provider ({host}) did not answer within {timeout:g} s."
            ) from exc

    async def _vet(self, target: _Target) -> tuple[str, ...]:
        literal = _ip_or_none(target.host)
        if literal is not None:
            texts: Sequence[str] = [str(literal)]
        else:
            try:
                texts = await self._resolve(target.host, target.port)
            except OSError as exc:
                raise UpstreamHttpError(
                    "dns", f"The host name {target.host} could not be resolved.", str(exc)
                ) from exc
        addresses = [ip for ip in (_ip_or_none(t) for t in texts) if ip is not None]
        if not addresses:
            raise UpstreamHttpError("dns", f"The host name {target.host} could not be resolved.")
        if target.host not in self.policy.allowlist and target.host not in self.extra_allowlist:
            blocked = [str(ip) for ip in addresses if not _is_public(ip)]
            if blocked:  # a mixed answer is refused too: it is a rebinding tell
                raise UpstreamHttpError(
                    "blocked_address",
                    f"{target.host} resolves to a private or reserved address; an administrator "
                    "must add the host to the network allow-list first.",
                    f"{target.host} -> {', '.join(blocked)}",
                )
        return tuple(sorted(str(ip) for ip in addresses))

    def _ssl_context(self, ca_pem: str | None) -> ssl.SSLContext:
        key = hashlib.sha256((ca_pem or "").encode()).hexdigest()
        context = self._contexts.get(key)
        if context is None:
            try:
                context = ssl.create_default_context(cadata=ca_pem or None)
            except (ssl.SSLError, ValueError) as exc:
                raise UpstreamHttpError("tls", "The CA bundle cannot be read.", str(exc)) from exc
            context.minimum_version = ssl.TLSVersion.TLSv1_2
            self._contexts[key] = context
        return context

    def _pool(
        self, target: _Target, addresses: tuple[str, ...], ca_pem: str | None
    ) -> aiohttp.ClientSession:
        ca_key = hashlib.sha256((ca_pem or "").encode()).hexdigest()
        key = (target.scheme, target.host, target.port, addresses, ca_key)
        session = self._pools.get(key)
        if session is not None and not session.closed:
            self._pools.move_to_end(key)
            return session
        connector = aiohttp.TCPConnector(
            resolver=_PinnedResolver(target.host, addresses),
            use_dns_cache=False,
            ssl=self._ssl_context(ca_pem) if target.scheme == "https" else False,
            limit_per_host=32,
        )
        session = aiohttp.ClientSession(connector=connector, trust_env=False)
        self._pools[key] = session
        while len(self._pools) > _MAX_POOLS:
            _, old = self._pools.popitem(last=False)
            asyncio.get_running_loop().create_task(old.close())
        return session

    async def _once(
        self,
        method: str,
        target: _Target,
        addresses: tuple[str, ...],
        ca_pem: str | None,
        headers: Mapping[str, str],
        form: Mapping[str, str] | None,
    ) -> HttpResponse:
        session = self._pool(target, addresses, ca_pem)
        max_bytes = self.policy.max_bytes
        try:
            async with session.request(
                method,
                target.url,
                headers={"Accept": "application/json", **headers},
                data=dict(form) if form is not None else None,
                allow_redirects=False,
            ) as response:
                if response.content_length is not None and response.content_length > max_bytes:
                    raise _too_big(max_bytes)
                body = bytearray()
                async for chunk in response.content.iter_chunked(64 * 1024):
                    body += chunk
                    if len(body) > max_bytes:
                        raise _too_big(max_bytes)
                return HttpResponse(response.status, dict(response.headers), bytes(body))
        except (aiohttp.ClientConnectorCertificateError, aiohttp.ClientSSLError) as exc:
            raise UpstreamHttpError(
                "tls", f"The TLS certificate of {target.host} could not be verified.", str(exc)
            ) from exc
        except aiohttp.ClientConnectorError as exc:
            raise UpstreamHttpError(
                "connect", f"Could not connect to the identity provider ({target.host}).", str(exc)
            ) from exc
        except aiohttp.ClientError as exc:
            raise UpstreamHttpError(
                "connect", f"The request to the identity provider ({target.host}) failed.", str(exc)
            ) from exc


def _too_big(max_bytes: int) -> UpstreamHttpError:
    return UpstreamHttpError("too_big", f"The answer is larger than {max_bytes} bytes.")
