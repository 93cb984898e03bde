"""The relying party's three calls: authorization URL, token exchange, userinfo.

- Authorization request, OIDC Core §3.1.2.1 with PKCE S256 (RFC 7636 §4.1-4.3): fresh
  `state`, `nonce` and code verifier per login; the caller stores them on the flow row.
- Token request, RFC 6749 §4.1.3 with client authentication per §2.3.1
  (client_secret_basic: id and secret form-urlencoded before Basic encoding;
  client_secret_post) or OIDC Core §9 private_key_jwt signed with the broker's own key
  (RFC 7523 §3: iss = sub = client_id, aud = token endpoint, short exp, unique jti).
- UserInfo, OIDC Core §5.3, with the access token as a bearer token (RFC 6750 §2.1);
  its `sub` must equal the ID token's (§5.3.4) or the answer is ignored as a whole.

It must never: follow a redirect from the token or userinfo endpoint (the secret or the
token would follow it), log a secret, code, verifier or token.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import quote_plus, urlencode

from joserfc import jwt
from joserfc.jwk import ECKey, RSAKey

from broker.errors import BrokerError
from broker.upstream_oidc.discovery import ProviderMetadata
from broker.upstream_oidc.http import SafeHttp

AuthMethod = Literal["client_secret_basic", "client_secret_post", "private_key_jwt"]
_JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


class TokenError(BrokerError):
    """The token endpoint refused the code or answered nonsense; `kind` is stable."""

    code = "upstream_token"

    def __init__(self, kind: str, public: str, detail: str | None = None) -> None:
        super().__init__(public, detail)
        self.kind = kind


@dataclass(frozen=True)
class RequestState:
    """What one authorization request needs remembered; stored on the flow row."""

    state: str
    nonce: str
    code_verifier: str

    @classmethod
    def fresh(cls) -> RequestState:
        # RFC 7636 §4.1: 43-128 unreserved characters; 32 random bytes → 43 base64url chars.
        return cls(
            state=secrets.token_urlsafe(32),
            nonce=secrets.token_urlsafe(32),
            code_verifier=secrets.token_urlsafe(32),
        )

    @property
    def code_challenge(self) -> str:
        digest = hashlib.sha256(self.code_verifier.encode("ascii")).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


@dataclass(frozen=True)
class ClientCredentials:
    client_id: str
    method: AuthMethod
    secret: str | None = None  # decrypted just before use, never stored in memory long
    signing_key: RSAKey | ECKey | None = None  # the broker's key, for private_key_jwt
    signing_alg: str = "RS256"


@dataclass(frozen=True)
class TokenResponse:
    id_token: str
    access_token: str | None
    token_type: str | None
    scope: str | None


def authorization_url(
    metadata: ProviderMetadata,
    client_id: str,
    redirect_uri: str,
    scopes: list[str],
    request: RequestState,
    extra: dict[str, str] | None = None,
) -> str:
    params = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": redirect_uri,
        "scope": " ".join(scopes),
        "state": request.state,
        "nonce": request.nonce,
        "code_challenge": request.code_challenge,
        "code_challenge_method": "S256",
        **(extra or {}),
    }
    endpoint = metadata.authorization_endpoint
    return endpoint + ("&" if "?" in endpoint else "?") + urlencode(params)


def states_equal(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


async def exchange_code(
    http: SafeHttp,
    metadata: ProviderMetadata,
    credentials: ClientCredentials,
    *,
    code: str,
    redirect_uri: str,
    code_verifier: str,
    ca_pem: str | None,
    now: float | None = None,
) -> TokenResponse:
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": redirect_uri,
        "code_verifier": code_verifier,
    }
    headers: dict[str, str] = {}
    if credentials.method == "client_secret_basic":
        pair = f"{_form(credentials.client_id)}:{_form(credentials.secret or '')}"
        headers["Authorization"] = "Basic " + base64.b64encode(pair.encode()).decode()
    elif credentials.method == "client_secret_post":
        form.update(client_id=credentials.client_id, client_secret=credentials.secret or "")
    else:
        form.update(
            client_id=credentials.client_id,
            client_assertion_type=_JWT_BEARER,
            client_assertion=client_assertion(credentials, metadata.token_endpoint, now),
        )
    response = await http.request(
        "POST", metadata.token_endpoint, ca_pem=ca_pem, headers=headers, form=form
    )
    if response.status != 200:
        error, description = _oauth_error(response.body)
        raise TokenError(
            "refused",
            "The identity provider refused to complete the sign-in.",
            f"token endpoint HTTP {response.status}: error={error!r} "
            f"error_description={description!r}",
        )
    body = response.json()
    id_token = body.get("id_token")
    if not isinstance(id_token, str) or not id_token:
        raise TokenError(
            "no_id_token",
            "The identity provider did not return an ID token.",
            f"token response keys: {sorted(body)}",
        )
    access_token = body.get("access_token")
    return TokenResponse(
        id_token=id_token,
        access_token=access_token if isinstance(access_token, str) else None,
        token_type=body.get("token_type") if isinstance(body.get("token_type"), str) else None,
        scope=body.get("scope") if isinstance(body.get("scope"), str) else None,
    )


def client_assertion(
    credentials: ClientCredentials, token_endpoint: str, now: float | None = None
) -> str:
    if credentials.signing_key is None:
        raise TokenError("config", "The connection has no key for private_key_jwt.")
    issued = int(time.time() if now is None else now)
    claims = {
        "iss": credentials.client_id,
        "sub": credentials.client_id,
        "aud": token_endpoint,
        "jti": secrets.token_urlsafe(16),
        "iat": issued,
        "exp": issued + 60,
    }
    header = {"alg": credentials.signing_alg, "kid": credentials.signing_key.kid, "typ": "JWT"}
    return jwt.encode(header, claims, credentials.signing_key)


async def fetch_userinfo(
    http: SafeHttp,
    metadata: ProviderMetadata,
    access_token: str,
    subject: str,
    ca_pem: str | None,
) -> dict[str, Any]:
    """UserInfo claims, or {} when the IdP has no endpoint. A `sub` that differs from the
    ID token's makes the whole answer unusable (OIDC Core §5.3.4): raise."""
    if not metadata.userinfo_endpoint:
        return {}
    response = await http.request(
        "GET",
        metadata.userinfo_endpoint,
        ca_pem=ca_pem,
        headers={"Authorization": f"Bearer {access_token}"},
    )
    if response.status != 200:
        raise TokenError(
            "userinfo",
            "The identity provider's user information could not be read.",
            f"userinfo HTTP {response.status}",
        )
    if "jwt" in response.headers.get("Content-Type", ""):
        raise TokenError(
            "userinfo", "Signed user information is not supported.", "userinfo returned a JWT"
        )
    claims = response.json()
    if claims.get("sub") != subject:
        raise TokenError(
            "userinfo_sub",
            "The identity provider's user information is about someone else.",
            f"userinfo sub {claims.get('sub')!r} differs from the ID token sub {subject!r}",
        )
    return claims


def _form(value: str) -> str:
    """RFC 6749 §2.3.1 / Appendix B: application/x-www-form-urlencoded."""
    return quote_plus(value, safe="")


def _oauth_error(body: bytes) -> tuple[str | None, str | None]:
    try:
        data = json.loads(body)
    except ValueError:
        return None, None
    if not isinstance(data, dict):
        return None, None
    error, description = data.get("error"), data.get("error_description")
    return (
        str(error)[:100] if error is not None else None,
        str(description)[:300] if description is not None else None,
    )
