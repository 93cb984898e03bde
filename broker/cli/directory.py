"""directory enable · disable · show · rotate-token · journal · drift (twins of the UI).

`enable` prints the SCIM base URL and the bearer token once; the token is stored only
as a hash and cannot be shown again (rotate it to get a new one).
"""

from __future__ import annotations

import argparse
from typing import Any

from broker.cli.common import Command, clock, emit, load_settings, open_store, table
from broker.clock import iso
from broker.core import audit, directories, drift, policy


def register(sub: Any) -> None:
    directory = sub.add_parser(
        "directory", help="Directory Sync (SCIM) of an organization"
    ).add_subparsers(dest="directory_command", metavar="ACTION", required=True)
    for name, run, text in (
        ("enable", enable, "switch Directory Sync on: prints the SCIM URL and token once"),
        ("disable", disable, "switch Directory Sync off: SCIM stops, users are unlinked"),
        ("show", show, "the directory, its state and counts"),
        ("rotate-token", rotate, "a new SCIM token; the old one keeps working for a while"),
        ("journal", show_journal, "recent SCIM requests"),
        ("drift", show_drift, "what Exec was not told; --redrive sends it again"),
    ):
        p = directory.add_parser(name, help=text)
        p.add_argument("--org", required=True)
        if name == "journal":
            p.add_argument("--limit", type=int, default=50)
        if name == "drift":
            p.add_argument("--redrive", action="store_true")
        Command(p, run)


def enable(args: argparse.Namespace) -> int:
    settings = load_settings(args)
    store = open_store(settings)
    try:
        enabled = policy.enable_directory_sync(store, clock, audit.CLI, args.org)
    finally:
        store.close()
    url = settings.public_url.rstrip("/") + directories.base_path(enabled.directory_id)
    emit(
        args,
        {
            "organization_id": args.org,
            "directory_id": enabled.directory_id,
            "scim_base_url": url,
            "token": enabled.token,
        },
        f"Directory Sync is on.\n  SCIM base URL: {url}\n  Bearer token:  {enabled.token}\n"
        "The token is shown only now; paste both into the IdP's provisioning settings.",
    )
    return 0


def disable(args: argparse.Namespace) -> int:
    store = open_store(load_settings(args))
    try:
        org = policy.disable_directory_sync(store, clock, audit.CLI, args.org)
    finally:
        store.close()
    emit(
        args,
        {"organization_id": org.id, "directory_sync_enabled": org.dsync_enabled},
        f"Directory Sync is off for {org.name}: SCIM answers 401, users and groups are "
        "unlinked; SSO stays on.",
    )
    return 0


def show(args: argparse.Namespace) -> int:
    settings = load_settings(args)
    store = open_store(settings)
    try:
        directory = store.directories.for_organization(args.org)
        if directory is None:
            shown: dict[str, Any] = {"organization_id": args.org, "state": "none"}
        else:
            shown = directories.describe(directory, settings.public_url)
            shown["users"] = len(store.users.list(directory.id))
            shown["groups"] = len(store.groups.list(directory.id))
    finally:
        store.close()
    emit(args, shown, lambda: "\n".join(f"{k}: {v}" for k, v in shown.items()))
    return 0


def rotate(args: argparse.Namespace) -> int:
    settings = load_settings(args)
    overlap = settings.get("scim.token_overlap_seconds")
    store = open_store(settings)
    try:
        token = directories.rotate_token(store, args.org, clock.now(), overlap)
        audit.record(
            store,
            audit.CLI,
            "dsync.token_rotated",
            clock.now(),
            organization_id=args.org,
            overlap_seconds=overlap,
        )
    finally:
        store.close()
    emit(
        args,
        {"organization_id": args.org, "token": token, "previous_valid_seconds": overlap},
        f"New SCIM token (shown once): {token}\nThe previous token keeps working for "
        f"{overlap} seconds.",
    )
    return 0


def show_journal(args: argparse.Namespace) -> int:
    store = open_store(load_settings(args))
    try:
        directory = store.directories.for_organization(args.org)
        entries = store.scim_journal.list(directory.id, args.limit) if directory else []
    finally:
        store.close()
    rows = [
        [
            iso(e.at),
            e.method,
            e.path[:60],
            str(e.status),
            str(e.change.get("action", "")),
            (e.user_agent or "")[:30],
        ]
        for e in entries
    ]
    emit(args, entries, table(rows, ["AT", "METHOD", "PATH", "STATUS", "CHANGE", "AGENT"]))
    return 0


def show_drift(args: argparse.Namespace) -> int:
    store = open_store(load_settings(args))
    try:
        found = (
            drift.redrive(store, clock, args.org) if args.redrive else drift.report(store, args.org)
        )
    finally:
        store.close()
    verb = "re-sent" if args.redrive else "drifted"
    emit(args, found, f"{len(found.users)} users and {len(found.groups)} groups {verb}.")
    return 0
