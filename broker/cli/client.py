"""client create · list · rotate-secret · bind (Exec's OIDC client)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from broker.cli.common import Command, clock, emit, load_settings, open_store, table
from broker.core import audit, clients
from broker.crypto.secrets import SecretBox


def register(sub: Any) -> None:
    cli = sub.add_parser("client", help="OIDC clients (Exec)").add_subparsers(
        dest="client_command", metavar="ACTION", required=True
    )
    p = cli.add_parser("create", help="register a client; prints its secret once")
    p.add_argument("--name", default="Exec")
    p.add_argument("--redirect-uri", action="append", required=True, dest="redirect_uris")
    p.add_argument(
        "--post-logout-redirect-uri", action="append", default=[], dest="post_logout_redirect_uris"
    )
    p.add_argument("--initiate-login-uri")
    p.add_argument("--backchannel-logout-uri")
    p.add_argument("--webhook-url")
    p.add_argument(
        "--org",
        action="append",
        default=[],
        dest="orgs",
        help="organization this client serves (repeatable)",
    )
    p.add_argument("--auth-method", default="client_secret_basic", choices=clients.AUTH_METHODS)
    p.add_argument("--jwks-file", type=Path, help="client JWKS for private_key_jwt")
    p.add_argument("--id-token-alg", default="RS256", choices=clients.ID_TOKEN_ALGS)
    p.add_argument(
        "--front-channel-only",
        action="store_true",
        help="allow response_type=id_token with form_post (no back channel)",
    )
    Command(p, create)
    Command(cli.add_parser("list", help="registered clients"), list_clients)
    p = cli.add_parser("rotate-secret", help="new client secret, printed once")
    p.add_argument("client_id")
    Command(p, rotate_secret)
    p = cli.add_parser("bind", help="let a client serve an organization")
    p.add_argument("client_id")
    p.add_argument("--org", required=True)
    Command(p, bind)


def create(args: argparse.Namespace) -> int:
    settings = load_settings(args)
    store = open_store(settings)
    jwks = json.loads(args.jwks_file.read_text()) if args.jwks_file else None
    box = SecretBox.load(settings.certs_dir)
    try:
        client, secret, webhook_secret = clients.create_client(
            store,
            clock,
            audit.CLI,
            name=args.name,
            redirect_uris=args.redirect_uris,
            organization_ids=args.orgs,
            post_logout_redirect_uris=args.post_logout_redirect_uris,
            initiate_login_uri=args.initiate_login_uri,
            backchannel_logout_uri=args.backchannel_logout_uri,
            webhook_url=args.webhook_url,
            token_endpoint_auth_method=args.auth_method,
            id_token_signed_response_alg=args.id_token_alg,
            jwks=jwks,
            front_channel_only=args.front_channel_only,
            seal=lambda s: box.encrypt(s, "webhook"),
        )
    finally:
        store.close()
    result = {
        "client_id": client.id,
        "client_secret": secret,
        "webhook_secret": webhook_secret,
        "redirect_uris": list(client.redirect_uris),
        "issuer": settings.public_url,
    }
    lines = [f"client_id:      {client.id}"]
    if secret:
        lines.append(f"client_secret:  {secret}")
    if webhook_secret:
        lines.append(f"webhook_secret: {webhook_secret}")
    lines.append(f"issuer:         {settings.public_url}")
    lines.append("Store the secrets now: they are not shown again.")
    emit(args, result, "\n".join(lines))
    return 0


def list_clients(args: argparse.Namespace) -> int:
    store = open_store(load_settings(args))
    try:
        found = store.clients.list()
    finally:
        store.close()
    rows = [
        [c.id, c.name, " ".join(c.redirect_uris), ",".join(c.organization_ids) or "-"]
        for c in found
    ]
    shown = [
        {
            "client_id": c.id,
            "name": c.name,
            "redirect_uris": list(c.redirect_uris),
            "organization_ids": list(c.organization_ids),
            "initiate_login_uri": c.initiate_login_uri,
            "webhook_url": c.webhook_url,
        }
        for c in found
    ]
    emit(args, shown, table(rows, ["CLIENT_ID", "NAME", "REDIRECT URIS", "ORGS"]))
    return 0


def rotate_secret(args: argparse.Namespace) -> int:
    store = open_store(load_settings(args))
    try:
        client, secret = clients.rotate_secret(store, clock, audit.CLI, args.client_id)
    finally:
        store.close()
    emit(
        args,
        {"client_id": client.id, "client_secret": secret},
        f"client_secret: {secret}\nStore it now: it is not shown again.",
    )
    return 0


def bind(args: argparse.Namespace) -> int:
    store = open_store(load_settings(args))
    try:
        client = clients.bind_organization(store, clock, audit.CLI, args.client_id, args.org)
    finally:
        store.close()
    emit(
        args,
        {"client_id": client.id, "organization_ids": list(client.organization_ids)},
        f"{client.id} now serves {', '.join(client.organization_ids)}",
    )
    return 0
