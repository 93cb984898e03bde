"""Provider metadata (OpenID Connect Discovery 1.0 §3-4, RFC 8414 §2-3) and the JWKS.

The issuer is exactly the configured public URL, never the Host header (DESIGN §7).
The JWKS holds the current, next and recently retired keys (dex rotation): a `next`
key is published before it signs anything, so caches that refresh within the max-age
always know a kid before they meet it.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from broker.web.services import SERVICES

JWKS_MAX_AGE = 300  # well below any rotation interval; clients re-fetch on unknown kid


def metadata(issuer: str) -> dict[str, Any]:
    return {
        "issuer": issuer,
        "authorization_endpoint": f"{issuer}/oauth2/authorize",
        "token_endpoint": f"{issuer}/oauth2/token",
        "userinfo_endpoint": f"{issuer}/oauth2/userinfo",
        "jwks_uri": f"{issuer}/oauth2/jwks",
        "revocation_endpoint": f"{issuer}/oauth2/revoke",
        "end_session_endpoint": f"{issuer}/oauth2/logout",
        # `api`: client credentials (RFC 6749 §4.4) for the Exec API, not for sign-in.
        "scopes_supported": ["openid", "email", "profile", "offline_access", "api"],
        "response_types_supported": ["code", "id_token"],
        "response_modes_supported": ["query", "form_post"],
        "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256", "ES256"],
        "token_endpoint_auth_methods_supported": [
            "client_secret_basic",
            "client_secret_post",
            "private_key_jwt",
        ],
        "token_endpoint_auth_signing_alg_values_supported": ["RS256", "ES256", "PS256"],
        "revocation_endpoint_auth_methods_supported": [
            "client_secret_basic",
            "client_secret_post",
            "private_key_jwt",
        ],
        "code_challenge_methods_supported": ["S256"],
        "claims_supported": [
            "iss",
            "sub",
            "aud",
            "exp",
            "iat",
            "auth_time",
            "nonce",
            "acr",
            "amr",
            "sid",
            "email",
            "email_verified",
            "given_name",
            "family_name",
            "name",
            "org_id",
            "connection_id",
            "connection_type",
            "idp_id",
            "groups",
            "role",
            "seat",
            "directory_user_id",
        ],
        "prompt_values_supported": ["none", "login"],
        "claims_parameter_supported": False,
        "request_parameter_supported": False,
        "request_uri_parameter_supported": False,
        "authorization_response_iss_parameter_supported": True,
        "backchannel_logout_supported": True,
        "backchannel_logout_session_supported": True,
        "frontchannel_logout_supported": False,
        "initiate_login_uri_supported": True,
    }


async def openid_configuration(request: web.Request) -> web.Response:
    issuer = request.app[SERVICES].issuer
    return web.json_response(
        metadata(issuer),
        headers={"Cache-Control": "public, max-age=3600", "Access-Control-Allow-Origin": "*"},
    )


async def jwks(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    document = await services.run(services.keyring.public_jwks, services.clock.now())
    return web.json_response(
        document,
        headers={
            "Cache-Control": f"public, max-age={JWKS_MAX_AGE}",
            "Access-Control-Allow-Origin": "*",
        },
        content_type="application/jwk-set+json",
    )
