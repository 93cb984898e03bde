"""connection create-oidc · show-oidc · rotate-oidc-secret: the CLI
twins of the OIDC connection pages. Activation, listing and deactivation are the generic
`connection` commands (broker.cli.connection).

The client secret is read from standard input (`--client-secret-stdin`), never from the
command line (it would land in the shell history and `ps`), and is never printed again.
"""

from __future__ import annotations

import argparse
import ssl
import sys
from pathlib import Path
from typing import Any

from broker.cli.common import Command, clock, emit, load_settings, open_store
from broker.core import audit, oidc_connections
from broker.crypto.secrets import SecretBox
from broker.errors import InvalidInput
from broker.settings import Settings


def _actions(sub: Any) -> Any:
    """The `connection` command's sub-commands, made here if broker.cli.connection is absent."""
    conn = sub.choices.get("connection")
    if conn is None:
        conn = sub.add_parser("connection", help="SSO connections to the organizations' IdPs")
        return conn.add_subparsers(dest="connection_command", metavar="ACTION", required=True)
    return next(a for a in conn._actions if isinstance(a, argparse._SubParsersAction))


def register(sub: Any) -> None:
    actions = _actions(sub)
    p = actions.add_parser("create-oidc", help="create a draft OpenID Connect connection")
    p.add_argument("--org", required=True)
    p.add_argument("--preset", choices=oidc_connections.OIDC_PRESETS, default="generic")
    p.add_argument("--issuer", required=True, help="the IdP's issuer URL, exactly")
    p.add_argument("--client-id", required=True)
    auth = p.add_mutually_exclusive_group(required=True)
    auth.add_argument(
        "--client-secret-stdin", action="store_true", help="read the client secret from stdin"
    )
    auth.add_argument(
        "--private-key-jwt",
        action="store_true",
        help="authenticate with the broker's signing key (give the IdP `keys export-jwks`)",
    )
    p.add_argument(
        "--auth-method",
        choices=("client_secret_basic", "client_secret_post"),
        default="client_secret_basic",
        help="how to send the client secret",
    )
    p.add_argument(
        "--scope",
        action="append",
        default=[],
        dest="scopes",
        help="repeatable; default openid email profile",
    )
    p.add_argument(
        "--claim",
        action="append",
        default=[],
        dest="claims",
        metavar="FIELD=CLAIM",
        help=f"claim name override; fields: {', '.join(oidc_connections.CLAIM_FIELDS)}",
    )
    p.add_argument("--ca-file", type=Path, help="PEM CA bundle to trust for this IdP")
    p.add_argument("--hosted-domain", help="google: the Workspace domain (`hd`) to require")
    p.add_argument("--name")
    Command(p, create)
    p = actions.add_parser("show-oidc", help="an OIDC connection and its redirect URI")
    p.add_argument("connection")
    Command(p, show)
    p = actions.add_parser("rotate-oidc-secret", help="replace the client secret (from stdin)")
    p.add_argument("connection")
    Command(p, rotate_secret)


def _claims(pairs: list[str]) -> dict[str, str]:
    claims: dict[str, str] = {}
    for pair in pairs:
        field, sep, claim = pair.partition("=")
        if not sep or not field.strip() or not claim.strip():
            raise InvalidInput(f"--claim takes FIELD=CLAIM, got {pair!r}")
        claims[field.strip()] = claim.strip()
    return claims


def _ca_pem(path: Path | None) -> str | None:
    if path is None:
        return None
    try:
        pem = path.read_text()
        ssl.create_default_context(cadata=pem)  # refuse a bundle TLS could not use
    except (OSError, ValueError, ssl.SSLError) as exc:
        raise InvalidInput(f"{path}: not a usable PEM CA bundle ({exc})") from None
    return pem


def _read_secret() -> str:
    secret = sys.stdin.readline().rstrip("\r\n")
    if not secret:
        raise InvalidInput("no client secret on standard input")
    return secret


def _insecure_loopback(settings: Settings) -> bool:
    return bool(settings.get("upstream_oidc.allow_insecure_loopback"))


def redirect_uri(settings: Settings, connection_id: str) -> str:
    return f"{settings.public_url}/oidc/{connection_id}/callback"


def create(args: argparse.Namespace) -> int:
    settings = load_settings(args)
    secret = None if args.private_key_jwt else _read_secret()
    data = oidc_connections.OidcConnectionInput(
        organization_id=args.org,
        preset=args.preset,
        issuer=args.issuer,
        client_id=args.client_id,
        client_secret=secret,
        token_auth_method="private_key_jwt" if args.private_key_jwt else args.auth_method,
        scopes=args.scopes or oidc_connections.DEFAULT_SCOPES,
        claims=_claims(args.claims),
        ca_pem=_ca_pem(args.ca_file),
        hosted_domain=args.hosted_domain,
        name=args.name,
    )
    box = SecretBox.load(settings.certs_dir)
    store = open_store(settings)
    try:
        connection = oidc_connections.create_oidc_connection(
            store,
            clock,
            audit.CLI,
            data,
            seal=box.encrypt,
            allow_insecure_loopback=_insecure_loopback(settings),
        )
    finally:
        store.close()
    shown = dict(
        oidc_connections.describe(connection), redirect_uri=redirect_uri(settings, connection.id)
    )
    emit(args, shown, lambda: _text(shown))
    return 0


def show(args: argparse.Namespace) -> int:
    settings = load_settings(args)
    store = open_store(settings)
    try:
        connection = store.connections.get(args.connection)
    finally:
        store.close()
    if connection.type != "oidc":
        raise InvalidInput(f"{connection.id} is a {connection.type} connection")
    shown = dict(
        oidc_connections.describe(connection), redirect_uri=redirect_uri(settings, connection.id)
    )
    emit(args, shown, lambda: _text(shown))
    return 0


def rotate_secret(args: argparse.Namespace) -> int:
    settings = load_settings(args)
    secret = _read_secret()
    box = SecretBox.load(settings.certs_dir)
    store = open_store(settings)
    try:
        connection = oidc_connections.rotate_client_secret(
            store, clock, audit.CLI, args.connection, secret, seal=box.encrypt
        )
    finally:
        store.close()
    emit(args, oidc_connections.describe(connection), "The client secret was replaced.")
    return 0


def _text(shown: dict[str, Any]) -> str:
    return "\n".join(
        [
            f"{shown['id']}  {shown['name']}  ({shown['preset']} OIDC, {shown['state']})",
            "",
            "Register this sign-in redirect URI at the identity provider:",
            f"  {shown['redirect_uri']}",
            "",
            f"Issuer:     {shown['issuer']}",
            f"Client ID:  {shown['client_id']} ({shown['token_auth_method']})",
            f"Scopes:     {' '.join(shown['scopes'])}",
        ]
    )
