"""FakeOidcIdP: a small but real OpenID Connect provider on loopback, for RP tests.

Role: the customer's OIDC IdP that the broker's upstream_oidc edge signs in with.
It is an independent implementation (aiohttp + joserfc), never the broker's code,
so a bug in the broker cannot be mirrored by the fake. It implements:

- OpenID Connect Discovery 1.0 §4 (`/.well-known/openid-configuration`) and a JWKS.
- Authorization code flow, OIDC Core §3.1.2 (auto-login of `next_user`, `state`
  echoed, `nonce` into the ID token, `iss` in the response per RFC 9207), with
  errors by redirect per RFC 6749 §4.1.2.1 and no redirect for a bad client or
  redirect URI (§3.1.2.4).
- PKCE S256 (RFC 7636 §4.6), checked at the token endpoint; `plain` is refused.
- Token endpoint, RFC 6749 §4.1.3 / §5: client_secret_basic (§2.3.1, form-encoded
  credentials), client_secret_post, private_key_jwt (OIDC Core §9, RFC 7523 §3),
  single-use codes whose replay revokes the tokens they produced (§4.1.2).
- ID token per OIDC Core §2 and §3.1.3.6 (RS256, `kid`, `at_hash`); UserInfo §5.3
  with a bearer token (RFC 6750 §2.1); claims filtered by scope (§5.4).
- Key rotation: `rotate_key()` signs with a new kid from then on; with
  `publish=False` the new kid is not in the JWKS until `publish_keys()`.

Misbehaviour knobs (`misbehave`, see MISBEHAVIOURS) produce the faults a relying
party must catch. The fake never listens on anything but 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import base64
import datetime
import hashlib
import hmac
import ipaddress
import json
import re
import secrets
import ssl
import tempfile
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, cast
from urllib.parse import unquote_plus, urlencode

from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from joserfc import jws, jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet, RSAKey

MISBEHAVIOURS: dict[str, str] = {
    "authorize_error": "str: redirect back with this `error` (e.g. access_denied) and the state",
    "token_error": "str: the token endpoint answers 400 with this `error`",
    "discovery_issuer": "str: the discovery document claims this issuer",
    "id_token_iss": "str: ID token `iss`",
    "id_token_aud": "str | list[str]: ID token `aud`",
    "id_token_nonce": "str: ID token `nonce` (a wrong one)",
    "id_token_omit_nonce": "bool: no `nonce` in the ID token",
    "id_token_expired": "bool: `exp` (and `iat`) in the past",
    "id_token_bad_signature": "bool: signed by a key not in the JWKS (with the published kid)",
    "id_token_alg_none": "bool: unsigned ID token, alg=none",
    "id_token_minimal": "bool: only protocol claims; profile claims only from userinfo",
    "userinfo_sub": "str: UserInfo returns this `sub` (RP must compare, OIDC Core §5.3.4)",
    "hang": "bool: every endpoint accepts the connection and never answers",
}

# OIDC Core §5.4: which scope releases which standard claim. Claims not listed here
# (groups, custom attributes) are always released, as most IdPs do once configured.
_SCOPE_OF_CLAIM = {
    **dict.fromkeys(["email", "email_verified"], "email"),
    **dict.fromkeys(
        [
            "name",
            "given_name",
            "family_name",
            "middle_name",
            "nickname",
            "preferred_username",
            "profile",
            "picture",
            "website",
            "gender",
            "birthdate",
            "zoneinfo",
            "locale",
            "updated_at",
        ],
        "profile",
    ),
    **dict.fromkeys(["phone_number", "phone_number_verified"], "phone"),
    "address": "address",
}
_PROTOCOL_CLAIMS = {"iss", "sub", "aud", "exp", "iat", "auth_time", "nonce", "at_hash", "azp"}
_VERIFIER = re.compile(r"^[A-Za-z0-9\-._~]{43,128}$")  # RFC 7636 §4.1
_JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

DEFAULT_USER: dict[str, Any] = {
    "sub": "00u1fake0user",
    "email": "ada@example.com",
    "email_verified": True,
    "given_name": "Ada",
    "family_name": "Lovelace",
    "name": "Ada Lovelace",
    "groups": ["Engineering", "Everyone"],
}


@dataclass
class FakeClient:
    client_id: str
    client_secret: str | None
    redirect_uris: list[str]
    jwks: KeySet | None = None
    auth_method: str | None = None  # when set, the only method accepted


@dataclass
class _Grant:
    client_id: str
    redirect_uri: str
    scope: set[str]
    nonce: str | None
    code_challenge: str | None
    user: dict[str, Any]
    auth_time: int
    expires_at: float
    used: bool = False
    access_tokens: list[str] = field(default_factory=list)


@dataclass
class _AccessToken:
    user: dict[str, Any]
    scope: set[str]
    expires_at: float
    revoked: bool = False


class OAuthError(Exception):
    """An RFC 6749 §5.2 error answered as JSON by the token endpoint."""

    def __init__(self, error: str, description: str, status: int = 400) -> None:
        super().__init__(description)
        self.error, self.description, self.status = error, description, status


class FakeOidcIdP:
    """A loopback OpenID Provider whose users, keys and faults the test controls."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        *,
        tls: bool = False,
        require_pkce: bool = True,
        code_ttl: float = 120.0,
        token_ttl: float = 3600.0,
        id_token_ttl: float = 300.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if host != "127.0.0.1":
            raise ValueError("the fake IdP listens on 127.0.0.1 only")
        self.host = host
        self.require_pkce = require_pkce
        self.code_ttl, self.token_ttl, self.id_token_ttl = code_ttl, token_ttl, id_token_ttl
        self.clock = clock
        self.next_user: dict[str, Any] = dict(DEFAULT_USER)
        self.misbehave: dict[str, Any] = {}
        self.clients: dict[str, FakeClient] = {}
        # Recorded requests, for assertions about what the relying party sent.
        self.authorize_requests: list[dict[str, str]] = []
        self.token_requests: list[dict[str, Any]] = []
        self.userinfo_requests: list[dict[str, str]] = []
        self._keys: list[RSAKey] = []  # published, newest last
        self._pending: list[RSAKey] = []  # signing may use them, the JWKS does not list them
        self._signing = self._new_key()
        self._keys.append(self._signing)
        self._grants: dict[str, _Grant] = {}
        self._tokens: dict[str, _AccessToken] = {}
        self._seen_jti: set[str] = set()
        self._port = 0
        self._runner: web.AppRunner | None = None
        self._stopping = asyncio.Event()
        self._tls = _LoopbackTls.generate() if tls else None

    # -- life cycle -----------------------------------------------------------

    @property
    def issuer(self) -> str:
        if not self._port:
            raise RuntimeError("IdP not started")
        scheme = "https" if self._tls else "http"
        return f"{scheme}://{self.host}:{self._port}"

    @property
    def ca_pem(self) -> bytes:
        """PEM of the CA that issued the TLS certificate (tls=True only)."""
        if self._tls is None:
            raise RuntimeError("started without tls")
        return self._tls.ca_pem

    def client_ssl_context(self) -> ssl.SSLContext:
        """An SSL context for clients that trusts this IdP's certificate (tls=True only)."""
        return ssl.create_default_context(cadata=self.ca_pem.decode())

    async def start(self) -> FakeOidcIdP:
        """Listen on a random port; after stop(), start() again reuses the same port."""
        self._stopping = asyncio.Event()
        app = web.Application(middlewares=[self._hang_middleware])
        app.router.add_get("/.well-known/openid-configuration", self._discovery)
        app.router.add_get("/jwks", self._jwks)
        app.router.add_route("*", "/authorize", self._authorize)
        app.router.add_post("/token", self._token)
        app.router.add_route("*", "/userinfo", self._userinfo)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        ssl_context = self._tls.server_context() if self._tls else None
        site = web.TCPSite(self._runner, self.host, self._port, ssl_context=ssl_context)
        await site.start()
        self._port = self._runner.addresses[0][1]
        return self

    async def stop(self) -> None:
        """Close the listener: from now on connections are refused (the IdP is "down")."""
        self._stopping.set()  # releases hanging handlers
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeOidcIdP:
        return await self.start()

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    # -- configuration --------------------------------------------------------

    def register_client(
        self,
        client_id: str,
        client_secret: str | None = None,
        redirect_uris: list[str] | tuple[str, ...] = (),
        *,
        jwks: Mapping[str, Any] | None = None,
        auth_method: str | None = None,
    ) -> FakeClient:
        """Register a relying party. `jwks` (public keys) enables private_key_jwt."""
        client = FakeClient(
            client_id,
            client_secret,
            list(redirect_uris),
            KeySet.import_key_set(cast(Any, jwks)) if jwks else None,
            auth_method,
        )
        self.clients[client_id] = client
        return client

    @property
    def signing_kid(self) -> str:
        return str(self._signing.kid)

    def rotate_key(self, *, publish: bool = True, keep_old: bool = True) -> str:
        """Sign with a new key from now on; return its kid.

        publish=False models an IdP whose JWKS lags behind its signer (or a relying
        party's cached JWKS): the kid is unknown until publish_keys()."""
        key = self._new_key()
        if not keep_old:
            self._keys = []
        (self._keys if publish else self._pending).append(key)
        self._signing = key
        return str(key.kid)

    def publish_keys(self) -> None:
        self._keys.extend(self._pending)
        self._pending.clear()

    def jwks(self) -> dict[str, Any]:
        return {"keys": [key.as_dict(private=False) for key in self._keys]}

    def _new_key(self) -> RSAKey:
        kid = "fake-" + secrets.token_hex(6)
        return RSAKey.generate_key(2048, parameters={"kid": kid, "use": "sig", "alg": "RS256"})

    # -- endpoints ------------------------------------------------------------

    @web.middleware
    async def _hang_middleware(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        self._check_knobs()
        if self.misbehave.get("hang"):
            await self._stopping.wait()
            raise web.HTTPServiceUnavailable()
        return await handler(request)

    def _check_knobs(self) -> None:
        unknown = set(self.misbehave) - set(MISBEHAVIOURS)
        if unknown:  # a typo in a test must not silently test nothing
            raise web.HTTPInternalServerError(text=f"unknown misbehave keys: {sorted(unknown)}")

    async def _discovery(self, request: web.Request) -> web.Response:
        iss = self.issuer
        return web.json_response(
            {
                "issuer": self.misbehave.get("discovery_issuer", iss),
                "authorization_endpoint": f"{iss}/authorize",
                "token_endpoint": f"{iss}/token",
                "userinfo_endpoint": f"{iss}/userinfo",
                "jwks_uri": f"{iss}/jwks",
                "response_types_supported": ["code"],
                "response_modes_supported": ["query"],
                "grant_types_supported": ["authorization_code"],
                "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "scopes_supported": ["openid", "email", "profile", "groups"],
                "token_endpoint_auth_methods_supported": [
                    "client_secret_basic",
                    "client_secret_post",
                    "private_key_jwt",
                ],
                "token_endpoint_auth_signing_alg_values_supported": ["RS256", "PS256", "ES256"],
                "code_challenge_methods_supported": ["S256"],
                "claims_supported": sorted({*_PROTOCOL_CLAIMS, *self.next_user}),
                "authorization_response_iss_parameter_supported": True,
            }
        )

    async def _jwks(self, request: web.Request) -> web.Response:
        return web.json_response(self.jwks(), headers={"Cache-Control": "max-age=60"})

    async def _authorize(self, request: web.Request) -> web.StreamResponse:
        params: dict[str, str] = dict(request.query)
        if request.method == "POST":  # OIDC Core §3.1.2.1 allows both
            params.update({k: str(v) for k, v in (await request.post()).items()})
        self.authorize_requests.append(params)
        client = self.clients.get(params.get("client_id", ""))
        redirect_uri = params.get("redirect_uri", "")
        if client is None:
            raise web.HTTPBadRequest(text="unknown client_id")
        if redirect_uri not in client.redirect_uris:  # exact match, never a redirect
            raise web.HTTPBadRequest(text="redirect_uri is not registered for this client")

        def fail(error: str, description: str) -> web.HTTPFound:
            return self._redirect(redirect_uri, params, error=error, error_description=description)

        scope = set(params.get("scope", "").split())
        challenge = params.get("code_challenge")
        method = params.get("code_challenge_method", "plain" if challenge else None)
        if params.get("response_type") != "code":
            raise fail("unsupported_response_type", "only response_type=code")
        if "openid" not in scope:
            raise fail("invalid_scope", "scope must contain openid")
        if challenge is None and self.require_pkce:
            raise fail("invalid_request", "code_challenge required")
        if challenge is not None and method != "S256":
            raise fail("invalid_request", "code_challenge_method must be S256")
        if challenge is not None and not re.fullmatch(r"[A-Za-z0-9_-]{43}", challenge):
            raise fail("invalid_request", "code_challenge is not a base64url SHA-256")
        if "authorize_error" in self.misbehave:
            raise fail(str(self.misbehave["authorize_error"]), "the user was not let in")

        code = secrets.token_urlsafe(32)
        now = self.clock()
        self._grants[code] = _Grant(
            client_id=client.client_id,
            redirect_uri=redirect_uri,
            scope=scope,
            nonce=params.get("nonce"),
            code_challenge=challenge,
            user=dict(self.next_user),
            auth_time=int(now),
            expires_at=now + self.code_ttl,
        )
        raise self._redirect(redirect_uri, params, code=code)

    def _redirect(self, redirect_uri: str, params: dict[str, str], **values: str) -> web.HTTPFound:
        if "state" in params:
            values["state"] = params["state"]
        values["iss"] = self.issuer  # RFC 9207
        sep = "&" if "?" in redirect_uri else "?"
        return web.HTTPFound(redirect_uri + sep + urlencode(values))

    async def _token(self, request: web.Request) -> web.Response:
        form = {k: str(v) for k, v in (await request.post()).items()}
        record: dict[str, Any] = {"form": form, "auth_method": None}
        self.token_requests.append(record)
        try:
            client, record["auth_method"] = self._authenticate_client(request, form)
            body = self._exchange_code(client, form)
        except OAuthError as exc:
            headers = {"Cache-Control": "no-store"}
            if exc.status == 401:
                headers["WWW-Authenticate"] = 'Basic realm="fake-idp"'
            return web.json_response(
                {"error": exc.error, "error_description": exc.description},
                status=exc.status,
                headers=headers,
            )
        return web.json_response(body, headers={"Cache-Control": "no-store", "Pragma": "no-cache"})

    def _authenticate_client(
        self, request: web.Request, form: dict[str, str]
    ) -> tuple[FakeClient, str]:
        header = request.headers.get("Authorization", "")
        used = [
            name
            for name, present in (
                ("client_secret_basic", header.lower().startswith("basic ")),
                ("client_secret_post", "client_secret" in form),
                ("private_key_jwt", "client_assertion" in form),
            )
            if present
        ]
        if len(used) > 1:  # RFC 6749 §2.3: MUST NOT use more than one method
            raise OAuthError("invalid_request", f"several client auth methods: {used}")
        method = used[0] if used else "none"
        if method == "client_secret_basic":
            client_id, secret = _parse_basic(header)
        elif method == "private_key_jwt":
            client_id, secret = self._assertion_subject(form), None
        else:
            client_id, secret = form.get("client_id", ""), form.get("client_secret")
        client = self.clients.get(client_id)
        if client is None:
            raise OAuthError("invalid_client", "unknown client", 401)
        if "client_id" in form and form["client_id"] != client_id:
            raise OAuthError("invalid_request", "client_id differs from the authenticated one")
        if client.auth_method and client.auth_method != method:
            raise OAuthError("invalid_client", f"client must use {client.auth_method}", 401)
        if method == "private_key_jwt":
            self._verify_assertion(client, form)
        elif client.client_secret is not None or client.jwks is not None:
            expected = (client.client_secret or "").encode()
            if secret is None or not hmac.compare_digest(secret.encode(), expected):
                raise OAuthError("invalid_client", "client authentication failed", 401)
        return client, method

    def _assertion_subject(self, form: dict[str, str]) -> str:
        if form.get("client_assertion_type") != _JWT_BEARER:
            raise OAuthError("invalid_client", "client_assertion_type must be jwt-bearer", 401)
        try:
            payload = jws.extract_compact(form["client_assertion"].encode()).payload
            claims = json.loads(payload)
        except (JoseError, ValueError) as exc:
            raise OAuthError("invalid_client", f"malformed client_assertion: {exc}", 401) from exc
        return str(claims.get("sub", ""))

    def _verify_assertion(self, client: FakeClient, form: dict[str, str]) -> None:
        """RFC 7523 §3: iss = sub = client_id, aud = token endpoint, exp, single-use jti."""
        if client.jwks is None:
            raise OAuthError("invalid_client", "client has no registered keys", 401)
        try:
            token = jwt.decode(
                form["client_assertion"], client.jwks, algorithms=["RS256", "PS256", "ES256"]
            )
        except (JoseError, ValueError) as exc:
            raise OAuthError("invalid_client", f"client_assertion signature: {exc}", 401) from exc
        claims = token.claims
        aud = claims.get("aud")
        audiences = aud if isinstance(aud, list) else [aud]
        problems = [
            claims.get("iss") != client.client_id and "iss",
            claims.get("sub") != client.client_id and "sub",
            not {f"{self.issuer}/token", self.issuer} & set(audiences) and "aud",
            not (isinstance(claims.get("exp"), int | float) and claims["exp"] > self.clock())
            and "exp",
            (not claims.get("jti") or claims["jti"] in self._seen_jti) and "jti",
        ]
        bad = [p for p in problems if p]
        if bad:
            raise OAuthError("invalid_client", f"client_assertion claims invalid: {bad}", 401)
        self._seen_jti.add(str(claims["jti"]))

    def _exchange_code(self, client: FakeClient, form: dict[str, str]) -> dict[str, Any]:
        if "token_error" in self.misbehave:
            raise OAuthError(str(self.misbehave["token_error"]), "misbehaving on purpose")
        if form.get("grant_type") != "authorization_code":
            raise OAuthError("unsupported_grant_type", "only authorization_code")
        grant = self._grants.get(form.get("code", ""))
        if grant is None:
            raise OAuthError("invalid_grant", "unknown code")
        if grant.used:  # RFC 6749 §4.1.2: a replayed code revokes what it produced
            for access_token in grant.access_tokens:
                self._tokens[access_token].revoked = True
            raise OAuthError("invalid_grant", "code already used")
        grant.used = True
        now = self.clock()
        if now >= grant.expires_at:
            raise OAuthError("invalid_grant", "code expired")
        if grant.client_id != client.client_id:
            raise OAuthError("invalid_grant", "code was issued to another client")
        if form.get("redirect_uri") != grant.redirect_uri:
            raise OAuthError("invalid_grant", "redirect_uri does not match the authorize request")
        _check_pkce(grant.code_challenge, form.get("code_verifier"))
        access_token = secrets.token_urlsafe(32)
        self._tokens[access_token] = _AccessToken(grant.user, grant.scope, now + self.token_ttl)
        grant.access_tokens.append(access_token)
        return {
            "access_token": access_token,
            "token_type": "Bearer",
            "expires_in": int(self.token_ttl),
            "scope": " ".join(sorted(grant.scope)),
            "id_token": self._id_token(grant, client, access_token, now),
        }

    def _id_token(self, grant: _Grant, client: FakeClient, access_token: str, now: float) -> str:
        m = self.misbehave
        iat = int(now) - (3600 if m.get("id_token_expired") else 0)
        claims: dict[str, Any] = {
            "iss": m.get("id_token_iss", self.issuer),
            "sub": grant.user["sub"],
            "aud": m.get("id_token_aud", client.client_id),
            "iat": iat,
            "exp": iat + int(self.id_token_ttl),
            "auth_time": grant.auth_time,
            "at_hash": _half_hash(access_token),
        }
        nonce = m.get("id_token_nonce", grant.nonce)
        if nonce is not None and not m.get("id_token_omit_nonce"):
            claims["nonce"] = nonce
        if not m.get("id_token_minimal"):
            claims.update(_released(grant.user, grant.scope))
        header: dict[str, Any] = {"alg": "RS256", "kid": self.signing_kid, "typ": "JWT"}
        if m.get("id_token_alg_none"):
            return _unsigned_jwt(claims)
        key = self._signing
        if m.get("id_token_bad_signature"):
            key = RSAKey.generate_key(2048, parameters={"kid": self.signing_kid})
        return jwt.encode(header, claims, key)

    async def _userinfo(self, request: web.Request) -> web.Response:
        header = request.headers.get("Authorization", "")
        self.userinfo_requests.append({"authorization": header})
        scheme, _, value = header.partition(" ")
        token = self._tokens.get(value.strip()) if scheme.lower() == "bearer" else None
        if token is None or token.revoked or self.clock() >= token.expires_at:
            return web.json_response(
                {"error": "invalid_token"},
                status=401,
                headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
            )
        claims = _released(token.user, token.scope)
        claims["sub"] = self.misbehave.get("userinfo_sub", token.user["sub"])
        return web.json_response(claims)


def _released(user: dict[str, Any], scope: set[str]) -> dict[str, Any]:
    """The user's claims that the granted scopes release (OIDC Core §5.4)."""
    return {
        name: value
        for name, value in user.items()
        if name not in _PROTOCOL_CLAIMS
        and (name not in _SCOPE_OF_CLAIM or _SCOPE_OF_CLAIM[name] in scope)
    }


def _check_pkce(challenge: str | None, verifier: str | None) -> None:
    """RFC 7636 §4.6, S256 only. A verifier without a challenge is refused too
    (RFC 9700 §2.1.1: detect PKCE downgrade)."""
    if challenge is None:
        if verifier is not None:
            raise OAuthError("invalid_grant", "code_verifier sent but no code_challenge was")
        return
    if verifier is None or not _VERIFIER.match(verifier):
        raise OAuthError("invalid_grant", "code_verifier missing or malformed")
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    if not hmac.compare_digest(_b64url(digest), challenge):
        raise OAuthError("invalid_grant", "code_verifier does not match code_challenge")


def _parse_basic(header: str) -> tuple[str, str]:
    """RFC 6749 §2.3.1: id and secret are form-urlencoded before Basic encoding."""
    try:
        decoded = base64.b64decode(header.split(" ", 1)[1].strip(), validate=True).decode()
    except (ValueError, IndexError) as exc:
        raise OAuthError("invalid_client", "malformed Basic credentials", 401) from exc
    client_id, sep, secret = decoded.partition(":")
    if not sep:
        raise OAuthError("invalid_client", "malformed Basic credentials", 401)
    return unquote_plus(client_id), unquote_plus(secret)


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _half_hash(access_token: str) -> str:
    """OIDC Core §3.1.3.6 at_hash for RS256: left half of SHA-256, base64url."""
    digest = hashlib.sha256(access_token.encode("ascii")).digest()
    return _b64url(digest[: len(digest) // 2])


def _unsigned_jwt(claims: dict[str, Any]) -> str:
    header = _b64url(json.dumps({"alg": "none", "typ": "JWT"}).encode())
    return f"{header}.{_b64url(json.dumps(claims).encode())}."


@dataclass(frozen=True)
class _LoopbackTls:
    """A throw-away CA and a certificate for 127.0.0.1 signed by it, made at start."""

    ca_pem: bytes
    cert_pem: bytes
    key_pem: bytes

    @classmethod
    def generate(cls) -> _LoopbackTls:
        now = datetime.datetime.now(datetime.UTC)
        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Fake IdP test CA")])
        ca = (
            x509.CertificateBuilder()
            .subject_name(ca_name)
            .issuer_name(ca_name)
            .public_key(ca_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(False, False, False, False, False, True, True, False, False),
                critical=True,
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
            .sign(ca_key, hashes.SHA256())
        )
        key = ec.generate_private_key(ec.SECP256R1())
        ski = ca.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
            .issuer_name(ca_name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(
                x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                critical=False,
            )
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), False
            )
            .add_extension(
                x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
            )
            .sign(ca_key, hashes.SHA256())
        )
        return cls(
            ca_pem=ca.public_bytes(serialization.Encoding.PEM),
            cert_pem=cert.public_bytes(serialization.Encoding.PEM),
            key_pem=key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            ),
        )

    def server_context(self) -> ssl.SSLContext:
        # ssl loads a certificate chain from files only.
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        with tempfile.TemporaryDirectory() as tmp:
            cert_path, key_path = f"{tmp}/cert.pem", f"{tmp}/key.pem"
            with open(cert_path, "wb") as f:
                f.write(self.cert_pem)
            with open(key_path, "wb") as f:
                f.write(self.key_pem)
            context.load_cert_chain(cert_path, key_path)
        return context
