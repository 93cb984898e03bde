"""TXT record look-ups for domain verification, with dnspython's async resolver.

Role: ask the configured resolvers (settings `dns.resolvers`, empty = the system's
/etc/resolv.conf) for the TXT RRset of one name and report what happened as a
`TxtResult` (the core's `TxtAnswer`). It never raises for a DNS outcome: NXDOMAIN,
NODATA, SERVFAIL, timeouts and malformed names all come back as a status, and the
core decides what they mean (a timeout is not proof that a record is absent).

Wire facts relied on: a TXT RDATA is one or more <character-string>s of at most 255
octets each (RFC 1035 §3.3.14); a value longer than 255 octets is published as
several strings that a reader concatenates (RFC 7208 §3.3 does this for SPF, and
verification records follow the same convention). TXT data is octets, not text:
we decode UTF-8 with replacement so that a stray byte cannot crash the caller.

Must never: cache answers (a verification re-check has to see the zone as it is
now), apply a search list (the name is always absolute), or hold business rules.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

import dns.asyncresolver
import dns.exception
import dns.name
import dns.nameserver
import dns.rdatatype
import dns.resolver

from broker.core.ports import TxtAnswer

# The result type is the core's port type, so no translation is needed at the seam.
TxtResult = TxtAnswer

# EDNS(0) with the payload size recommended by DNS Flag Day 2020: large TXT sets
# (many verification records on one apex) fit in one UDP answer, and a truncated
# answer is retried over TCP by dnspython.
_EDNS_PAYLOAD = 1232


def parse_resolver(text: str) -> tuple[str, int]:
    """Split "IP", "IP:port", "[IPv6]:port" or a bare IPv6 address into (address, port).

    Raises ValueError for anything that is not an IP address: resolvers are settings,
    and a host name here would need DNS to find DNS.
    """
    value = text.strip()
    port = 53
    if value.startswith("["):
        host, sep, rest = value[1:].partition("]")
        if not sep:
            raise ValueError(f"resolver {text!r}: missing ']'")
        if rest:
            if not rest.startswith(":"):
                raise ValueError(f"resolver {text!r}: expected ':port' after ']'")
            port = _port(rest[1:], text)
    elif value.count(":") == 1:
        host, _, port_text = value.partition(":")
        port = _port(port_text, text)
    else:
        host = value  # IPv4 without port, or a bare IPv6 address
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        raise ValueError(f"resolver {text!r}: {host!r} is not an IP address") from None
    return str(address), port


def _port(port_text: str, original: str) -> int:
    if not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
        raise ValueError(f"resolver {original!r}: port must be 1-65535")
    return int(port_text)


class TxtLookup:
    """TXT look-ups against fixed resolvers (or the system's), with one overall timeout."""

    def __init__(self, resolvers: Sequence[str], timeout: float) -> None:
        if timeout <= 0:
            raise ValueError("timeout must be positive")
        self._timeout = timeout
        self._config_error = ""
        self._resolver = self._make_resolver(resolvers, timeout)

    def _make_resolver(
        self, resolvers: Sequence[str], timeout: float
    ) -> dns.asyncresolver.Resolver | None:
        if resolvers:
            resolver = dns.asyncresolver.Resolver(configure=False)
            resolver.nameservers = [
                dns.nameserver.Do53Nameserver(*parse_resolver(item)) for item in resolvers
            ]
        else:
            try:
                resolver = dns.asyncresolver.Resolver(configure=True)
            except dns.resolver.NoResolverConfiguration as exc:
                # Reported per look-up as status "error" rather than failing start-up:
                # domain verification is one feature, and the admin sees why it fails.
                self._config_error = f"no system resolver configuration: {exc}"
                return None
        resolver.cache = None
        resolver.search = []
        resolver.use_search_by_default = False
        resolver.use_edns(0, 0, _EDNS_PAYLOAD)
        # `lifetime` bounds the whole look-up; each attempt gets a share of it so that a
        # dead first resolver cannot eat the budget before the next one is asked, and a
        # single resolver still gets one retry after a lost UDP packet.
        resolver.timeout = max(timeout / (len(resolver.nameservers) + 1), 0.2)
        resolver.lifetime = timeout
        return resolver

    async def lookup(self, name: str) -> TxtResult:
        """Return the TXT values at `name` (absolute; a trailing dot is optional)."""
        if self._resolver is None:
            return TxtResult(status="error", detail=self._config_error)
        try:
            qname = dns.name.from_text(name.strip().rstrip(".") + ".")
            answer = await self._resolver.resolve(
                qname, dns.rdatatype.TXT, search=False, lifetime=self._timeout
            )
        except dns.resolver.NXDOMAIN:
            return TxtResult(status="nxdomain", detail=f"{name}: no such name (NXDOMAIN)")
        except dns.resolver.NoAnswer:
            return TxtResult(status="no_answer", detail=f"{name}: name exists, no TXT record")
        except dns.resolver.NoNameservers as exc:
            # Raised when every resolver answered SERVFAIL/REFUSED or failed otherwise.
            return TxtResult(status="servfail", detail=f"{name}: {exc}")
        except dns.exception.Timeout as exc:  # includes LifetimeTimeout
            return TxtResult(
                status="timeout", detail=f"{name}: no answer in {self._timeout}s: {exc}"
            )
        except dns.exception.DNSException as exc:
            # Malformed names (label too long, empty label), YXDOMAIN, bad responses.
            return TxtResult(status="error", detail=f"{name}: {type(exc).__name__}: {exc}")
        except OSError as exc:
            # e.g. network unreachable for an IPv6 resolver on an IPv4-only host.
            return TxtResult(status="error", detail=f"{name}: network error: {exc}")
        values = tuple(
            b"".join(rdata.strings).decode("utf-8", errors="replace") for rdata in answer
        )
        return TxtResult(status="found", values=values, detail=f"{name}: {len(values)} TXT")
