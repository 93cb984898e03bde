"""The private-address allow-list (DESIGN §6): hosts whose names may resolve to private
addresses when the broker fetches IdP metadata or OIDC discovery documents (on-premises
AD FS, an internal Keycloak). The setup UI and `exec-broker network` both change it here;
the `network.private_hosts_allowlist` setting adds to it.
"""

from __future__ import annotations

import ipaddress

from broker.clock import Clock
from broker.core import audit
from broker.core.ports import Store
from broker.errors import InvalidInput


def normalize_host(text: str) -> str:
    """A host name or IP address, lower-case, without brackets or a trailing dot."""
    host = text.strip().strip("[]").rstrip(".").lower()
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        pass
    bad = not host or len(host) > 253 or not host.isprintable()
    if bad or any(c in host for c in "/@?#:") or any(c.isspace() for c in host):
        raise InvalidInput(f"{text.strip()[:80]!r} is not a host name or IP address")
    return host


def allow_host(
    store: Store, clock: Clock, who: audit.Actor, host: str, note: str | None = None
) -> str:
    host = normalize_host(host)
    now = clock.now()
    with store.transaction():
        store.network_hosts.add(host, now, who.name, note)
        audit.record(store, who, "network.host_allowed", now, target=host)
    return host


def remove_host(store: Store, clock: Clock, who: audit.Actor, host: str) -> str:
    host = normalize_host(host)
    now = clock.now()
    with store.transaction():
        store.network_hosts.remove(host)
        audit.record(store, who, "network.host_removed", now, target=host)
    return host
