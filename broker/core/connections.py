"""Connections to an organization's IdP: lifecycle, settings rules and the admin's views.

States (DESIGN §2): draft → active ↔ inactive. Activation needs a successful test login
(`tested_at`, stamped by core.login when a test login passes) unless the admin says
`without_test`, which is written on the connection and in the audit log (core.policy
honours the flag). Events `connection.*` are recorded in the same transaction as the change.
Deactivating a connection ends the broker sessions it started, revokes their refresh
tokens and queues back-channel logouts (core.access, DESIGN §6).

SAML settings live in `config` (JSON); which keys exist and what values they take is
declared here as data (`SAML_OPTIONS`), so that the CLI, the UI and the ACS read one list.
IdP settings (entity ID, SSO URLs, certificates) come from the SAML edge after it parsed
metadata or the admin's manual entry; the core only checks their shape.

Standard library only (DESIGN §3).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from broker.clock import Clock, iso
from broker.core import access, audit, events
from broker.core.flows import LoginConfig
from broker.core.models import Connection, ConnectionType
from broker.core.ports import SamlLoginAttempt, Store
from broker.errors import InvalidInput, PolicyError
from broker.ids import new_id

# Provider presets (broker.saml.presets holds their attribute names and guidance; a test
# keeps the two lists equal).
PRESETS: tuple[str, ...] = (
    "okta",
    "entra",
    "google",
    "onelogin",
    "pingfederate",
    "pingone",
    "jumpcloud",
    "duo",
    "adfs",
    "rippling",
    "cyberark",
    "generic",
)
TYPES: tuple[ConnectionType, ...] = ("saml", "oidc")
RECENT_ATTEMPTS_KEPT = 50
# Refusals before an IdP signature verified: at most this many kept per connection per
# window (the rest are only logged), so junk POSTs cannot crowd out real attempts.
UNVERIFIED_BURST = 20
UNVERIFIED_WINDOW = 60.0
CERT_EXPIRY_WARNING_SECONDS = 30 * 86400


@dataclass(frozen=True)
class Option:
    """One admin-settable SAML option: its type, allowed values and default."""

    kind: type
    default: Any
    choices: tuple[Any, ...] = ()
    doc: str = ""


# Admin-settable options of a SAML connection (defaults applied at creation).
SAML_OPTIONS: dict[str, Option] = {
    "binding": Option(
        str,
        "redirect",
        ("redirect", "post"),
        "How the AuthnRequest travels to the IdP (Bindings §3.4 / §3.5).",
    ),
    "sign_requests": Option(bool, False, (), "Sign AuthnRequests with the SP key."),
    "sign_alg": Option(
        str,
        "rsa-sha256",
        ("rsa-sha256", "rsa-sha1"),
        "AuthnRequest signature algorithm (AD FS must match its trust).",
    ),
    "allow_sha1": Option(bool, False, (), "Accept SHA-1 signatures from the IdP (opt-in)."),
    "allow_unsolicited": Option(bool, True, (), "Accept IdP-initiated (unsolicited) logins."),
    "requested_authn_context": Option(
        list,
        [],
        (),
        "AuthnContextClassRefs to request (off by default: AD FS "
        "fails with MSIS7102 when it cannot satisfy one).",
    ),
    "attribute_overrides": Option(
        dict, {}, (), "Field → attribute name, replacing the preset's names."
    ),
    "encrypt_assertions": Option(bool, True, (), "List our encryption certificate in SP metadata."),
    "name_id_format": Option(str, "", (), "NameIDPolicy Format to ask for ('' = preset's)."),
}
OVERRIDE_FIELDS = ("email", "given_name", "family_name", "groups", "idp_id")
# Keys the SAML edge writes after reading metadata or the admin's manual entry.
IDP_KEYS = (
    "idp_entity_id",
    "sso_urls",
    "idp_certificates",
    "want_authn_requests_signed",
    "metadata_source",
    "metadata_url",
    "ca_bundle_pem",
    "metadata_valid_until",
    "metadata_fetched_at",
    "idp_warnings",
    "certificate_info",
)
METADATA_SOURCES = ("url", "xml", "manual")
SSO_BINDINGS = ("redirect", "post")


def check_option(name: str, value: Any) -> Any:
    """The value as stored, or InvalidInput naming the option."""
    option = SAML_OPTIONS.get(name)
    if option is None:
        raise InvalidInput(f"unknown SAML option {name!r}; known: {', '.join(SAML_OPTIONS)}")
    if option.kind is bool and isinstance(value, str):
        if value.lower() not in ("true", "false", "on", "off", "yes", "no", "1", "0"):
            raise InvalidInput(f"{name} must be true or false")
        value = value.lower() in ("true", "on", "yes", "1")
    if option.kind is list and isinstance(value, str):
        value = [v.strip() for v in value.split(",") if v.strip()]
    if not isinstance(value, option.kind):
        raise InvalidInput(f"{name} must be a {option.kind.__name__}")
    if option.choices and value not in option.choices:
        raise InvalidInput(f"{name} must be one of {', '.join(map(str, option.choices))}")
    checked: Any = value
    if name == "attribute_overrides":
        unknown = set(checked) - set(OVERRIDE_FIELDS)
        if unknown or not all(isinstance(v, str) and v for v in checked.values()):
            raise InvalidInput(
                f"attribute overrides take fields {', '.join(OVERRIDE_FIELDS)} "
                "mapped to attribute names"
            )
    if name == "requested_authn_context" and not all(isinstance(v, str) for v in checked):
        raise InvalidInput("requested_authn_context must be a list of URIs")
    return checked


def check_idp_settings(idp: Mapping[str, Any]) -> dict[str, Any]:
    """Shape checks on what the SAML edge parsed (it did the XML and X.509 work)."""
    unknown = set(idp) - set(IDP_KEYS)
    if unknown:
        raise InvalidInput(f"unknown IdP settings: {', '.join(sorted(unknown))}")
    if not str(idp.get("idp_entity_id") or "").strip():
        raise InvalidInput("the IdP entity ID is missing")
    sso_urls = idp.get("sso_urls") or {}
    if not isinstance(sso_urls, dict) or not sso_urls or set(sso_urls) - set(SSO_BINDINGS):
        raise InvalidInput("the IdP needs an SSO URL for the redirect or post binding")
    certs = idp.get("idp_certificates") or []
    if not isinstance(certs, list) or not certs or not all("BEGIN CERTIFICATE" in c for c in certs):
        raise InvalidInput("the IdP needs at least one signing certificate (PEM)")
    if idp.get("metadata_source") not in METADATA_SOURCES:
        raise InvalidInput(f"metadata_source must be one of {', '.join(METADATA_SOURCES)}")
    if idp.get("metadata_source") == "url" and not idp.get("metadata_url"):
        raise InvalidInput("a metadata URL connection needs its URL")
    return dict(idp)


# -- lifecycle ------------------------------------------------------------------------


def create_connection(
    store: Store,
    clock: Clock,
    actor: audit.Actor,
    *,
    organization_id: str,
    type: str,
    preset: str,
    name: str | None = None,
    idp: Mapping[str, Any] | None = None,
    options: Mapping[str, Any] | None = None,
    refresh_after: float | None = None,
) -> Connection:
    """A draft connection. For SAML, `idp` may be None (a draft waiting for the IdP's
    metadata: set_idp_settings fills it in); `options` override SAML_OPTIONS defaults;
    `refresh_after` (seconds) schedules the metadata URL refresh."""
    if type not in TYPES:
        raise InvalidInput(f"connection type must be one of {', '.join(TYPES)}")
    if preset not in PRESETS:
        raise InvalidInput(f"unknown preset {preset!r}; known: {', '.join(PRESETS)}")
    now = clock.now()
    config: dict[str, Any] = {}
    if type == "saml":
        config = {key: opt.default for key, opt in SAML_OPTIONS.items()}
        for key, value in (options or {}).items():
            config[key] = check_option(key, value)
        if idp is not None:
            config.update(check_idp_settings(idp))
    else:
        config = dict(options or {})
    with store.transaction():
        connection = insert_draft(
            store,
            now,
            actor,
            connection_id=new_id("conn"),
            organization_id=organization_id,
            type=type,
            preset=preset,
            name=name,
            config=config,
            audit_detail={"certificates": fingerprints_of(config)},
        )
        if type == "saml" and config.get("metadata_source") == "url" and refresh_after:
            store.saml.schedule_refresh(connection.id, now + refresh_after)
    return connection


def insert_draft(
    store: Store,
    now: float,
    actor: audit.Actor,
    *,
    connection_id: str,
    organization_id: str,
    type: str,
    preset: str,
    name: str | None,
    config: dict[str, Any],
    audit_detail: Mapping[str, Any],
) -> Connection:
    """Store a validated draft with its `connection.created` event and audit entry (one
    transaction); the SAML and OIDC creators validate their own settings first."""
    with store.transaction():
        org = store.organizations.get(organization_id)
        connection = Connection(
            id=connection_id,
            organization_id=org.id,
            type=type,  # type: ignore[arg-type]
            preset=preset,
            name=(name or "").strip() or f"{preset} {type.upper()}",
            state="draft",
            config=config,
            created_at=now,
            updated_at=now,
        )
        store.connections.create(connection)
        events.record(store, "connection.created", org.id, describe(connection), now)
        audit.record(
            store,
            actor,
            "connection.created",
            now,
            organization_id=org.id,
            target=connection.id,
            type=type,
            preset=preset,
            **audit_detail,
        )
    return connection


def update_options(
    store: Store, clock: Clock, actor: audit.Actor, connection_id: str, changes: Mapping[str, Any]
) -> Connection:
    now = clock.now()
    checked = {key: check_option(key, value) for key, value in changes.items()}
    with store.transaction():
        connection = store.connections.get(connection_id)
        if connection.type != "saml":
            raise InvalidInput("only SAML connections take these options")
        connection = store.connections.update(
            connection_id, config={**connection.config, **checked}, updated_at=now
        )
        audit.record(
            store,
            actor,
            "connection.options_changed",
            now,
            organization_id=connection.organization_id,
            target=connection_id,
            **{k: v for k, v in checked.items()},
        )
    return connection


def set_idp_settings(
    store: Store,
    clock: Clock,
    actor: audit.Actor,
    connection_id: str,
    idp: Mapping[str, Any],
    *,
    refresh_after: float | None = None,
) -> Connection:
    """Replace the IdP settings (admin upload, manual edit or a metadata refresh). The new
    certificate list takes effect at once for every worker: no restart, no downtime.
    `refresh_after` (seconds) schedules the refresh of a metadata URL given from the UI."""
    now = clock.now()
    checked = check_idp_settings(idp)
    with store.transaction():
        connection = store.connections.get(connection_id)
        if connection.type != "saml":
            raise InvalidInput("only SAML connections take IdP metadata")
        before = fingerprints_of(connection.config)
        config = {k: v for k, v in connection.config.items() if k not in IDP_KEYS}
        config.update(checked)
        connection = store.connections.update(connection_id, config=config, updated_at=now)
        if checked.get("metadata_source") == "url" and refresh_after:
            store.saml.schedule_refresh(connection_id, now + refresh_after)
        after = fingerprints_of(config)
        if before != after or actor.name != audit.SYSTEM.name:
            audit.record(
                store,
                actor,
                "connection.idp_updated",
                now,
                organization_id=connection.organization_id,
                target=connection_id,
                source=checked.get("metadata_source"),
                certificates_added=[f for f in after if f not in before],
                certificates_removed=[f for f in before if f not in after],
            )
    return connection


def activate(
    store: Store,
    clock: Clock,
    actor: audit.Actor,
    connection_id: str,
    *,
    without_test: bool = False,
) -> Connection:
    now = clock.now()
    with store.transaction():
        connection = store.connections.get(connection_id)
        if connection.state == "active":
            return connection
        require_settings(connection)
        if connection.tested_at is None and not without_test:
            raise PolicyError(
                "Run a successful test login before activating this connection "
                "(or activate it --without-test, which is audited)."
            )
        config = dict(connection.config)
        if without_test and connection.tested_at is None:
            config["activated_without_test"] = True
        connection = store.connections.update(
            connection_id, state="active", config=config, updated_at=now
        )
        events.record(
            store, "connection.activated", connection.organization_id, describe(connection), now
        )
        audit.record(
            store,
            actor,
            "connection.activated",
            now,
            organization_id=connection.organization_id,
            target=connection_id,
            without_test=bool(without_test and connection.tested_at is None),
        )
    return connection


def deactivate(store: Store, clock: Clock, actor: audit.Actor, connection_id: str) -> Connection:
    now = clock.now()
    with store.transaction():
        connection = store.connections.get(connection_id)
        if connection.state != "active":
            return connection
        connection = store.connections.update(connection_id, state="inactive", updated_at=now)
        # Its users lose access at once, not when their refresh tokens expire (DESIGN §6).
        ended = access.end_connection_sessions(
            store, now, connection_id, reason="connection_deactivated", actor=actor
        )
        events.record(
            store, "connection.deactivated", connection.organization_id, describe(connection), now
        )
        audit.record(
            store,
            actor,
            "connection.deactivated",
            now,
            organization_id=connection.organization_id,
            target=connection_id,
            sessions_ended=ended,
        )
    return connection


def record_test_success(store: Store, clock: Clock, connection_id: str) -> Connection:
    """Stamp `tested_at` (core.login does this itself when a test login passes; kept for
    other callers such as an import of an already-tested connection)."""
    now = clock.now()
    with store.transaction():
        return store.connections.update(connection_id, tested_at=now, updated_at=now)


# -- readiness and test logins ----------------------------------------------------------


def missing_settings(connection: Connection) -> str | None:
    """What a draft still lacks before it can be tested or activated, in the admin's words;
    None when nothing is missing."""
    config = connection.config
    if connection.type == "saml":
        if not (
            config.get("idp_entity_id")
            and config.get("sso_urls")
            and config.get("idp_certificates")
        ):
            return (
                "This connection has no identity provider settings yet: give the IdP's "
                "metadata (URL or file) or its entity ID, SSO URL and certificate first."
            )
        return None
    if not config.get("issuer") or not config.get("client_id"):
        return (
            "This connection has no identity provider settings yet: give the issuer and "
            "the client ID the IdP assigned first."
        )
    if config.get("token_auth_method") != "private_key_jwt" and not config.get("client_secret_enc"):
        return "This connection has no client secret yet: give the one the IdP assigned."
    return None


def require_settings(connection: Connection) -> None:
    """PolicyError (public message) unless the connection has its IdP settings."""
    missing = missing_settings(connection)
    if missing is not None:
        raise PolicyError(missing)


def start_test_login(
    store: Store, clock: Clock, actor: audit.Actor, connection_id: str, *, config: LoginConfig
) -> tuple[str, str]:
    """(flow id, path that starts it at the IdP) for the admin's test login; refused while
    the connection lacks its IdP settings. The result is shown at
    core.login.TEST_LOGIN_RESULT_PATH, to signed-in admins only."""
    from broker.core import login  # login's dependencies reach back here; import late

    connection = store.connections.get(connection_id)
    require_settings(connection)
    flow_id = login.create_test_login(store, clock, connection.id, actor, config)
    path = login.UPSTREAM_PATHS[connection.type].format(
        connection_id=connection.id, flow_id=flow_id
    )
    return flow_id, path


def test_result_path(connection_id: str, flow_id: str) -> str:
    from broker.core import login

    return login.TEST_LOGIN_RESULT_PATH.format(connection_id=connection_id, flow_id=flow_id)


# -- the admin's views ----------------------------------------------------------------


def record_attempt(store: Store, attempt: SamlLoginAttempt) -> None:
    store.saml.record_attempt(attempt, RECENT_ATTEMPTS_KEPT)


def record_unverified_attempt(store: Store, attempt: SamlLoginAttempt) -> bool:
    """Keep an attempt nobody authenticated (junk at a public ACS address), at most
    UNVERIFIED_BURST per connection per UNVERIFIED_WINDOW seconds; False when throttled.
    The read and the write share one transaction, so workers cannot both slip past."""
    with store.transaction():
        recent = store.saml.attempts(attempt.connection_id, UNVERIFIED_BURST)
        burst = [
            a
            for a in recent
            if a.detail.get("unverified") and attempt.at - a.at < UNVERIFIED_WINDOW
        ]
        if len(burst) >= UNVERIFIED_BURST:
            return False
        record_attempt(store, attempt)
    return True


def recent_attempts(store: Store, connection_id: str, limit: int = 20) -> list[SamlLoginAttempt]:
    return store.saml.attempts(connection_id, limit)


def trusted_certificates(connection: Connection) -> tuple[str, ...]:
    """Every IdP certificate trusted now (several during an IdP's key rollover)."""
    return tuple(dict.fromkeys(connection.config.get("idp_certificates") or ()))


def fingerprints_of(config: Mapping[str, Any]) -> list[str]:
    return (
        [str(info.get("sha256")) for info in config.get("certificate_info") or ()]
        if config.get("certificate_info")
        else []
    )


def expiring_certificates(
    connection: Connection, now: float, within: float = CERT_EXPIRY_WARNING_SECONDS
) -> list[dict[str, Any]]:
    """IdP certificates that expired or expire within `within` seconds, for the admin."""
    return [
        {**info, "expired": info["not_after"] <= now, "not_after_iso": iso(info["not_after"])}
        for info in connection.config.get("certificate_info") or ()
        if info.get("not_after") is not None and info["not_after"] - now < within
    ]


def describe(connection: Connection) -> dict[str, Any]:
    """The connection as events and the API show it (no certificates' bodies)."""
    shown: dict[str, Any] = {
        "object": "connection",
        "id": connection.id,
        "organization_id": connection.organization_id,
        "connection_type": connection.type,
        "preset": connection.preset,
        "name": connection.name,
        "state": connection.state,
        "tested_at": iso(connection.tested_at) if connection.tested_at else None,
        "created_at": iso(connection.created_at),
        "updated_at": iso(connection.updated_at),
    }
    if connection.type == "saml":
        config = connection.config
        shown["idp_entity_id"] = config.get("idp_entity_id")
        shown["metadata_source"] = config.get("metadata_source")
        shown["certificate_fingerprints"] = fingerprints_of(config)
    return shown
