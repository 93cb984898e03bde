"""org create · list · show · sso enable|disable · set-default-seat."""

from __future__ import annotations

import argparse
from typing import Any

from broker.cli.common import Command, clock, emit, load_settings, open_store, table
from broker.core import audit, organizations, policy


def register(sub: Any) -> None:
    org = sub.add_parser("org", help="organizations and their SSO policy").add_subparsers(
        dest="org_command", metavar="ACTION", required=True
    )
    p = org.add_parser("create", help="create an organization")
    p.add_argument("name")
    p.add_argument("--external-id", help="Exec's workspace id")
    p.add_argument("--default-seat", choices=["full", "basic"], default="basic")
    Command(p, create)
    Command(org.add_parser("list", help="list organizations"), list_orgs)
    p = org.add_parser("show", help="an organization with domains, connections and policy")
    p.add_argument("org")
    Command(p, show)
    p = org.add_parser("sso", help="switch SSO on or off")
    p.add_argument("state", choices=["enable", "disable"])
    p.add_argument("--org", required=True)
    Command(p, sso)
    p = org.add_parser("set-default-seat", help="seat given to newly provisioned users")
    p.add_argument("seat", choices=["full", "basic"])
    p.add_argument("--org", required=True)
    Command(p, set_default_seat)


def create(args: argparse.Namespace) -> int:
    store = open_store(load_settings(args))
    try:
        org = organizations.create_organization(
            store, clock, audit.CLI, args.name, args.external_id, args.default_seat
        )
        shown = organizations.describe(store, org)
    finally:
        store.close()
    emit(args, shown, f"Created {org.id} ({org.name})")
    return 0


def list_orgs(args: argparse.Namespace) -> int:
    store = open_store(load_settings(args))
    try:
        orgs = store.organizations.list()
    finally:
        store.close()
    rows = [
        [
            o.id,
            o.name,
            "on" if o.sso_enabled else "off",
            "on" if o.dsync_enabled else "off",
            o.default_seat,
        ]
        for o in orgs
    ]
    emit(args, orgs, table(rows, ["ID", "NAME", "SSO", "DSYNC", "SEAT"]))
    return 0


def show(args: argparse.Namespace) -> int:
    import json

    store = open_store(load_settings(args))
    try:
        shown = organizations.describe(store, store.organizations.get(args.org))
        shown["sso_blockers"] = policy.sso_blockers(store, args.org)
    finally:
        store.close()
    emit(args, shown, lambda: json.dumps(shown, indent=2))
    return 0


def sso(args: argparse.Namespace) -> int:
    store = open_store(load_settings(args))
    try:
        if args.state == "enable":
            org = policy.enable_sso(store, clock, audit.CLI, args.org)
            text = (
                f"SSO is on for {org.name}: members must sign in through the IdP; "
                "password sign-in is off."
            )
        else:
            org = policy.disable_sso(store, clock, audit.CLI, args.org)
            text = (
                f"SSO is off for {org.name}: Directory Sync is off too and members are "
                "unlinked; verified domains are kept."
            )
        shown = organizations.describe(store, org)
    finally:
        store.close()
    emit(args, shown, text)
    return 0


def set_default_seat(args: argparse.Namespace) -> int:
    store = open_store(load_settings(args))
    try:
        org = organizations.set_default_seat(store, clock, audit.CLI, args.org, args.seat)
    finally:
        store.close()
    emit(
        args,
        {"id": org.id, "default_seat": org.default_seat},
        f"New users of {org.name} get a {org.default_seat} seat.",
    )
    return 0
