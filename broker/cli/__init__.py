"""`exec-broker`: set up, run and operate the broker.

One module per area registers its sub-commands (setup, keys, org, domain, client,
admin, ...). Every setup action the UI offers has a twin here with `--json`.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from broker.cli.common import fail
from broker.errors import BrokerError, ConfigError, InvalidInput

AREAS: tuple[str, ...] = (
    "broker.cli.setup",
    "broker.cli.keys",
    "broker.cli.org",
    "broker.cli.domain",
    "broker.cli.client",
    "broker.cli.webhooks",
    "broker.cli.admin",
    "broker.cli.directory",
    "broker.cli.role_mapping",
    "broker.cli.connection",
    "broker.cli.oidc_connection",
    "broker.cli.saml",
    "broker.cli.network",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="exec-broker",
        description="Exec Identity Broker: SSO (SAML/OIDC) and Directory Sync (SCIM) for Exec.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in AREAS:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        result = args._run(args)
    except ConfigError as exc:
        return fail(exc.public, 2)
    except InvalidInput as exc:
        return fail(exc.public, 2)
    except BrokerError as exc:
        return fail(exc.public, 1)
    except KeyboardInterrupt:
        return fail("interrupted", 130)
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())
