"""SSRF-safe outbound HTTP: the one client for URLs an administrator or an IdP gave us.

DESIGN.md §6: metadata, discovery, JWKS, token and userinfo fetches are HTTPS only, with a
timeout and a size limit on every call, private addresses only for hosts on the admin's
allow-list (on-prem AD FS lives there), and every redirect re-checked. Plain HTTP goes to
loopback only, and only when the process was started with the explicit insecure-loopback
flag (tests, local demos). The SAML edge (metadata) and the upstream OIDC edge (back
channel) both use it; they may not import each other, so it lives here.

How: each hop resolves the host here and vets every address (RFC 6890 special-purpose
ranges refused; a mixed answer is refused whole, as it is a DNS-rebinding tell). The
connection is made through a resolver that can answer only with those vetted addresses for
that one host, so there is no second DNS look-up between check and connect. Connections are
pooled per (scheme, host, port, vetted addresses, CA bundle): logins do not pay a TLS
handshake per call, and a pooled connection can only lead to addresses vetted for its host.
A CA bundle given per call replaces the system trust store for that call (private CAs).

It must never: follow a redirect automatically (a bearer token or client secret would
follow it), honour proxy environment variables, connect to an address it did not check,
or put response bytes in an error's public message.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import ipaddress
import json
import socket
import ssl
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Container, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any
from urllib.parse import urljoin, urlsplit

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult

from broker.errors import BrokerError

MAX_REDIRECTS = 3
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
_LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})
_MAX_POOLS = 64
_CHUNK = 64 * 1024

# (host, port) -> addresses as text; injectable for tests and for a DNS module with settings.
Resolver = Callable[[str, int], Awaitable[Sequence[str]]]
IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class SafeHttpError(BrokerError):
    """A fetch was refused or failed; `kind` is a stable machine-readable reason:
    bad_url, redirect_refused, blocked_address, dns, tls, connect, timeout, too_big,
    http_status, bad_json."""

    code = "fetch_failed"

    def __init__(self, kind: str, public: str, detail: str | None = None) -> None:
        super().__init__(public, detail)
        self.kind = kind


def normalize_host(host: str) -> str:
    """Lower case, no trailing dot, IPv6 without brackets: how hosts are compared."""
    return host.strip().strip("[]").rstrip(".").lower()


def _sentence(words: str) -> str:
    return words[:1].upper() + words[1:]


def _normalized(hosts: Iterable[str]) -> frozenset[str]:
    return frozenset(normalize_host(h) for h in hosts)


@dataclass(frozen=True)
class FetchPolicy:
    """How careful to be; built from settings. Allow-listed hosts match exactly (no suffix)."""

    allowlist: frozenset[str] = frozenset()
    timeout: float = 10.0
    max_bytes: int = 1_000_000
    allow_insecure_loopback: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "allowlist", _normalized(self.allowlist))


@dataclass(frozen=True)
class HttpResponse:
    status: int
    headers: Mapping[str, str]
    body: bytes
    peer: str = field(default="the server", compare=False)  # who answered, for messages

    def json(self) -> dict[str, Any]:
        """The body as a JSON object, or `SafeHttpError("bad_json")`."""
        try:
            value = json.loads(self.body)
        except ValueError as exc:
            raise SafeHttpError(
                "bad_json",
                f"{_sentence(self.peer)} answered with something that is not JSON.",
                str(exc),
            ) from exc
        if not isinstance(value, dict):
            raise SafeHttpError("bad_json", f"The answer of {self.peer} is not an object.")
        return value


@dataclass(frozen=True)
class Target:
    """A URL that passed `check_url`, with its host normalized and its port made explicit."""

    url: str
    host: str
    port: int
    scheme: str


async def system_resolver(host: str, port: int) -> Sequence[str]:
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def check_url(
    url: str, allow_insecure_loopback: bool, *, what: str = "The URL", kind: str = "bad_url"
) -> Target:
    """Refuse anything but https (or http to loopback with the explicit flag), URLs with
    credentials and URLs with a fragment. `what` names the URL in the public message."""
    try:
        parts = urlsplit(url)
        host, port = parts.hostname, parts.port
    except ValueError as exc:
        raise SafeHttpError(kind, f"{what} is not valid.", url) from exc
    if not host:
        raise SafeHttpError(kind, f"{what} has no host.", url)
    if parts.username is not None or parts.password is not None:
        raise SafeHttpError(kind, f"{what} must not carry a user name or password.")
    if parts.fragment:
        raise SafeHttpError(kind, f"{what} must not have a fragment.", url)
    host = normalize_host(host)
    if parts.scheme == "http" and allow_insecure_loopback and host in _LOOPBACK_NAMES:
        pass  # tests and local demos only: plain HTTP to this machine, by explicit opt-in
    elif parts.scheme != "https":
        raise SafeHttpError(kind, f"{what} does not use HTTPS.", url)
    default_port = 443 if parts.scheme == "https" else 80
    return Target(url=url, host=host, port=port or default_port, scheme=parts.scheme)


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


async def vet_addresses(
    target: Target, allowed: Container[str], resolve: Resolver
) -> tuple[str, ...]:
    """Resolve `target.host` once and return its addresses (sorted) if all may be reached."""
    literal = _ip_or_none(target.host)
    if literal is not None:
        texts: Sequence[str] = [str(literal)]
    else:
        try:
            texts = await resolve(target.host, target.port)
        except OSError as exc:
            raise SafeHttpError(
                "dns", f"The host name {target.host} could not be resolved.", str(exc)
            ) from exc
    addresses = [ip for ip in (_ip_or_none(t) for t in texts) if ip is not None]
    if not addresses:
        raise SafeHttpError("dns", f"The host name {target.host} could not be resolved.")
    if target.host not in allowed:
        blocked = [str(ip) for ip in addresses if not _is_public(ip)]
        if blocked:  # refused even when some addresses are public: a rebinding tell
            raise SafeHttpError(
                "blocked_address",
                f"{target.host} resolves to a private or reserved address; an administrator "
                "must add the host to the network allow-list first.",
                f"{target.host} -> {', '.join(blocked)}",
            )
    return tuple(sorted(str(ip) for ip in addresses))


def tls_context(ca_pem: str | None) -> ssl.SSLContext:
    """Verifying client context, TLS 1.2+; `ca_pem` replaces the system trust store."""
    try:
        context = ssl.create_default_context(cadata=ca_pem or None)
    except (ssl.SSLError, ValueError) as exc:
        raise SafeHttpError("tls", "The CA bundle cannot be read.", str(exc)) from exc
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


class PinnedResolver(AbstractResolver):
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


async def read_limited(response: aiohttp.ClientResponse, max_bytes: int) -> bytes:
    """The body, abandoned as soon as it is known to exceed `max_bytes`."""
    if response.content_length is not None and response.content_length > max_bytes:
        raise _too_big(max_bytes)
    body = bytearray()
    async for chunk in response.content.iter_chunked(_CHUNK):
        body += chunk
        if len(body) > max_bytes:
            raise _too_big(max_bytes)
    return bytes(body)


def _too_big(max_bytes: int) -> SafeHttpError:
    return SafeHttpError("too_big", f"The answer is larger than {max_bytes} bytes.")


@contextlib.contextmanager
def _client_errors(peer: str, host: str) -> Iterator[None]:
    """aiohttp's errors as `SafeHttpError`s: TLS apart from the rest (an admin fixes it)."""
    try:
        yield
    except (aiohttp.ClientConnectorCertificateError, aiohttp.ClientSSLError) as exc:
        raise SafeHttpError(
            "tls", f"The TLS certificate of {host} could not be verified.", str(exc)
        ) from exc
    except aiohttp.ClientConnectorError as exc:
        raise SafeHttpError("connect", f"Could not connect to {peer} ({host}).", str(exc)) from exc
    except aiohttp.ClientError as exc:
        raise SafeHttpError("connect", f"The request to {peer} ({host}) failed.", str(exc)) from exc


async def read_prefix(content: aiohttp.StreamReader, limit: int) -> bytes:
    """At most `limit` bytes from the start of a body; the rest stays unread."""
    buffer = bytearray()
    while len(buffer) < limit:
        chunk = await content.read(limit - len(buffer))
        if not chunk:
            break
        buffer += chunk
    return bytes(buffer)


@dataclass(frozen=True)
class Outgoing:
    """What one call sends, and how much of the answer it wants."""

    headers: Mapping[str, str]
    data: Mapping[str, str] | bytes | None
    truncate: bool


def _ca_key(ca_pem: str | None) -> str:
    return hashlib.sha256((ca_pem or "").encode()).hexdigest()


class SafeHttp:
    """Pooled, vetted HTTP calls. One per application (or `async with` for one-off use);
    `close()` at shutdown. `peer` names the other side in public messages, `url_name`
    the URL itself."""

    peer = "the server"
    url_name = "The URL"

    def __init__(self, policy: FetchPolicy, resolver: Resolver | None = None) -> None:
        self.policy = policy
        self._resolve = resolver or system_resolver
        self._pools: OrderedDict[tuple[Any, ...], aiohttp.ClientSession] = OrderedDict()
        self._contexts: dict[str, ssl.SSLContext] = {}
        self._closing: set[asyncio.Task[None]] = set()
        self._extra_allowlist: frozenset[str] = frozenset()

    @property
    def extra_allowlist(self) -> frozenset[str]:
        """Hosts an administrator allowed at run time (the store's network allow-list),
        on top of the policy's; callers refresh it every few seconds."""
        return self._extra_allowlist

    @extra_allowlist.setter
    def extra_allowlist(self, hosts: Iterable[str]) -> None:
        self._extra_allowlist = _normalized(hosts)

    async def __aenter__(self) -> SafeHttp:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        pools, self._pools = list(self._pools.values()), OrderedDict()
        for session in pools:
            await session.close()
        if self._closing:
            await asyncio.gather(*self._closing, return_exceptions=True)

    async def request(
        self,
        method: str,
        url: str,
        *,
        ca_pem: str | None = None,
        headers: Mapping[str, str] | None = None,
        form: Mapping[str, str] | None = None,
        body: bytes | None = None,
        follow_redirects: bool = False,
        truncate: bool = False,
    ) -> HttpResponse:
        """One call, the policy's timeout covering every hop. Non-2xx answers are returned,
        not raised (callers read OAuth error bodies); with `follow_redirects`, up to
        `MAX_REDIRECTS` hops are followed, each checked and vetted like the first. The
        request carries `form` or raw `body`; with `truncate`, an answer longer than
        `policy.max_bytes` is cut there (the rest is never read) instead of refused."""
        send = Outgoing(headers or {}, dict(form) if form is not None else body, truncate)
        timeout = self.policy.timeout
        try:
            async with asyncio.timeout(timeout):
                current = url
                for hop in range(MAX_REDIRECTS + 1):
                    response = await self._hop(method, current, hop, ca_pem, send)
                    if response.status not in REDIRECT_STATUSES or not follow_redirects:
                        return response
                    location = response.headers.get("Location")
                    if not location:
                        raise SafeHttpError(
                            "http_status", f"HTTP {response.status} without a Location."
                        )
                    current = urljoin(current, location)
                raise SafeHttpError(
                    "redirect_refused", f"More than {MAX_REDIRECTS} redirects; giving up.", url
                )
        except TimeoutError as exc:
            host = urlsplit(url).hostname or url
            raise SafeHttpError(
                "timeout", f"{_sentence(self.peer)} ({host}) did not answer within {timeout:g} s."
            ) from exc

    async def _hop(
        self,
        method: str,
        url: str,
        hop: int,
        ca_pem: str | None,
        send: Outgoing,
    ) -> HttpResponse:
        if hop == 0:
            target = check_url(url, self.policy.allow_insecure_loopback, what=self.url_name)
        else:
            target = check_url(
                url, self.policy.allow_insecure_loopback, what="A redirect", kind="redirect_refused"
            )
        allowed = self.policy.allowlist | self._extra_allowlist
        addresses = await vet_addresses(target, allowed, self._resolve)
        session = self._pool(target, addresses, ca_pem)
        with _client_errors(self.peer, target.host):
            async with session.request(
                method,
                target.url,
                headers={"Accept": "application/json", **send.headers},
                data=send.data,
                allow_redirects=False,
            ) as response:
                if send.truncate:
                    body = await read_prefix(response.content, self.policy.max_bytes)
                else:
                    body = await read_limited(response, self.policy.max_bytes)
                return HttpResponse(response.status, dict(response.headers), body, self.peer)

    def _ssl_context(self, ca_pem: str | None) -> ssl.SSLContext:
        key = _ca_key(ca_pem)
        context = self._contexts.get(key)
        if context is None:
            context = self._contexts[key] = tls_context(ca_pem)
        return context

    def _pool(
        self, target: Target, addresses: tuple[str, ...], ca_pem: str | None
    ) -> aiohttp.ClientSession:
        key = (target.scheme, target.host, target.port, addresses, _ca_key(ca_pem))
        session = self._pools.get(key)
        if session is not None and not session.closed:
            self._pools.move_to_end(key)
            return session
        connector = aiohttp.TCPConnector(
            resolver=PinnedResolver(target.host, addresses),
            use_dns_cache=False,
            ssl=self._ssl_context(ca_pem) if target.scheme == "https" else False,
            limit_per_host=32,
        )
        session = aiohttp.ClientSession(connector=connector, trust_env=False)
        self._pools[key] = session
        while len(self._pools) > _MAX_POOLS:
            _, old = self._pools.popitem(last=False)
            task = asyncio.get_running_loop().create_task(old.close())
            self._closing.add(task)  # kept until done, so that it is not collected midway
            task.add_done_callback(self._closing.discard)
        return session
