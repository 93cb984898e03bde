"""keys rotate · keys list · keys export-jwks."""

from __future__ import annotations

import argparse
from typing import Any

from broker.cli.common import Command, clock, emit, load_settings, open_store, table
from broker.core import audit
from broker.crypto.signing import KeyRing, rotate


def register(sub: Any) -> None:
    keys = sub.add_parser("keys", help="OIDC signing keys").add_subparsers(
        dest="keys_command", metavar="ACTION", required=True
    )
    p = keys.add_parser("rotate", help="next → current → retired; publish a new next key")
    p.add_argument(
        "--alg",
        choices=["RS256", "ES256"],
        action="append",
        help="only this algorithm (repeatable; default both)",
    )
    Command(p, rotate_keys)
    Command(keys.add_parser("list", help="show keys and their states"), list_keys)
    p = keys.add_parser("export-jwks", help="public keys (current, next, recent) for Exec to pin")
    Command(p, export_jwks)


def rotate_keys(args: argparse.Namespace) -> int:
    settings = load_settings(args)
    store = open_store(settings)
    try:
        algs = tuple(args.alg) if args.alg else ("RS256", "ES256")
        report = rotate(
            store,
            settings.certs_dir,
            clock.now(),
            settings.get("keys.rotation_grace_seconds"),
            algs,
        )  # type: ignore[arg-type]
        with store.transaction():
            audit.record(store, audit.CLI, "keys.rotated", clock.now(), **report)
    finally:
        store.close()
    emit(args, report, lambda: "\n".join(f"{k}: {', '.join(v) or '-'}" for k, v in report.items()))
    return 0


def list_keys(args: argparse.Namespace) -> int:
    settings = load_settings(args)
    store = open_store(settings)
    try:
        records = store.signing_keys.list()
    finally:
        store.close()
    rows = [[r.kid, r.alg, r.state] for r in records]
    emit(
        args,
        [{"kid": r.kid, "alg": r.alg, "state": r.state} for r in records],
        table(rows, ["KID", "ALG", "STATE"]),
    )
    return 0


def export_jwks(args: argparse.Namespace) -> int:
    import json

    settings = load_settings(args)
    store = open_store(settings)
    try:
        jwks = KeyRing(store, settings.get("keys.rotation_grace_seconds")).public_jwks()
    finally:
        store.close()
    print(json.dumps(jwks, indent=2))
    return 0
