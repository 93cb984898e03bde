"""saml rotate-sp-cert [--promote | --retire-previous] · saml sp-certs.

SP certificate rollover in three steps (broker.saml.sp_keys): publish a next certificate
beside the current one (IdPs that read our metadata learn it), promote it (we sign with
it; the old one stays published and can still decrypt), then retire the old one.
"""

from __future__ import annotations

import argparse
from typing import Any

from broker.cli.common import Command, emit, load_settings
from broker.clock import iso
from broker.saml import sp_keys
from broker.saml.metadata import certificate_info


def register(sub: Any) -> None:
    saml = sub.add_parser("saml", help="the SAML service provider's keys").add_subparsers(
        dest="saml_command", metavar="ACTION", required=True
    )
    p = saml.add_parser("rotate-sp-cert", help="SP certificate rollover, one step at a time")
    step = p.add_mutually_exclusive_group()
    step.add_argument(
        "--promote",
        action="store_true",
        help="make the next certificate current (the old one stays published)",
    )
    step.add_argument(
        "--retire-previous", action="store_true", help="stop publishing the previous certificate"
    )
    Command(p, rotate)
    Command(saml.add_parser("sp-certs", help="the SP certificates published now"), show)


def _describe(keys: sp_keys.SpKeys) -> dict[str, Any]:
    shown: dict[str, Any] = {}
    for role, pair in (("current", keys.current), ("next", keys.next), ("previous", keys.previous)):
        if pair is not None:
            info = certificate_info(pair.cert_pem)
            shown[role] = {
                "sha256": info.sha256,
                "subject": info.subject,
                "not_after": iso(info.not_after),
            }
    return shown


def _text(shown: dict[str, Any]) -> str:
    return "\n".join(f"{role:9} {c['sha256']}  until {c['not_after']}" for role, c in shown.items())


def rotate(args: argparse.Namespace) -> int:
    settings = load_settings(args)
    certs = settings.certs_dir
    if args.promote:
        keys = sp_keys.promote(certs)
        note = (
            "Promoted: AuthnRequests are now signed with the new certificate; the old one "
            "stays in the metadata until `saml rotate-sp-cert --retire-previous`."
        )
    elif args.retire_previous:
        keys = sp_keys.retire_previous(certs)
        note = "The previous SP certificate is no longer published."
    else:
        sp_keys.prepare_next(certs, f"Exec Identity Broker SAML SP ({settings.public_url})")
        keys = sp_keys.load(certs)
        note = (
            "A next SP certificate is published beside the current one. Let every IdP "
            "re-read the SP metadata, then run `saml rotate-sp-cert --promote`."
        )
    shown = _describe(keys)
    emit(args, shown, lambda: note + "\n" + _text(shown))
    return 0


def show(args: argparse.Namespace) -> int:
    shown = _describe(sp_keys.load(load_settings(args).certs_dir))
    emit(args, shown, lambda: _text(shown))
    return 0
