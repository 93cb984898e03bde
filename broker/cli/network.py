"""network allow-host · remove-host · hosts: the admin-managed allow-list of hosts that may
resolve to private addresses for metadata and discovery fetches (DESIGN §6; on-prem AD FS).
The `network.private_hosts_allowlist` setting adds to this list."""

from __future__ import annotations

import argparse
from typing import Any

from broker.cli.common import Command, clock, emit, load_settings, open_store
from broker.core import audit, network


def register(sub: Any) -> None:
    net = sub.add_parser("network", help="hosts allowed on private addresses").add_subparsers(
        dest="network_command", metavar="ACTION", required=True
    )
    p = net.add_parser("allow-host", help="allow a host to resolve to a private address")
    p.add_argument("host")
    p.add_argument("--note")
    Command(p, allow)
    p = net.add_parser("remove-host", help="take a host off the allow-list")
    p.add_argument("host")
    Command(p, remove)
    Command(net.add_parser("hosts", help="the allow-list (store and settings)"), hosts)


def allow(args: argparse.Namespace) -> int:
    store = open_store(load_settings(args))
    try:
        host = network.allow_host(store, clock, audit.CLI, args.host, args.note)
    finally:
        store.close()
    emit(args, {"host": host, "allowed": True}, f"{host} may now resolve to private addresses.")
    return 0


def remove(args: argparse.Namespace) -> int:
    store = open_store(load_settings(args))
    try:
        host = network.remove_host(store, clock, audit.CLI, args.host)
    finally:
        store.close()
    emit(args, {"host": host, "allowed": False}, f"{host} is off the allow-list.")
    return 0


def hosts(args: argparse.Namespace) -> int:
    settings = load_settings(args)
    store = open_store(settings)
    try:
        stored = store.network_hosts.list()
    finally:
        store.close()
    configured = list(settings.get("network.private_hosts_allowlist"))
    emit(
        args,
        {"store": stored, "settings": configured},
        "\n".join([*(f"{h}  (admin)" for h in stored), *(f"{h}  (setting)" for h in configured)])
        or "(none)",
    )
    return 0
