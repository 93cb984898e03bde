"""admin create: the first setup-UI administrator (argon2 hash)."""

from __future__ import annotations

import argparse
import getpass
import secrets
import sys
from typing import Any

from broker.cli.common import Command, clock, emit, fail, load_settings, open_store
from broker.core import admins, audit
from broker.crypto.secrets import hash_password


def register(sub: Any) -> None:
    adm = sub.add_parser("admin", help="setup-UI administrators").add_subparsers(
        dest="admin_command", metavar="ACTION", required=True
    )
    p = adm.add_parser("create", help="create an administrator")
    p.add_argument("username")
    how = p.add_mutually_exclusive_group()
    how.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    how.add_argument(
        "--generate", action="store_true", help="generate a password and print it once"
    )
    Command(p, create)


def create(args: argparse.Namespace) -> int:
    generated = None
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    elif args.generate or not sys.stdin.isatty():
        password = generated = secrets.token_urlsafe(18)
    else:
        password = getpass.getpass("Password (12+ characters): ")
        if password != getpass.getpass("Again: "):
            return fail("the passwords differ")
    store = open_store(load_settings(args))
    try:
        admin = admins.create_admin(store, clock, audit.CLI, args.username, password, hash_password)
    finally:
        store.close()
    text = f"Created administrator {admin.username}."
    if generated:
        text += f"\npassword: {generated}\nStore it now: it is not shown again."
    emit(args, {"id": admin.id, "username": admin.username, "password": generated}, text)
    return 0
