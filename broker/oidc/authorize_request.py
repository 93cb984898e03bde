"""Validating an authorization request (RFC 6749 §4.1.1, §3.1; RFC 7636 §4.3; OIDC Core
§3.1.2.1-2, §3.2.2.1 for response_type=id_token; OAuth 2.0 Form Post Response Mode).

Order matters: the client and the redirect URI are checked first and failures there
are never redirected (`redirect=False`); only then may errors go back to the client.
Scopes outside USER_SCOPES (such as `api`) are dropped from the request, not granted.
PKCE S256 is required for the code flow (plain and a missing method are refused);
ID-token-only responses are for front-channel-only clients, by form_post, with a nonce.
"""

from __future__ import annotations

from collections.abc import Mapping

from authlib.oauth2.rfc7636.challenge import CODE_CHALLENGE_PATTERN

from broker.core.flows import AuthorizeRequest
from broker.core.models import Client

KNOWN_PROMPTS = {"none", "login", "consent", "select_account"}
# What a user's tokens may carry (RFC 6749 §3.3: the server may grant fewer scopes than
# asked). Never `api`: that scope is for the client credentials grant only (the Exec
# API), and a user's access token must not open it.
USER_SCOPES = ("openid", "email", "profile", "offline_access")
MAX_PARAM = 2048


class AuthorizeError(Exception):
    def __init__(self, error: str, description: str, *, redirect: bool = True) -> None:
        super().__init__(description)
        self.error = error
        self.description = description
        self.redirect = redirect


def check_client(client: Client | None, redirect_uri: str | None) -> None:
    """RFC 6749 §4.1.2.1: unknown client or unregistered redirect URI → no redirect."""
    if client is None:
        raise AuthorizeError(
            "invalid_client",
            "This application is not registered with the sign-in service.",
            redirect=False,
        )
    if not redirect_uri or redirect_uri not in client.redirect_uris:
        raise AuthorizeError(
            "invalid_request",
            "The application sent an unregistered return "
            "address, so sign-in stopped here for your safety.",
            redirect=False,
        )


def user_scope(scope: str) -> str:
    """The requested scope cut down to USER_SCOPES, each once, in the order asked."""
    return " ".join(dict.fromkeys(s for s in scope.split() if s in USER_SCOPES))


def response_mode_for(params: Mapping[str, str]) -> str:
    """Where errors go once the redirect URI is trusted (form_post when asked or for ID
    tokens, query otherwise)."""
    mode = params.get("response_mode")
    if mode == "form_post" or (mode is None and params.get("response_type") == "id_token"):
        return "form_post"
    return "query"


def parse(params: Mapping[str, str], client: Client) -> AuthorizeRequest:
    """A validated AuthorizeRequest, or AuthorizeError (redirectable)."""
    if "request" in params:
        raise AuthorizeError("request_not_supported", "Request objects are not supported.")
    if "request_uri" in params:
        raise AuthorizeError("request_uri_not_supported", "request_uri is not supported.")
    if any(len(value) > MAX_PARAM for value in params.values()):
        raise AuthorizeError("invalid_request", "A parameter is too long.")
    response_type = params.get("response_type", "")
    if response_type == "id_token":
        if not client.front_channel_only:
            raise AuthorizeError(
                "unauthorized_client", "This client may only use the authorization code flow."
            )
    elif response_type != "code":
        raise AuthorizeError("unsupported_response_type", "response_type must be code.")
    mode = params.get("response_mode") or ("form_post" if response_type == "id_token" else "query")
    if mode not in ("query", "form_post") or (response_type == "id_token" and mode != "form_post"):
        raise AuthorizeError("invalid_request", f"response_mode {mode} is not supported here.")
    requested = params.get("scope", "").split()
    if "openid" not in requested:
        raise AuthorizeError("invalid_scope", "The openid scope is required.")
    scope = user_scope(" ".join(requested))
    challenge = params.get("code_challenge")
    method = params.get("code_challenge_method")
    nonce = params.get("nonce") or None
    if response_type == "code":
        if not challenge:
            raise AuthorizeError(
                "invalid_request",
                "PKCE is required: send a code_challenge with code_challenge_method=S256.",
            )
        if method != "S256":
            raise AuthorizeError("invalid_request", "code_challenge_method must be S256.")
        if not CODE_CHALLENGE_PATTERN.match(challenge):
            raise AuthorizeError("invalid_request", "code_challenge is malformed.")
    elif not nonce:
        raise AuthorizeError("invalid_request", "nonce is required for response_type=id_token.")
    prompt = tuple(params.get("prompt", "").split())
    if any(p not in KNOWN_PROMPTS for p in prompt) or ("none" in prompt and len(prompt) > 1):
        raise AuthorizeError("invalid_request", "prompt is not valid.")
    max_age = params.get("max_age")
    if max_age is not None and (not max_age.isdigit() or len(max_age) > 9):
        raise AuthorizeError("invalid_request", "max_age must be a number of seconds.")
    return AuthorizeRequest(
        client_id=client.id,
        redirect_uri=params["redirect_uri"],
        response_type=response_type,
        response_mode=mode,
        scope=scope,
        state=params.get("state"),
        nonce=nonce,
        code_challenge=challenge if response_type == "code" else None,
        code_challenge_method=method if response_type == "code" else None,
        prompt=prompt,
        max_age=int(max_age) if max_age is not None else None,
        login_hint=params.get("login_hint") or None,
        domain_hint=params.get("domain_hint") or None,
        organization=params.get("organization") or None,
        connection=params.get("connection") or None,
    )
