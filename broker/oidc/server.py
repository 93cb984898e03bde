"""Authlib's authorization server, wired to the core: token endpoint grants, client
authentication and revocation (RFC 6749 §3.2.1, §4.1.3, §4.4, §5, §6; RFC 7636 §4.6;
RFC 7523 §2.2 / OIDC Core §9 private_key_jwt; RFC 7009; RFC 9068 access tokens).

Authlib does the protocol work (client authentication, PKCE verification, grant
validation, RFC error bodies); our subclasses only answer its questions from the core
(redeem a code once, rotate a refresh token, refuse both once the session has ended or
its user was deprovisioned) and mint tokens with joserfc. A user's tokens carry only
USER_SCOPES, never `api`. Every call
runs on the store thread (Services.run): Authlib is synchronous.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from authlib.oauth2.rfc6749 import (
    AuthorizationServer,
    ClientMixin,
    InvalidGrantError,
    InvalidScopeError,
)
from authlib.oauth2.rfc6749.grants import (
    AuthorizationCodeGrant,
    ClientCredentialsGrant,
    RefreshTokenGrant,
)
from authlib.oauth2.rfc7009 import RevocationEndpoint
from authlib.oauth2.rfc7523 import JWTBearerClientAssertion
from authlib.oauth2.rfc7636 import CodeChallenge
from joserfc.jwk import KeySet

from broker.core import api_access, audit, grants
from broker.core.models import Client
from broker.core.ports import AuthCode, RefreshTokenRecord
from broker.errors import NotFound
from broker.ids import hash_token, new_token, tokens_equal
from broker.oidc import tokens
from broker.oidc.authorize_request import USER_SCOPES, user_scope
from broker.web.services import Services

AUTH_METHODS = ["client_secret_basic", "client_secret_post", "private_key_jwt"]
SCOPES = list(USER_SCOPES)


class ClientModel(ClientMixin):  # type: ignore[misc]
    """Authlib's view of a registered client; the method is exactly the registered one."""

    def __init__(self, client: Client) -> None:
        self.client = client

    def get_client_id(self) -> str:
        return self.client.id

    def get_default_redirect_uri(self) -> str | None:
        return None  # redirect_uri is always required and matched exactly

    def get_allowed_scope(self, scope: str) -> str:
        return " ".join(s for s in (scope or "").split() if s in SCOPES)

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return redirect_uri in self.client.redirect_uris

    def check_client_secret(self, client_secret: str) -> bool:
        stored = self.client.secret_hash
        return stored is not None and tokens_equal(hash_token(client_secret), stored)

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        return method == self.client.token_endpoint_auth_method

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code" or (
            response_type == "id_token" and self.client.front_channel_only
        )

    def check_grant_type(self, grant_type: str) -> bool:
        if grant_type == "client_credentials":  # RFC 6749 §4.4: confidential clients only
            return self.client.secret_hash is not None or (
                self.client.token_endpoint_auth_method == PrivateKeyJWT.CLIENT_AUTH_METHOD
                and bool(self.client.jwks)
            )
        return grant_type in ("authorization_code", "refresh_token")


@dataclass(frozen=True)
class Grantee:
    """The 'user' Authlib passes from a grant to token generation."""

    grant_id: str
    session_id: str
    claims: dict[str, Any]
    scope: str
    auth_time: float
    nonce: str | None = None


@dataclass
class Issued:
    grant_id: str
    session_id: str
    claims: dict[str, Any]
    scope: str
    auth_time: float
    refresh_token: str | None


class CodeRecord:
    def __init__(self, code: AuthCode) -> None:
        self.code = code
        self.code_challenge = code.code_challenge
        self.code_challenge_method = code.code_challenge_method

    def get_redirect_uri(self) -> str:
        return self.code.redirect_uri

    def get_scope(self) -> str:
        return self.code.scope


class RefreshRecord:
    def __init__(self, record: RefreshTokenRecord) -> None:
        self.record = record

    def check_client(self, client: ClientModel) -> bool:
        return self.record.client_id == client.get_client_id()

    def get_scope(self) -> str:
        return self.record.scope


class AccessRecord:
    """A verified access token of ours, by its claims (no row is kept for it)."""

    def __init__(self, claims: dict[str, Any]) -> None:
        self.claims = claims

    def check_client(self, client: ClientModel) -> bool:
        return self.claims.get("client_id") == client.get_client_id()


class S256Only(CodeChallenge):  # type: ignore[misc]
    """PKCE with S256 only (OAuth 2.0 Security BCP §2.1.1: plain is refused)."""

    SUPPORTED_CODE_CHALLENGE_METHOD = ["S256"]


class _Minting:
    """Token generation for both grants: joserfc-signed ID and access tokens."""

    server: ProviderServer
    request: Any

    def generate_token(
        self,
        user: Grantee | None = None,
        scope: str | None = None,
        grant_type: str | None = None,
        expires_in: int | None = None,
        include_refresh_token: bool = True,
    ) -> dict[str, Any]:
        assert user is not None
        return self.server.mint(self.request, user, include_refresh_token)


class CodeGrant(_Minting, AuthorizationCodeGrant):  # type: ignore[misc]
    TOKEN_ENDPOINT_AUTH_METHODS = AUTH_METHODS

    def query_authorization_code(self, code: str, client: ClientModel) -> CodeRecord | None:
        record = grants.peek_code(
            self.server.store, self.server.clock, client.get_client_id(), code, self.request.actor
        )
        self.request.presented = ("code", code)
        return CodeRecord(record) if record is not None else None

    def delete_authorization_code(self, authorization_code: CodeRecord) -> None:
        """Nothing to do: save_token consumed it atomically with recording the tokens."""

    def authenticate_user(self, authorization_code: CodeRecord) -> Grantee:
        code = authorization_code.code
        return Grantee(
            code.grant_id,
            code.session_id,
            code.claims,
            user_scope(code.scope),
            code.auth_time,
            code.nonce,
        )

    def save_authorization_code(self, code: str, request: Any) -> None:
        # Authlib calls this only from its own authorization endpoint, which the broker
        # does not mount: codes are issued by broker.core.grants.issue_code after login.
        raise RuntimeError("the broker issues codes in broker.core.grants, not through Authlib")


class RefreshGrant(_Minting, RefreshTokenGrant):  # type: ignore[misc]
    TOKEN_ENDPOINT_AUTH_METHODS = AUTH_METHODS
    INCLUDE_NEW_REFRESH_TOKEN = True

    def authenticate_refresh_token(self, refresh_token: str) -> RefreshRecord | None:
        record = grants.peek_refresh(
            self.server.store,
            self.server.clock,
            self.request.client.get_client_id(),
            refresh_token,
            self.request.actor,
        )
        self.request.presented = ("refresh", refresh_token)
        return RefreshRecord(record) if record is not None else None

    def authenticate_user(self, refresh_token: RefreshRecord) -> Grantee:
        r = refresh_token.record
        return Grantee(r.family_id, r.session_id, r.claims, user_scope(r.scope), r.auth_time)

    def revoke_old_credential(self, refresh_token: RefreshRecord) -> None:
        """Nothing to do: save_token rotated it atomically with recording the new tokens."""


class ApiClientGrant(ClientCredentialsGrant):  # type: ignore[misc]
    """Client credentials (RFC 6749 §4.4) for Exec's server-to-server API calls: scope
    `api` only, an RFC 9068 access token for the API audience, no refresh or ID token,
    nothing stored (the token is self-contained and short-lived)."""

    TOKEN_ENDPOINT_AUTH_METHODS = AUTH_METHODS
    server: ProviderServer

    def validate_requested_scope(self) -> None:
        scope = self.request.payload.scope or ""
        if set(scope.split()) != {api_access.API_SCOPE}:
            raise InvalidScopeError(f"scope must be {api_access.API_SCOPE!r} for this grant")

    def generate_token(
        self,
        user: Any = None,
        scope: str | None = None,
        grant_type: str | None = None,
        expires_in: int | None = None,
        include_refresh_token: bool = False,
    ) -> dict[str, Any]:
        server = self.server
        client: Client = self.request.client.client
        ttl = int(server.services.settings.get("oidc.access_token_ttl_seconds"))
        token = tokens.api_access_token(
            server.services.keyring,
            issuer=server.issuer,
            audience=api_access.audience(server.issuer),
            client_id=client.id,
            alg=client.id_token_signed_response_alg,
            scope=api_access.API_SCOPE,
            ttl=ttl,
            now=server.clock.now(),
        )
        return {
            "token_type": "Bearer",
            "access_token": token,
            "expires_in": ttl,
            "scope": api_access.API_SCOPE,
        }

    def save_token(self, token: dict[str, Any]) -> None:
        """Nothing to record: see the class docstring."""


class PrivateKeyJWT(JWTBearerClientAssertion):  # type: ignore[misc]
    """private_key_jwt (OIDC Core §9): a JWT signed with a key from the client's JWKS,
    audience our issuer or token endpoint, used once."""

    CLIENT_AUTH_METHOD = "private_key_jwt"

    def __init__(self, server: ProviderServer) -> None:
        super().__init__(validate_jti=True, leeway=60)
        self.server = server

    def get_audiences(self) -> list[str]:
        issuer = self.server.services.issuer
        return [issuer, issuer + "/oauth2/token"]

    def validate_jti(self, claims: Any, jti: str) -> bool:
        client_id = str(claims["sub"])
        expires = float(claims.get("exp") or self.server.clock.now() + 600)
        store = self.server.store
        with store.transaction():
            return store.grants.remember_assertion(
                hash_token(f"{client_id}\x00{jti}"), client_id, expires
            )

    def resolve_client_public_key(self, client: ClientModel) -> KeySet:
        return KeySet.import_key_set(client.client.jwks or {"keys": []})  # type: ignore[arg-type]


class Revocation(RevocationEndpoint):  # type: ignore[misc]
    CLIENT_AUTH_METHODS = AUTH_METHODS

    def query_token(self, token_string: str, token_type_hint: str | None) -> Any:
        server: ProviderServer = self.server
        record = server.store.grants.find_refresh(hash_token(token_string))
        if record is not None:
            return RefreshRecord(record)
        claims = tokens.verify(
            server.services.keyring,
            token_string,
            issuer=server.issuer,
            typ="at+jwt",
            check_exp=False,
        )
        return AccessRecord(claims) if claims and claims.get("jti") else None

    def revoke_token(self, token: Any, request: Any) -> None:
        server: ProviderServer = self.server
        if isinstance(token, RefreshRecord):
            grants.revoke_refresh(server.store, server.clock, token.record)
        elif isinstance(token, AccessRecord):
            c = token.claims
            grants.revoke_access(
                server.store,
                server.clock,
                jti=str(c["jti"]),
                client_id=str(c["client_id"]),
                session_id=c.get("sid"),
                grant_id=c.get("grant_id"),
                expires_at=float(c.get("exp") or server.clock.now() + grants.MAX_ACCESS_TTL),
            )


class ProviderServer(AuthorizationServer):  # type: ignore[misc]
    def __init__(self, services: Services) -> None:
        super().__init__(scopes_supported=SCOPES)
        self.services = services
        self.store = services.store
        self.clock = services.clock
        self.register_client_auth_method("private_key_jwt", PrivateKeyJWT(self))
        self.register_grant(CodeGrant, [S256Only(required=True)])
        self.register_grant(RefreshGrant)
        self.register_grant(ApiClientGrant)
        self.register_endpoint(Revocation)

    @property
    def issuer(self) -> str:
        return self.services.issuer

    def query_client(self, client_id: str) -> ClientModel | None:
        try:
            return ClientModel(self.store.clients.get(client_id))
        except NotFound:
            return None

    def create_oauth2_request(self, request: Any) -> Any:
        return request  # already an AiohttpOAuth2Request (broker.oidc.adapter)

    def handle_response(self, status: int, body: Any, headers: Any) -> tuple[int, Any, Any]:
        return status, body, list(headers)

    def send_signal(self, name: str, *args: Any, **kwargs: Any) -> None:
        return None

    def mint(self, request: Any, user: Grantee, include_refresh_token: bool) -> dict[str, Any]:
        settings = self.services.settings
        client: Client = request.client.client
        alg = client.id_token_signed_response_alg
        at_ttl = int(settings.get("oidc.access_token_ttl_seconds"))
        now = self.clock.now()
        access, _jti, _exp = tokens.access_token(
            self.services.keyring,
            issuer=self.issuer,
            client_id=client.id,
            alg=alg,  # type: ignore[arg-type]
            subject=user.claims["sub"],
            scope=user.scope,
            ttl=at_ttl,
            auth_time=user.auth_time,
            sid=user.session_id,
            org_id=user.claims.get("org_id"),
            grant_id=user.grant_id,
            now=now,
        )
        id_token = tokens.id_token(
            self.services.keyring,
            issuer=self.issuer,
            client_id=client.id,
            alg=alg,
            user_claims=user.claims,
            ttl=int(settings.get("oidc.id_token_ttl_seconds")),
            nonce=user.nonce,
            auth_time=user.auth_time,
            sid=user.session_id,
            now=now,
        )
        refresh = new_token(32) if include_refresh_token else None
        request.issued = Issued(
            user.grant_id, user.session_id, user.claims, user.scope, user.auth_time, refresh
        )
        token: dict[str, Any] = {
            "token_type": "Bearer",
            "access_token": access,
            "expires_in": at_ttl,
            "id_token": id_token,
            "scope": user.scope,
        }
        if refresh:
            token["refresh_token"] = refresh
        return token

    def save_token(self, token: dict[str, Any], request: Any) -> None:
        issued: Issued = request.issued
        kind, presented = request.presented
        try:
            grants.record_issued(
                self.store,
                self.clock.now(),
                grant_id=issued.grant_id,
                client_id=request.client.get_client_id(),
                session_id=issued.session_id,
                claims=issued.claims,
                scope=issued.scope,
                auth_time=issued.auth_time,
                refresh_token=issued.refresh_token,
                config=self.services.login_config,
                code=presented if kind == "code" else None,
                spent_refresh=presented if kind == "refresh" else None,
            )
        except grants.SessionEnded as exc:
            # A logout or deprovisioning committed after the code or token was read: it
            # wins, and nothing is issued (DESIGN §6).
            raise InvalidGrantError("the sign-in session has ended") from exc
        except grants.AlreadyUsed as exc:
            # Another request redeemed it between our read and our write: a replay as
            # much as a later one, so the same revocation applies (RFC 6749 §4.1.2).
            # Peeking again sees it spent, revokes the grant and writes the audit entry.
            peek = grants.peek_code if kind == "code" else grants.peek_refresh
            peek(self.store, self.clock, request.client.get_client_id(), presented, request.actor)
            raise InvalidGrantError(str(exc)) from None


def actor_for(client_addr: str, request_id: str) -> audit.Actor:
    return audit.Actor("oauth", remote_addr=client_addr, correlation_id=request_id)
