"""One upstream OIDC login, step by step: start (flow → authorization request) and finish
(callback → token → ID token → identity → core.login).

OIDC Core §3.1 (authorization code flow) with PKCE S256 (RFC 7636) and the mix-up defence
of RFC 9207 (`iss` in the authorization response). Every piece of per-login state — the
`state`, `nonce`, code verifier, redirect URI and a hash of the browser-binding cookie —
is on the flow row (core.login.record_upstream_request), never in memory, so any worker
can take the callback (DESIGN §8). The `state` sent to the IdP is `{flow_id}.{secret}`:
the flow id finds the row, the secret (compared in constant time) proves the answer
belongs to the request we made, and the binding cookie proves it came back to the browser
that started it (RFC 9700 §4.7: no login CSRF by injecting one's own code).

Refusals are `UpstreamRefused` with a public message, an HTTP status for the page and a
private detail; the detail goes to the flow row and the audit log (core.flows
.record_refusal) under the request's correlation id. Nothing is created for a refused
login: the core creates the session only after every check passed.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from broker.core import audit, connections, flows, login
from broker.core.models import Connection
from broker.core.oidc_connections import secret_context
from broker.core.ports import Flow
from broker.errors import BrokerError, InvalidInput, LoginRefused, NotFound
from broker.ids import hash_token, new_token, tokens_equal
from broker.upstream_oidc import client, id_token, mapping
from broker.upstream_oidc.discovery import DiscoveryError, ProviderCache, ProviderMetadata
from broker.upstream_oidc.http import SafeHttp, UpstreamHttpError
from broker.upstream_oidc.presets import preset as get_preset
from broker.web.services import Services

log = logging.getLogger("broker.upstream_oidc")

BINDING_COOKIE_PREFIX = "broker_oidc_"
_ALLOWLIST_REFRESH_SECONDS = 10.0


class UpstreamRefused(BrokerError):
    """A login step failed; `reason` is stable, `status` the HTTP status of the page."""

    code = "upstream_refused"

    def __init__(self, reason: str, public: str, detail: str | None = None, status: int = 400):
        super().__init__(public, detail)
        self.reason = reason
        self.status = status
        # The admin's test login this refusal ended (its result page shows why).
        self.test_flow_id: str | None = None


@dataclass(frozen=True)
class Redirect:
    url: str
    cookie_name: str
    cookie_value: str
    cookie_path: str


@dataclass(frozen=True)
class Finished:
    outcome: login.LoginOutcome
    cookie_name: str
    cookie_path: str


def callback_url(public_url: str, connection_id: str) -> str:
    return f"{public_url}/oidc/{connection_id}/callback"


def cookie_path(connection_id: str) -> str:
    return f"/oidc/{connection_id}/"


def binding_cookie_name(flow_id: str) -> str:
    # One cookie per flow, so that two logins in two tabs do not overwrite each other.
    return BINDING_COOKIE_PREFIX + hashlib.sha256(flow_id.encode()).hexdigest()[:16]


def actor(connection_id: str, remote_addr: str | None, correlation_id: str) -> audit.Actor:
    return audit.Actor(f"oidc:{connection_id}", remote_addr, correlation_id)


class RelyingParty:
    """The upstream OIDC edge's state for one worker: HTTP pools and the provider cache."""

    def __init__(
        self,
        services: Services,
        http: SafeHttp,
        cache: ProviderCache,
        *,
        clock_skew: float = 120.0,
    ) -> None:
        self.services = services
        self.http = http
        self.cache = cache
        self.clock_skew = clock_skew
        self._allowlist_at = -1e18
        # Per-phase timings of the last finish() (bench/bench_upstream_oidc.py reads them).
        self.last_timings: dict[str, float] = {}

    async def close(self) -> None:
        await self.http.close()

    # -- start ---------------------------------------------------------------------

    async def start(self, connection_id: str, flow_id: str, act: audit.Actor) -> Redirect:
        services = self.services
        flow, connection = await services.run(self._load, connection_id, flow_id)
        try:
            metadata = await self._metadata(connection)
        except UpstreamRefused as exc:
            await self._refuse(act, exc, flow, connection)
            raise
        request = client.RequestState.fresh()
        state = f"{flow.id}.{request.state}"
        browser = new_token(24)
        redirect_uri = callback_url(services.settings.public_url, connection_id)
        await services.run(
            login.record_upstream_request,
            services.store,
            services.clock,
            flow.id,
            connection_id,
            {
                "oidc": {
                    "state": request.state,
                    "nonce": request.nonce,
                    "code_verifier": request.code_verifier,
                    "redirect_uri": redirect_uri,
                    "browser_hash": hash_token(browser),
                    "issuer": metadata.issuer,
                }
            },
        )
        config = connection.config
        scopes = list(config.get("scopes") or ["openid", "email", "profile"])
        preset = get_preset(connection.preset)
        for extra in preset.extra_scopes:
            if extra not in scopes:
                scopes.append(extra)
        params: dict[str, str] = {}
        if config.get("hosted_domain"):
            params["hd"] = str(config["hosted_domain"])  # a hint only; the claim is checked
        hint = (flow.request or {}).get("login_hint")
        if isinstance(hint, str) and "@" in hint:
            params["login_hint"] = hint
        params.update(login.reauthentication(flow))  # prompt=login, max_age (OIDC §3.1.2.1)
        url = client.authorization_url(
            metadata,
            str(config["client_id"]),
            redirect_uri,
            scopes,
            client.RequestState(state, request.nonce, request.code_verifier),
            params,
        )
        return Redirect(url, binding_cookie_name(flow.id), browser, cookie_path(connection_id))

    def _load(self, connection_id: str, flow_id: str) -> tuple[Flow, Connection]:
        store, clock = self.services.store, self.services.clock
        try:
            connection = store.connections.get(connection_id)
        except NotFound:
            raise UpstreamRefused(
                "unknown_connection",
                "This sign-in link is not valid.",
                f"no connection {connection_id}",
                404,
            ) from None
        if connection.type != "oidc":
            raise UpstreamRefused(
                "not_oidc",
                "This sign-in link is not valid.",
                f"{connection_id} is a {connection.type} connection",
                404,
            )
        missing = connections.missing_settings(connection)
        if missing is not None:  # a draft still waiting for its issuer, client ID or secret
            raise UpstreamRefused("connection_incomplete", missing, f"{connection_id}: {missing}")
        try:
            flow = login.load_flow_for_upstream(store, clock, flow_id, connection_id)
        except LoginRefused as exc:
            raise UpstreamRefused(exc.reason, exc.public, exc.detail) from None
        return flow, connection

    async def _metadata(self, connection: Connection) -> ProviderMetadata:
        await self.refresh_allowlist()
        try:
            return await self.cache.metadata(
                str(connection.config["issuer"]), connection.config.get("ca_pem")
            )
        except UpstreamHttpError as exc:
            raise _unreachable(exc) from exc
        except DiscoveryError as exc:
            raise UpstreamRefused(f"discovery_{exc.kind}", exc.public, exc.detail, 502) from exc

    async def refresh_allowlist(self) -> None:
        """The admin's run-time allow-list (store) joins the settings' list."""
        now = time.monotonic()
        if now - self._allowlist_at < _ALLOWLIST_REFRESH_SECONDS:
            return
        repo = getattr(self.services.store, "network_hosts", None)
        if repo is not None:
            hosts = await self.services.run(repo.list)
            self.http.extra_allowlist = frozenset(h.strip().lower().rstrip(".") for h in hosts)
        self._allowlist_at = now

    # -- finish --------------------------------------------------------------------

    async def finish(
        self,
        connection_id: str,
        params: Mapping[str, str],
        cookies: Mapping[str, str],
        act: audit.Actor,
    ) -> Finished:
        """The callback: check, exchange, validate, map, hand to the core."""
        timings = self.last_timings = {}
        started = time.perf_counter()
        flow_id, _, secret = params.get("state", "").partition(".")
        if not flow_id or not secret:
            exc = UpstreamRefused(
                "state_missing",
                "This sign-in response is not valid. Start again from the application.",
                "callback without a state",
            )
            await self._refuse(act, exc, None, None, connection_id)
            raise exc
        flow, connection = await self.services.run(self._load, connection_id, flow_id)
        timings["load_flow"] = time.perf_counter() - started
        stored: dict[str, Any] = (flow.upstream or {}).get("oidc") or {}
        cookie_name = binding_cookie_name(flow.id)
        try:
            self._check_response(stored, params, secret, cookies.get(cookie_name))
        except UpstreamRefused as exc:
            # A forged or stray response must not kill the real login still in progress:
            # the flow stays as it is, only the audit log hears of it (no event to Exec:
            # nothing here says a real user was refused).
            await self._refuse(act, exc, None, connection, event=False)
            raise
        try:
            identity = await self._identity(connection, stored, params)
        except UpstreamRefused as exc:
            await self._refuse(act, exc, flow, connection)
            if flow.kind == "test_login":
                exc.test_flow_id = flow.id
            raise
        mark = time.perf_counter()
        try:
            outcome = await self.services.run(
                login.complete_upstream,
                self.services.store,
                self.services.clock,
                connection_id=connection_id,
                flow_id=flow.id,
                identity=identity,
                actor=act,
                config=self.services.login_config,
            )
        except LoginRefused as exc:  # already written on the flow row and the audit log
            raise UpstreamRefused(exc.reason, exc.public, exc.detail, 403) from exc
        timings["core"] = time.perf_counter() - mark
        timings["total"] = time.perf_counter() - started
        return Finished(outcome, cookie_name, cookie_path(connection_id))

    def _check_response(
        self,
        stored: Mapping[str, Any],
        params: Mapping[str, str],
        secret: str,
        browser: str | None,
    ) -> None:
        expected = stored.get("state")
        if not isinstance(expected, str) or not client.states_equal(secret, expected):
            raise UpstreamRefused(
                "state_mismatch",
                "This sign-in response does not match the "
                "sign-in that was started. Start again from the application.",
                "state does not match the one stored on the flow",
            )
        hashed = stored.get("browser_hash")
        if (
            not browser
            or not isinstance(hashed, str)
            or not tokens_equal(hash_token(browser), hashed)
        ):
            raise UpstreamRefused(
                "browser_mismatch",
                "This sign-in was started in another browser. Start again from the application.",
                "binding cookie missing or different",
            )
        iss = params.get("iss")
        if iss is not None and iss != stored.get("issuer"):  # RFC 9207 §2.4
            raise UpstreamRefused(
                "issuer_mismatch",
                "The sign-in response came from another identity provider.",
                f"iss: expected {stored.get('issuer')!r}, got {iss!r}",
            )

    async def _identity(
        self, connection: Connection, stored: Mapping[str, Any], params: Mapping[str, str]
    ) -> Any:
        timings = self.last_timings
        if params.get("error"):
            error = params["error"][:100]
            description = (params.get("error_description") or "")[:300]
            public = (
                "You were not allowed to sign in at your identity provider."
                if error == "access_denied"
                else "Your identity provider could not complete the sign-in."
            )
            raise UpstreamRefused(
                f"idp_{error}" if error.isidentifier() else "idp_error",
                public,
                f"IdP error={error!r} error_description={description!r}",
            )
        code = params.get("code")
        if not code:
            raise UpstreamRefused(
                "code_missing",
                "The identity provider sent no sign-in code.",
                "callback without code or error",
            )
        mark = time.perf_counter()
        metadata = await self._metadata(connection)
        if metadata.iss_parameter_supported and "iss" not in params:
            raise UpstreamRefused(
                "issuer_missing",
                "The sign-in response could not be verified.",
                "IdP advertises RFC 9207 but sent no iss",
            )
        config = connection.config
        ca_pem = config.get("ca_pem")
        credentials = await self._credentials(connection)
        try:
            tokens = await client.exchange_code(
                self.http,
                metadata,
                credentials,
                code=code,
                redirect_uri=str(stored.get("redirect_uri")),
                code_verifier=str(stored.get("code_verifier")),
                ca_pem=ca_pem,
            )
        except UpstreamHttpError as exc:
            raise _unreachable(exc) from exc
        except client.TokenError as exc:
            raise UpstreamRefused(f"token_{exc.kind}", exc.public, exc.detail, 502) from exc
        timings["token_exchange"] = time.perf_counter() - mark
        mark = time.perf_counter()
        claims = await self._validate(connection, metadata, tokens, str(stored.get("nonce")))
        timings["id_token"] = time.perf_counter() - mark
        preset = get_preset(connection.preset)
        overrides: dict[str, str] = dict(config.get("claims") or {})
        if tokens.access_token and mapping.needs_userinfo(claims, preset, overrides):
            mark = time.perf_counter()
            try:
                info = await client.fetch_userinfo(
                    self.http, metadata, tokens.access_token, str(claims["sub"]), ca_pem
                )
            except UpstreamHttpError as exc:
                raise _unreachable(exc) from exc
            except client.TokenError as exc:
                raise UpstreamRefused(exc.kind, exc.public, exc.detail, 502) from exc
            # ID token claims win over UserInfo's for the protocol claims (OIDC Core §5.3.2).
            claims = {**info, **claims}
            timings["userinfo"] = time.perf_counter() - mark
        hosted = config.get("hosted_domain")
        if hosted and preset.hosted_domain_claim:
            got = claims.get(preset.hosted_domain_claim)
            if got != hosted:
                raise UpstreamRefused(
                    "hosted_domain_mismatch",
                    "This account does not belong to the organization's Google Workspace domain.",
                    f"hd: expected {hosted!r}, got {got!r}",
                    403,
                )
        return mapping.to_identity(connection.id, claims, preset, overrides)

    async def _validate(
        self,
        connection: Connection,
        metadata: ProviderMetadata,
        tokens: client.TokenResponse,
        nonce: str,
    ) -> dict[str, Any]:
        expect = id_token.Expectations(
            issuer=metadata.issuer,
            client_id=str(connection.config["client_id"]),
            nonce=nonce,
            now=self.services.clock.now(),
            skew=self.clock_skew,
            allowed_algs=id_token.allowed_algorithms(metadata.id_token_signing_algs),
            access_token=tokens.access_token,
        )
        try:
            header = id_token.read_header(tokens.id_token)
            id_token.check_alg(header, expect)
            key = await self.cache.signing_key(
                metadata, header.kid, connection.config.get("ca_pem")
            )
            return id_token.validate(tokens.id_token, key, header, expect)
        except id_token.IdTokenError as exc:
            raise UpstreamRefused(f"id_token_{exc.kind}", exc.public, exc.detail) from exc
        except DiscoveryError as exc:
            raise UpstreamRefused(f"id_token_{exc.kind}", exc.public, exc.detail) from exc
        except UpstreamHttpError as exc:
            raise _unreachable(exc) from exc

    async def _credentials(self, connection: Connection) -> client.ClientCredentials:
        config = connection.config
        method = str(config.get("token_auth_method") or "client_secret_basic")
        client_id = str(config["client_id"])
        if method == "private_key_jwt":
            loaded = await self.services.run(self.services.keyring.signing_key, "RS256")
            return client.ClientCredentials(
                client_id, "private_key_jwt", signing_key=loaded.key, signing_alg="RS256"
            )
        try:
            secret = self.services.secret_box.decrypt(
                str(config.get("client_secret_enc") or ""), secret_context(connection.id)
            )
        except InvalidInput as exc:
            raise UpstreamRefused(
                "secret_unreadable",
                "This connection is misconfigured.",
                f"client secret cannot be decrypted: {exc.detail}",
                500,
            ) from exc
        return client.ClientCredentials(client_id, method, secret=secret)  # type: ignore[arg-type]

    # -- refusals ------------------------------------------------------------------

    async def _refuse(
        self,
        act: audit.Actor,
        exc: UpstreamRefused,
        flow: Flow | None,
        connection: Connection | None,
        connection_id: str | None = None,
        *,
        event: bool = True,
    ) -> None:
        log.info(
            "upstream oidc login refused",
            extra={"request_id": act.correlation_id, "reason": exc.reason, "detail": exc.detail},
        )
        refusal = LoginRefused(exc.reason, exc.public, exc.detail)
        await self.services.run(
            flows.record_refusal,
            self.services.store,
            self.services.clock.now(),
            act,
            refusal,
            flow=flow,
            organization_id=connection.organization_id if connection else None,
            connection_id=connection.id if connection else connection_id,
            event=event,
        )


def _unreachable(exc: UpstreamHttpError) -> UpstreamRefused:
    if exc.kind in ("timeout", "connect", "dns"):
        return UpstreamRefused(
            f"idp_unreachable_{exc.kind}",
            "Your identity provider could not be reached. Try again in a moment.",
            f"{exc.public} ({exc.detail})",
            504 if exc.kind == "timeout" else 502,
        )
    # Refused by our own rules (blocked address, TLS, size, not JSON): a setup problem.
    return UpstreamRefused(
        f"idp_{exc.kind}",
        "The connection to your identity provider is not set up correctly. Ask your IT team.",
        f"{exc.public} ({exc.detail})",
        502,
    )
