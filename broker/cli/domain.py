"""domain add · verify · list · remove (DNS TXT verification)."""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from broker.cli.common import Command, clock, emit, load_settings, open_store, table
from broker.core import audit, domains


def register(sub: Any) -> None:
    dom = sub.add_parser("domain", help="email domains verified by DNS TXT record").add_subparsers(
        dest="domain_command", metavar="ACTION", required=True
    )
    for name, run, text in (
        ("add", add, "register a domain and print the TXT record to publish"),
        ("verify", verify, "look the TXT record up now"),
        ("remove", remove, "remove a domain from the organization"),
    ):
        p = dom.add_parser(name, help=text)
        p.add_argument("domain")
        p.add_argument("--org", required=True)
        Command(p, run)
    p = dom.add_parser("list", help="domains of an organization")
    p.add_argument("--org", required=True)
    Command(p, list_domains)


def add(args: argparse.Namespace) -> int:
    store = open_store(load_settings(args))
    try:
        record = domains.add_domain(store, clock, audit.CLI, args.org, args.domain)
    finally:
        store.close()
    name, value = domains.txt_record(record)
    emit(
        args,
        domains.describe(record),
        f"Publish this DNS record, then run `exec-broker domain verify {record.domain} "
        f'--org {args.org}`:\n  {name}  TXT  "{value}"',
    )
    return 0


def verify(args: argparse.Namespace) -> int:
    from broker.dns.txt import TxtLookup

    settings = load_settings(args)
    store = open_store(settings)
    resolver = TxtLookup(settings.get("dns.resolvers"), settings.get("dns.timeout_seconds"))
    try:
        result = asyncio.run(
            domains.verify_domain(store, resolver, clock, audit.CLI, args.org, args.domain)
        )
    finally:
        store.close()
    emit(
        args,
        {
            "domain": domains.describe(result.domain),
            "outcome": result.outcome,
            "message": result.message,
        },
        result.message,
    )
    return 0 if result.outcome == "verified" else 1


def remove(args: argparse.Namespace) -> int:
    store = open_store(load_settings(args))
    try:
        domains.remove_domain(store, clock, audit.CLI, args.org, args.domain)
    finally:
        store.close()
    emit(args, {"removed": args.domain}, f"Removed {args.domain}.")
    return 0


def list_domains(args: argparse.Namespace) -> int:
    store = open_store(load_settings(args))
    try:
        records = store.domains.list(args.org)
    finally:
        store.close()
    rows = [
        [d.domain, d.state, domains.txt_record(d)[0], domains.txt_record(d)[1]] for d in records
    ]
    emit(
        args,
        [domains.describe(d) for d in records],
        table(rows, ["DOMAIN", "STATE", "TXT NAME", "TXT VALUE"]),
    )
    return 0
