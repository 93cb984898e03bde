"""role-mapping add · list · remove: directory group → Exec role (and optionally seat)."""

from __future__ import annotations

import argparse
from typing import Any

from broker.cli.common import Command, clock, emit, load_settings, open_store, table
from broker.core import audit, roles


def register(sub: Any) -> None:
    mapping = sub.add_parser(
        "role-mapping", help="map directory groups to Exec roles"
    ).add_subparsers(dest="mapping_command", metavar="ACTION", required=True)
    p = mapping.add_parser("add", help="members of a group get a role (highest priority wins)")
    p.add_argument("--org", required=True)
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--group", help="the group's display name (case-insensitive)")
    which.add_argument("--group-id", help="the directory group id (grp_…)")
    p.add_argument("--role", required=True)
    p.add_argument("--priority", type=int, default=0, help="higher wins (default 0)")
    p.add_argument("--seat", choices=["full", "basic"], help="also grant this seat")
    Command(p, add)
    p = mapping.add_parser("list", help="the organization's mappings, best first")
    p.add_argument("--org", required=True)
    Command(p, list_mappings)
    p = mapping.add_parser("remove", help="remove a mapping")
    p.add_argument("mapping_id")
    p.add_argument("--org", required=True)
    Command(p, remove)


def add(args: argparse.Namespace) -> int:
    store = open_store(load_settings(args))
    try:
        mapping = roles.add_mapping(
            store,
            clock,
            audit.CLI,
            args.org,
            role=args.role,
            group_id=args.group_id,
            group_name=args.group,
            priority=args.priority,
            seat=args.seat,
        )
    finally:
        store.close()
    emit(args, mapping, f"Added {mapping.id}: {args.group or args.group_id} → {mapping.role}")
    return 0


def list_mappings(args: argparse.Namespace) -> int:
    store = open_store(load_settings(args))
    try:
        mappings = store.role_mappings.list(args.org)
    finally:
        store.close()
    rows = [
        [m.id, m.group_name or m.group_id or "", m.role, m.seat or "", str(m.priority)]
        for m in mappings
    ]
    emit(args, mappings, table(rows, ["ID", "GROUP", "ROLE", "SEAT", "PRIORITY"]))
    return 0


def remove(args: argparse.Namespace) -> int:
    store = open_store(load_settings(args))
    try:
        roles.remove_mapping(store, clock, audit.CLI, args.org, args.mapping_id)
    finally:
        store.close()
    emit(args, {"removed": args.mapping_id}, f"Removed {args.mapping_id}")
    return 0
