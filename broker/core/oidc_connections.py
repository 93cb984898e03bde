"""OIDC connections: creating one (type `oidc` in the connections table) and its rules.

The configuration (Connection.config, JSON) of an OIDC connection:

    issuer            the IdP's issuer, exactly as its discovery document names it
    client_id         our client ID at the IdP
    token_auth_method client_secret_basic | client_secret_post | private_key_jwt
    client_secret_enc the client secret sealed at rest (broker.crypto.secrets.SecretBox,
                      context `oidc-client-secret:{connection_id}`); never shown again
    scopes            list; `openid` always first (default openid email profile)
    claims            per-connection claim-name overrides, field → claim name
    ca_pem            optional PEM bundle replacing the system trust store for this IdP
    hosted_domain     optional (Google): the `hd` claim every login must carry
    discovery_error   set by the background refresher (record_discovery_check): why the
                      IdP's discovery document or JWKS could not be refreshed, else None
    discovery_checked_at  when that outcome (error or recovery) was first seen

Lifecycle (activate, deactivate, test) is core.connections' and core.login's; events and
audit entries are written in the same transaction as the connection (an outbox).
Standard library only (DESIGN §3): the secret is sealed through the `seal` callable the
caller wires (SecretBox.encrypt), so the core never holds a key.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import urlsplit

from broker.clock import Clock
from broker.core import audit, connections
from broker.core.models import Connection
from broker.core.ports import Store
from broker.errors import InvalidInput
from broker.ids import new_id

# The presets known to broker.upstream_oidc.presets (which holds each one's claim names).
OIDC_PRESETS: tuple[str, ...] = (
    "okta",
    "entra",
    "google",
    "onelogin",
    "pingone",
    "jumpcloud",
    "rippling",
    "cyberark",
    "generic",
)
CLAIM_FIELDS: tuple[str, ...] = (
    "email",
    "given_name",
    "family_name",
    "name",
    "groups",
    "roles",
    "idp_id",
)
AUTH_METHODS: tuple[str, ...] = ("client_secret_basic", "client_secret_post", "private_key_jwt")
DEFAULT_SCOPES: tuple[str, ...] = ("openid", "email", "profile")
_LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})
# RFC 6749 §3.3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E )
_SCOPE_TOKEN = re.compile(r"^[\x21\x23-\x5b\x5d-\x7e]+$")
_CLAIM_NAME = re.compile(r"^[\x21-\x7e]{1,200}$")
_DOMAIN = re.compile(r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")


def secret_context(connection_id: str) -> str:
    """The AES-GCM associated data: a sealed secret only opens for its own connection."""
    return f"oidc-client-secret:{connection_id}"


@dataclass(frozen=True)
class OidcConnectionInput:
    organization_id: str
    preset: str
    issuer: str
    client_id: str
    client_secret: str | None = None
    token_auth_method: str = "client_secret_basic"
    scopes: Sequence[str] = DEFAULT_SCOPES
    claims: Mapping[str, str] = field(default_factory=dict)
    ca_pem: str | None = None
    hosted_domain: str | None = None
    name: str | None = None


def check_issuer(issuer: str, allow_insecure_loopback: bool = False) -> str:
    """An https URL without query, fragment or credentials (OIDC Discovery §2: the issuer
    is a case-sensitive https URL). Kept exactly as given: it must match the IdP's."""
    text = issuer.strip()
    try:
        parts = urlsplit(text)
        host = parts.hostname
    except ValueError:
        raise InvalidInput("the issuer is not a valid URL") from None
    if not host:
        raise InvalidInput("the issuer must be an absolute URL such as https://idp.example.com")
    if parts.query or parts.fragment or parts.username or parts.password:
        raise InvalidInput("the issuer must not carry a query, fragment or credentials")
    if parts.scheme == "https":
        return text
    if parts.scheme == "http" and allow_insecure_loopback and host in _LOOPBACK:
        return text  # local tests and demos only, by explicit opt-in
    raise InvalidInput("the issuer must use https")


def check_scopes(scopes: Sequence[str]) -> list[str]:
    result = ["openid"]
    for scope in scopes:
        for token in str(scope).split():
            if not _SCOPE_TOKEN.match(token):
                raise InvalidInput(f"{token!r} is not a valid OAuth scope")
            if token not in result:
                result.append(token)
    return result


def check_claims(claims: Mapping[str, str]) -> dict[str, str]:
    checked: dict[str, str] = {}
    for field_name, claim in claims.items():
        if field_name not in CLAIM_FIELDS:
            raise InvalidInput(
                f"unknown claim field {field_name!r}; known: {', '.join(CLAIM_FIELDS)}"
            )
        if not isinstance(claim, str) or not _CLAIM_NAME.match(claim):
            raise InvalidInput(f"claim name for {field_name} must be 1-200 visible characters")
        checked[field_name] = claim
    return checked


def check_hosted_domain(value: str | None) -> str | None:
    if value is None or not value.strip():
        return None
    domain = value.strip().lower().rstrip(".")
    if not _DOMAIN.match(domain):
        raise InvalidInput(f"{value!r} is not a domain name")
    return domain


def _checked_config(
    data: OidcConnectionInput,
    connection_id: str,
    seal: Callable[[str, str], str],
    allow_insecure_loopback: bool,
    kept_secret_enc: str | None = None,
) -> dict[str, Any]:
    """The connection's config from the admin's input, every field checked. A blank secret
    keeps `kept_secret_enc` (the one already sealed) when there is one."""
    if data.preset not in OIDC_PRESETS:
        raise InvalidInput(f"unknown OIDC preset {data.preset!r}; known: {', '.join(OIDC_PRESETS)}")
    issuer = check_issuer(data.issuer, allow_insecure_loopback)
    client_id = data.client_id.strip()
    if not client_id or len(client_id) > 255 or not client_id.isprintable():
        raise InvalidInput("the client ID must be 1-255 printable characters")
    if data.token_auth_method not in AUTH_METHODS:
        raise InvalidInput(f"token auth method must be one of {', '.join(AUTH_METHODS)}")
    secret = data.client_secret or ""
    sealed: str | None = None
    if data.token_auth_method == "private_key_jwt":
        if secret:
            raise InvalidInput("private_key_jwt uses the broker's key; give no client secret")
    elif secret.strip():
        sealed = seal(secret, secret_context(connection_id))
    elif kept_secret_enc:
        sealed = kept_secret_enc
    else:
        raise InvalidInput("a client secret is required (or use private_key_jwt)")
    ca_pem = (data.ca_pem or "").strip() or None
    if ca_pem is not None and "-----BEGIN CERTIFICATE-----" not in ca_pem:
        raise InvalidInput("the CA bundle must hold PEM certificates")
    hosted_domain = check_hosted_domain(data.hosted_domain)
    if hosted_domain and data.preset != "google":
        raise InvalidInput("a hosted domain applies to the google preset only")
    return {
        "issuer": issuer,
        "client_id": client_id,
        "token_auth_method": data.token_auth_method,
        "client_secret_enc": sealed,
        "scopes": check_scopes(data.scopes),
        "claims": check_claims(data.claims),
        "ca_pem": ca_pem,
        "hosted_domain": hosted_domain,
    }


def create_oidc_connection(
    store: Store,
    clock: Clock,
    actor: audit.Actor,
    data: OidcConnectionInput,
    *,
    seal: Callable[[str, str], str],
    allow_insecure_loopback: bool = False,
) -> Connection:
    """A draft OIDC connection, with its secret sealed; one transaction, nothing partial."""
    connection_id = new_id("conn")
    config = _checked_config(data, connection_id, seal, allow_insecure_loopback)
    return _create(
        store, clock, actor, data.organization_id, data.preset, data.name, connection_id, config
    )


def create_oidc_draft(
    store: Store,
    clock: Clock,
    actor: audit.Actor,
    *,
    organization_id: str,
    preset: str,
    name: str | None = None,
) -> Connection:
    """A draft without IdP settings: the setup UI shows its redirect URI first (the IdP
    needs it to register the app and hand out the client ID and secret), then calls
    set_oidc_settings. Test logins and activation wait for those settings
    (core.connections.require_settings)."""
    if preset not in OIDC_PRESETS:
        raise InvalidInput(f"unknown OIDC preset {preset!r}; known: {', '.join(OIDC_PRESETS)}")
    config: dict[str, Any] = {
        "issuer": None,
        "client_id": None,
        "token_auth_method": "client_secret_basic",
        "client_secret_enc": None,
        "scopes": list(DEFAULT_SCOPES),
        "claims": {},
        "ca_pem": None,
        "hosted_domain": None,
    }
    return _create(store, clock, actor, organization_id, preset, name, new_id("conn"), config)


def set_oidc_settings(
    store: Store,
    clock: Clock,
    actor: audit.Actor,
    connection_id: str,
    data: OidcConnectionInput,
    *,
    seal: Callable[[str, str], str],
    allow_insecure_loopback: bool = False,
) -> Connection:
    """Set or replace an OIDC connection's IdP settings (`data.organization_id` and
    `data.preset` are the connection's own and are ignored). A blank secret keeps the
    sealed one. The connection must pass a new test login: `tested_at` is cleared."""
    now = clock.now()
    with store.transaction():
        connection = store.connections.get(connection_id)
        if connection.type != "oidc":
            raise InvalidInput("only OIDC connections take an issuer and client ID")
        data = replace(data, organization_id=connection.organization_id, preset=connection.preset)
        config = _checked_config(
            data,
            connection_id,
            seal,
            allow_insecure_loopback,
            kept_secret_enc=connection.config.get("client_secret_enc"),
        )
        changes: dict[str, Any] = {"config": {**connection.config, **config}, "updated_at": now}
        if connection.state != "active":
            changes["tested_at"] = None
        connection = store.connections.update(connection_id, **changes)
        audit.record(
            store,
            actor,
            "connection.idp_updated",
            now,
            organization_id=connection.organization_id,
            target=connection_id,
            issuer=config["issuer"],
            client_id=config["client_id"],
            token_auth_method=config["token_auth_method"],
            secret_replaced=bool((data.client_secret or "").strip()),
        )
    return connection


def _create(
    store: Store,
    clock: Clock,
    actor: audit.Actor,
    organization_id: str,
    preset: str,
    name: str | None,
    connection_id: str,
    config: dict[str, Any],
) -> Connection:
    return connections.insert_draft(
        store,
        clock.now(),
        actor,
        connection_id=connection_id,
        organization_id=organization_id,
        type="oidc",
        preset=preset,
        name=name,
        config=config,
        audit_detail={
            "issuer": config.get("issuer"),
            "client_id": config.get("client_id"),
            "token_auth_method": config.get("token_auth_method"),
        },
    )


def rotate_client_secret(
    store: Store,
    clock: Clock,
    actor: audit.Actor,
    connection_id: str,
    secret: str,
    *,
    seal: Callable[[str, str], str],
) -> Connection:
    """Replace the sealed client secret (the IdP rotated it); audited, never logged."""
    if not secret.strip():
        raise InvalidInput("the client secret must not be empty")
    now = clock.now()
    with store.transaction():
        connection = store.connections.get(connection_id)
        if connection.type != "oidc":
            raise InvalidInput("only OIDC connections have a client secret")
        config = dict(
            connection.config,
            client_secret_enc=seal(secret, secret_context(connection_id)),
            token_auth_method="client_secret_basic"
            if connection.config.get("token_auth_method") == "private_key_jwt"
            else connection.config.get("token_auth_method"),
        )
        connection = store.connections.update(connection_id, config=config, updated_at=now)
        audit.record(
            store,
            actor,
            "connection.secret_rotated",
            now,
            organization_id=connection.organization_id,
            target=connection_id,
        )
    return connection


def describe(connection: Connection) -> dict[str, Any]:
    """What the CLI and the UI show of an OIDC connection: never the secret."""
    config = connection.config
    return {
        **connections.describe(connection),
        "issuer": config.get("issuer"),
        "client_id": config.get("client_id"),
        "token_auth_method": config.get("token_auth_method"),
        "client_secret_set": bool(config.get("client_secret_enc")),
        "scopes": list(config.get("scopes") or ()),
        "claims": dict(config.get("claims") or {}),
        "custom_ca": bool(config.get("ca_pem")),
        "hosted_domain": config.get("hosted_domain"),
        "discovery_error": config.get("discovery_error"),
        "discovery_checked_at": config.get("discovery_checked_at"),
    }


def record_discovery_check(
    store: Store, clock: Clock, connection_id: str, error: str | None, detail: str | None = None
) -> bool:
    """Record the outcome of a background discovery/JWKS refresh on the connection's config
    (`discovery_error`: the public reason or None; `discovery_checked_at`: when that outcome
    was first seen). Written only when the outcome changes, so that a refresher running
    every few minutes in every worker does not write on each round; a change is audited
    (with the private `detail`). Returns whether anything was written."""
    now = clock.now()
    with store.transaction():
        # Read inside the transaction: another worker may have recorded the same outcome.
        connection = store.connections.get(connection_id)
        if connection.type != "oidc":
            raise InvalidInput("only OIDC connections have a discovery document")
        config = connection.config
        if config.get("discovery_error") == error:  # absent counts as "no error"
            return False
        store.connections.update(
            connection_id,
            config={**config, "discovery_error": error, "discovery_checked_at": now},
        )
        audit.record(
            store,
            audit.SYSTEM,
            "connection.discovery_failed" if error else "connection.discovery_recovered",
            now,
            organization_id=connection.organization_id,
            target=connection_id,
            issuer=config.get("issuer"),
            error=error,
            detail=detail,
        )
    return True
