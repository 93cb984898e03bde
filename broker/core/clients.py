"""OIDC clients of the broker (Exec): registration and secret rotation.

Secrets are `brk_cs_…`, shown once, stored as SHA-256 (high entropy: no dictionary
to attack). Redirect URIs are matched exactly later, so they are validated here.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from urllib.parse import urlsplit

from broker.clock import Clock
from broker.core import audit, webhooks
from broker.core.models import Client
from broker.core.ports import Store
from broker.errors import InvalidInput
from broker.ids import hash_token, new_id, new_secret

AUTH_METHODS = ("client_secret_basic", "client_secret_post", "private_key_jwt")
ID_TOKEN_ALGS = ("RS256", "ES256")


def check_uri(uri: str, what: str, *, allow_http_loopback: bool = True) -> str:
    parts = urlsplit(uri)
    loopback = parts.hostname in ("127.0.0.1", "localhost", "::1")
    if parts.scheme != "https" and not (
        parts.scheme == "http" and loopback and allow_http_loopback
    ):
        raise InvalidInput(f"{what} must be an https URL (http only for loopback): {uri!r}")
    if not parts.hostname or parts.fragment:
        raise InvalidInput(f"{what} must be an absolute URL without a fragment: {uri!r}")
    return uri


def create_client(
    store: Store,
    clock: Clock,
    actor: audit.Actor,
    *,
    name: str,
    redirect_uris: Sequence[str],
    organization_ids: Sequence[str] = (),
    post_logout_redirect_uris: Sequence[str] = (),
    initiate_login_uri: str | None = None,
    backchannel_logout_uri: str | None = None,
    webhook_url: str | None = None,
    token_endpoint_auth_method: str = "client_secret_basic",
    id_token_signed_response_alg: str = "RS256",
    jwks: dict[str, object] | None = None,
    front_channel_only: bool = False,
    seal: Callable[[str], str] | None = None,
) -> tuple[Client, str | None, str | None]:
    """Register a client; return it with its secret and webhook secret (each shown once)."""
    if not redirect_uris:
        raise InvalidInput("a client needs at least one redirect URI")
    if token_endpoint_auth_method not in AUTH_METHODS:
        raise InvalidInput(f"token endpoint auth method must be one of {', '.join(AUTH_METHODS)}")
    if id_token_signed_response_alg not in ID_TOKEN_ALGS:
        raise InvalidInput("ID token algorithm must be RS256 or ES256")
    if token_endpoint_auth_method == "private_key_jwt" and not jwks:
        raise InvalidInput("private_key_jwt needs the client's JWKS")
    for uri in redirect_uris:
        check_uri(uri, "redirect URI")
    for uri in post_logout_redirect_uris:
        check_uri(uri, "post-logout redirect URI")
    for optional_uri, what in (
        (initiate_login_uri, "initiate-login URI"),
        (backchannel_logout_uri, "back-channel logout URI"),
        (webhook_url, "webhook URL"),
    ):
        if optional_uri:
            check_uri(optional_uri, what)
    secret = None if token_endpoint_auth_method == "private_key_jwt" else new_secret("cs")
    webhook_secret = None
    if webhook_url:
        if seal is None:
            raise InvalidInput("a webhook URL needs the broker's encryption key")
        # Standard Webhooks form: whsec_ + standard base64 of the HMAC key.
        webhook_secret = webhooks.new_secret()
    now = clock.now()
    client = Client(
        id=new_id("cli"),
        name=name.strip() or "Exec",
        secret_hash=hash_token(secret) if secret else None,
        redirect_uris=tuple(redirect_uris),
        post_logout_redirect_uris=tuple(post_logout_redirect_uris),
        initiate_login_uri=initiate_login_uri,
        backchannel_logout_uri=backchannel_logout_uri,
        token_endpoint_auth_method=token_endpoint_auth_method,
        id_token_signed_response_alg=id_token_signed_response_alg,
        jwks=jwks,
        front_channel_only=front_channel_only,
        webhook_url=webhook_url,
        webhook_secret_enc=seal(webhook_secret) if (seal and webhook_secret) else None,
        organization_ids=tuple(organization_ids),
        created_at=now,
        updated_at=now,
    )
    with store.transaction():
        for org_id in organization_ids:
            store.organizations.get(org_id)
        store.clients.create(client)
        audit.record(
            store,
            actor,
            "client.created",
            now,
            target=client.id,
            name=client.name,
            redirect_uris=list(redirect_uris),
        )
    return client, secret, webhook_secret


def rotate_secret(
    store: Store, clock: Clock, actor: audit.Actor, client_id: str
) -> tuple[Client, str]:
    secret = new_secret("cs")
    now = clock.now()
    with store.transaction():
        client = store.clients.update(client_id, secret_hash=hash_token(secret), updated_at=now)
        audit.record(store, actor, "client.secret_rotated", now, target=client_id)
    return client, secret


def bind_organization(
    store: Store, clock: Clock, actor: audit.Actor, client_id: str, org_id: str
) -> Client:
    now = clock.now()
    with store.transaction():
        store.organizations.get(org_id)
        store.clients.get(client_id)
        store.clients.bind_organization(client_id, org_id)
        audit.record(
            store, actor, "client.organization_bound", now, organization_id=org_id, target=client_id
        )
        return replace(store.clients.get(client_id))
