"""connection create · list · show · set · activate · deactivate · test-login-url ·
refresh-metadata · attempts — the CLI twins of the connection pages (issue §9)."""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path
from typing import Any

from broker.cli.common import Command, clock, emit, load_settings, open_store, table
from broker.clock import iso
from broker.core import audit
from broker.core import connections as core
from broker.core.flows import LoginConfig
from broker.errors import InvalidInput
from broker.saml import endpoints, idp_settings
from broker.saml.presets import preset_defaults
from broker.settings import Settings
from broker.storage.store import SQLiteStore


def register(sub: Any) -> None:
    conn = sub.add_parser("connection", help="SSO connections to the organizations' IdPs")
    actions = conn.add_subparsers(dest="connection_command", metavar="ACTION", required=True)
    p = actions.add_parser("create", help="create a draft SAML connection")
    p.add_argument("--org", required=True)
    p.add_argument("--type", choices=["saml"], default="saml")
    p.add_argument("--preset", choices=core.PRESETS, default="generic")
    p.add_argument("--name")
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--metadata-url", help="the IdP's metadata URL (refreshed on a schedule)")
    source.add_argument("--metadata-file", type=Path, help="the IdP's metadata XML")
    source.add_argument("--entity-id", help="manual: the IdP entity ID (with --sso-url, --cert)")
    p.add_argument("--idp-entity", help="which entity of a multi-IdP metadata document")
    p.add_argument("--sso-url", help="manual: the IdP single sign-on URL")
    p.add_argument(
        "--cert",
        type=Path,
        action="append",
        default=[],
        help="manual: an IdP signing certificate (PEM); repeat for rollover",
    )
    p.add_argument("--ca-bundle", type=Path, help="PEM CA bundle to trust for the metadata URL")
    _option_flags(p)
    Command(p, create)
    p = actions.add_parser("list", help="connections (of one organization)")
    p.add_argument("--org")
    Command(p, list_connections)
    for name, run, text in (
        ("show", show, "a connection with the SP URLs to paste into the IdP"),
        ("deactivate", deactivate, "switch a connection off"),
        ("test-login-url", test_login_url, "print a URL that starts a test login"),
        ("refresh-metadata", refresh_metadata, "re-fetch the IdP metadata URL now"),
        ("attempts", attempts, "recent login attempts (failed check, expected vs got)"),
    ):
        p = actions.add_parser(name, help=text)
        p.add_argument("connection")
        Command(p, run)
    p = actions.add_parser("activate", help="activate (needs a successful test login)")
    p.add_argument("connection")
    p.add_argument(
        "--without-test",
        action="store_true",
        help="activate without a test login (automation; audited)",
    )
    Command(p, activate)
    p = actions.add_parser("set", help="change SAML options of a connection")
    p.add_argument("connection")
    _option_flags(p)
    p.add_argument(
        "--idp-cert",
        type=Path,
        action="append",
        default=[],
        help="replace manual IdP certificates (PEM); repeat to trust several",
    )
    Command(p, set_options)


def _option_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--binding", choices=["redirect", "post"])
    p.add_argument("--sign-requests", choices=["true", "false"])
    p.add_argument("--sign-alg", choices=["rsa-sha256", "rsa-sha1"])
    p.add_argument("--allow-sha1", choices=["true", "false"])
    p.add_argument("--allow-unsolicited", choices=["true", "false"])
    p.add_argument("--encrypt-assertions", choices=["true", "false"])
    p.add_argument("--requested-authn-context", help="comma-separated AuthnContextClassRefs")
    p.add_argument(
        "--map",
        action="append",
        default=[],
        metavar="FIELD=ATTRIBUTE",
        help="attribute override, e.g. email=mail (fields: "
        + ", ".join(core.OVERRIDE_FIELDS)
        + ")",
    )


def _options(args: argparse.Namespace) -> dict[str, Any]:
    options: dict[str, Any] = {}
    for key in (
        "binding",
        "sign_requests",
        "sign_alg",
        "allow_sha1",
        "allow_unsolicited",
        "encrypt_assertions",
        "requested_authn_context",
    ):
        value = getattr(args, key, None)
        if value is not None:
            options[key] = value
    if args.map:
        overrides = {}
        for item in args.map:
            field, sep, attribute = item.partition("=")
            if not sep:
                raise InvalidInput(f"--map takes FIELD=ATTRIBUTE, got {item!r}")
            overrides[field.strip()] = attribute.strip()
        options["attribute_overrides"] = overrides
    return options


def _idp_from_args(
    args: argparse.Namespace, settings: Settings, store: SQLiteStore
) -> dict[str, Any]:
    now = clock.now()
    if args.metadata_file:
        return idp_settings.from_xml(args.metadata_file.read_bytes(), now, args.idp_entity)
    if args.metadata_url:
        ca = args.ca_bundle.read_text() if args.ca_bundle else None
        allow = sorted(
            set(settings.get("network.private_hosts_allowlist")) | set(store.network_hosts.list())
        )
        return asyncio.run(
            idp_settings.from_url(
                args.metadata_url,
                now,
                allowlist=allow,
                ca_bundle_pem=ca,
                timeout=settings.get("saml.metadata_timeout_seconds"),
                max_bytes=settings.get("saml.metadata_max_bytes"),
                entity_id=args.idp_entity,
            )
        )
    if not args.sso_url or not args.cert:
        raise InvalidInput("manual IdP settings need --entity-id, --sso-url and --cert")
    return idp_settings.manual(
        args.entity_id, args.sso_url, [c.read_text() for c in args.cert], now
    )


def describe(settings: Settings, store: SQLiteStore, connection_id: str) -> dict[str, Any]:
    connection = store.connections.get(connection_id)
    shown = core.describe(connection)
    if connection.type == "saml":
        config = connection.config
        shown.update(endpoints.sp_summary(settings.public_url, connection.id))
        shown["idp_sso_urls"] = config.get("sso_urls")
        shown["idp_metadata_url"] = config.get("metadata_url")
        shown["options"] = {k: config.get(k) for k in core.SAML_OPTIONS}
        shown["activated_without_test"] = bool(config.get("activated_without_test"))
        shown["idp_certificates"] = config.get("certificate_info") or []
        shown["expiring_certificates"] = core.expiring_certificates(connection, clock.now())
        shown["warnings"] = config.get("idp_warnings") or []
        state = store.saml.refresh_state(connection.id)
        if state is not None:
            shown["metadata_refresh"] = {
                "next_at": iso(state.next_at),
                "last_error": state.last_error,
                "last_success_at": iso(state.last_success_at) if state.last_success_at else None,
            }
    return shown


def _show_text(shown: dict[str, Any]) -> str:
    lines = [f"{shown['id']}  {shown['name']}  ({shown['preset']}, {shown['state']})"]
    if "acs_url" in shown:
        lines += [
            "",
            "Paste into your IdP:",
            f"  SP Entity ID / Audience:  {shown['sp_entity_id']}",
            f"  ACS URL (HTTP-POST):      {shown['acs_url']}",
            f"  SP metadata URL:          {shown['metadata_url']}",
            "",
            f"IdP entity ID: {shown.get('idp_entity_id')}",
            f"Tested: {shown.get('tested_at') or 'never'}",
        ]
        for cert in shown.get("expiring_certificates") or []:
            lines.append(
                f"WARNING: IdP certificate {cert['subject']} "
                f"{'expired' if cert['expired'] else 'expires'} {cert['not_after_iso']}"
            )
    return "\n".join(lines)


def _with_store(fn: Any) -> Any:
    def run(args: argparse.Namespace) -> int:
        settings = load_settings(args)
        store = open_store(settings)
        try:
            return int(fn(args, settings, store) or 0)
        finally:
            store.close()

    return run


@_with_store
def create(args: argparse.Namespace, settings: Settings, store: SQLiteStore) -> int:
    idp = _idp_from_args(args, settings, store)
    connection = core.create_connection(
        store,
        clock,
        audit.CLI,
        organization_id=args.org,
        type=args.type,
        preset=args.preset,
        name=args.name,
        idp=idp,
        options={**preset_defaults(args.preset), **_options(args)},
        refresh_after=settings.get("saml.metadata_refresh_seconds"),
    )
    shown = describe(settings, store, connection.id)
    emit(args, shown, lambda: "Created draft connection\n" + _show_text(shown))
    return 0


@_with_store
def list_connections(args: argparse.Namespace, settings: Settings, store: SQLiteStore) -> int:
    found = store.connections.list(args.org)
    rows = [
        [
            c.id,
            c.organization_id,
            c.type,
            c.preset,
            c.state,
            iso(c.tested_at) if c.tested_at else "-",
        ]
        for c in found
    ]
    emit(
        args,
        [core.describe(c) for c in found],
        table(rows, ["ID", "ORG", "TYPE", "PRESET", "STATE", "TESTED"]),
    )
    return 0


@_with_store
def show(args: argparse.Namespace, settings: Settings, store: SQLiteStore) -> int:
    shown = describe(settings, store, args.connection)
    emit(args, shown, lambda: _show_text(shown))
    return 0


@_with_store
def activate(args: argparse.Namespace, settings: Settings, store: SQLiteStore) -> int:
    connection = core.activate(
        store, clock, audit.CLI, args.connection, without_test=args.without_test
    )
    emit(args, core.describe(connection), f"{connection.id} is active.")
    return 0


@_with_store
def deactivate(args: argparse.Namespace, settings: Settings, store: SQLiteStore) -> int:
    connection = core.deactivate(store, clock, audit.CLI, args.connection)
    emit(args, core.describe(connection), f"{connection.id} is {connection.state}.")
    return 0


@_with_store
def set_options(args: argparse.Namespace, settings: Settings, store: SQLiteStore) -> int:
    options = _options(args)
    if options:
        core.update_options(store, clock, audit.CLI, args.connection, options)
    if args.idp_cert:
        current = store.connections.get(args.connection).config
        sso = current.get("sso_urls") or {}
        idp = idp_settings.manual(
            str(current.get("idp_entity_id")),
            next(iter(sso.values()), ""),
            [c.read_text() for c in args.idp_cert],
            clock.now(),
            bindings=tuple(sso) or ("redirect", "post"),
        )
        core.set_idp_settings(store, clock, audit.CLI, args.connection, idp)
    shown = describe(settings, store, args.connection)
    emit(args, shown, lambda: _show_text(shown))
    return 0


@_with_store
def test_login_url(args: argparse.Namespace, settings: Settings, store: SQLiteStore) -> int:
    """SAML or OIDC alike: the core picks the start path by connection type, and refuses a
    draft that still lacks its IdP settings."""
    get = settings.get
    config = LoginConfig(  # the same settings as broker.web.services.Services.login_config
        issuer=settings.public_url,
        code_ttl=int(get("oidc.code_ttl_seconds")),
        session_ttl=int(get("oidc.session_ttl_seconds")),
        flow_ttl=int(get("oidc.flow_ttl_seconds")),
        refresh_ttl=int(get("oidc.refresh_token_ttl_seconds")),
    )
    flow_id, path = core.start_test_login(store, clock, audit.CLI, args.connection, config=config)
    url = settings.public_url + path
    result = {
        "url": url,
        "flow_id": flow_id,
        # the setup UI's result page (signed-in admins only)
        "result_url": settings.public_url + core.test_result_path(args.connection, flow_id),
    }
    emit(args, result, f"Open this URL in a browser within 10 minutes:\n  {url}")
    return 0


@_with_store
def refresh_metadata(args: argparse.Namespace, settings: Settings, store: SQLiteStore) -> int:
    from broker.app import build_services
    from broker.saml import refresh

    services = build_services(settings)
    try:
        result = asyncio.run(
            refresh.refresh_connection(services, args.connection, refresh.worker_id(), force=True)
        )
    finally:
        services.executor.shutdown(wait=True)
        services.store.close()
    if result is None:
        emit(args, {"refreshed": False}, "Another worker is refreshing it, or it has no URL.")
        return 1
    emit(args, result, "Refreshed." if result.ok else f"Refresh failed: {result.error}")
    return 0 if result.ok else 1


@_with_store
def attempts(args: argparse.Namespace, settings: Settings, store: SQLiteStore) -> int:
    found = core.recent_attempts(store, args.connection, 50)
    rows = [
        [
            iso(a.at),
            a.kind,
            a.outcome,
            a.check or "",
            a.expected or "",
            a.got or "",
            a.correlation_id or "",
        ]
        for a in found
    ]
    emit(
        args,
        found,
        lambda: table(rows, ["AT", "KIND", "OUTCOME", "CHECK", "EXPECTED", "GOT", "REFERENCE"]),
    )
    return 0
