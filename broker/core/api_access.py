"""Who may call the Exec-facing API, and which organizations each caller sees.

Exec authenticates as the OIDC client it is registered as (DESIGN §2), in one of two ways:
- HTTP Basic with client_id and client secret (RFC 7617), checked here in constant time
  against the stored SHA-256 (`clients.secret_hash`);
- a bearer access token in the RFC 9068 JWT profile issued by our own token endpoint to
  that client (client credentials grant, `api` scope). The edge verifies the signature
  with the broker's keys; this module decides whether the verified claims grant access.

A client sees only the organizations it is bound to (`client_organizations`); anything
else answers exactly as if it did not exist (404, never 403), so that one client cannot
probe another's tenants. This module must never log or return a secret.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from broker.core.models import Client
from broker.core.ports import Store
from broker.errors import BrokerError, NotFound
from broker.ids import hash_token, tokens_equal

API_SCOPE = "api"
API_AUDIENCE_PATH = "/api/v1"

# Compared against when the client is unknown or has no secret, so that the answer takes
# as long for an unknown client as for a wrong secret.
_DUMMY_HASH = hash_token("brk_cs_not-a-real-client-secret")


class ApiAuthError(BrokerError):
    """The caller did not prove it is a registered client allowed to use the API."""

    code = "unauthorized"


@dataclass(frozen=True)
class ApiCaller:
    client_id: str
    organization_ids: frozenset[str]
    method: Literal["basic", "bearer"]

    def sees(self, organization_id: str | None) -> bool:
        return organization_id is not None and organization_id in self.organization_ids


def authenticate_basic(store: Store, client_id: str, secret: str) -> ApiCaller:
    """Check client_id/secret in constant time; raise ApiAuthError on any mismatch."""
    client: Client | None
    try:
        client = store.clients.get(client_id)
    except NotFound:
        client = None
    stored = client.secret_hash if client is not None and client.secret_hash else _DUMMY_HASH
    matches = tokens_equal(hash_token(secret), stored)
    if client is None or not client.secret_hash or not matches:
        raise ApiAuthError(
            "invalid client credentials",
            f"basic authentication failed for client {client_id[:64]!r}",
        )
    return ApiCaller(client.id, frozenset(client.organization_ids), "basic")


def audience(issuer: str) -> str:
    """The resource indicator (RFC 8707) an API access token must be issued for."""
    return issuer.rstrip("/") + API_AUDIENCE_PATH


def authorize_bearer(store: Store, claims: Mapping[str, Any], issuer: str, now: float) -> ApiCaller:
    """Decide on the claims of an access token whose signature the edge has verified.

    RFC 9068 §4: iss must be ours, aud must name this API, exp in the future; the token
    must carry the `api` scope and name the client it was issued to.
    """

    def refuse(detail: str) -> ApiAuthError:
        return ApiAuthError("invalid access token", detail)

    if claims.get("iss") != issuer:
        raise refuse(f"iss {claims.get('iss')!r} is not {issuer!r}")
    aud = claims.get("aud")
    auds = [aud] if isinstance(aud, str) else list(aud) if isinstance(aud, list) else []
    if audience(issuer) not in auds:
        raise refuse(f"aud {aud!r} does not name {audience(issuer)!r}")
    exp = claims.get("exp")
    if not isinstance(exp, (int, float)) or isinstance(exp, bool) or exp <= now:
        raise refuse("token expired or without exp")
    scope = claims.get("scope")
    if not isinstance(scope, str) or API_SCOPE not in scope.split():
        raise refuse(f"scope {scope!r} lacks {API_SCOPE!r}")
    client_id = claims.get("client_id")
    if not isinstance(client_id, str) or not client_id:
        raise refuse("no client_id claim")
    try:
        client = store.clients.get(client_id)
    except NotFound:
        raise refuse(f"client {client_id[:64]!r} no longer exists") from None
    return ApiCaller(client.id, frozenset(client.organization_ids), "bearer")


def require_organization(caller: ApiCaller, organization_id: str) -> str:
    """The organization id if the caller may see it; NotFound otherwise (no probing)."""
    if not caller.sees(organization_id):
        raise NotFound(
            "organization not found",
            f"client {caller.client_id} is not bound to {organization_id[:64]!r}",
        )
    return organization_id
