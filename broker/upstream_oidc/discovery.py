"""The IdP's discovery document and JWKS, fetched safely and cached per process.

OpenID Connect Discovery 1.0 §4: the document lives at `{issuer}/.well-known/
openid-configuration` (a trailing slash of the issuer removed first, §4.1), and its
`issuer` MUST be identical to the configured one (§4.3) — compared exactly, no
normalisation, so a look-alike issuer can never stand in for the real one. Every endpoint
it names must be HTTPS (§3), like the issuer itself.

The cache holds public data only (never flow state, DESIGN §8), so each worker keeps its
own: discovery for `metadata_ttl` seconds (kept warm by the background refresher,
broker.upstream_oidc.refresh, else re-fetched on the next use; a failing
refresh keeps serving the last good document for up to `max_stale` seconds so that an IdP
blip does not stop logins), and each JWKS until a token names a `kid` it lacks (a key
rotation), then re-fetched at most once per `jwks_min_refresh` seconds per JWKS URL so
that forged `kid`s cannot make us hammer the IdP.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, cast

from joserfc.errors import JoseError
from joserfc.jwk import ECKey, KeySet, OKPKey, RSAKey

from broker.errors import BrokerError
from broker.upstream_oidc.http import SafeHttp, UpstreamHttpError, check_url

log = logging.getLogger("broker.upstream_oidc")

WELL_KNOWN = "/.well-known/openid-configuration"
PublicKey = RSAKey | ECKey | OKPKey


class DiscoveryError(BrokerError):
    """The IdP's discovery document or keys are unusable; `kind` is a stable reason."""

    code = "upstream_discovery"

    def __init__(self, kind: str, public: str, detail: str | None = None) -> None:
        super().__init__(public, detail)
        self.kind = kind


@dataclass(frozen=True)
class ProviderMetadata:
    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str
    userinfo_endpoint: str | None
    id_token_signing_algs: tuple[str, ...]
    token_auth_methods: tuple[str, ...]
    code_challenge_methods: tuple[str, ...]
    iss_parameter_supported: bool
    raw: dict[str, Any] = field(default_factory=dict, compare=False)


def discovery_url(issuer: str) -> str:
    return issuer.rstrip("/") + WELL_KNOWN


def parse_metadata(
    doc: dict[str, Any], expected_issuer: str, allow_insecure_loopback: bool = False
) -> ProviderMetadata:
    """Validate a discovery document for use by this relying party."""
    issuer = doc.get("issuer")
    if issuer != expected_issuer:
        raise DiscoveryError(
            "issuer_mismatch",
            "The identity provider's discovery document names a different issuer than the "
            "one configured for this connection.",
            f"expected issuer {expected_issuer!r}, discovery document says {issuer!r}",
        )

    def endpoint(name: str, required: bool = True) -> str | None:
        value = doc.get(name)
        if value is None and not required:
            return None
        if not isinstance(value, str) or not value:
            raise DiscoveryError(
                "incomplete", f"The discovery document has no {name}.", f"{name}={value!r}"
            )
        try:
            check_url(value, allow_insecure_loopback, what=f"The {name}")
        except UpstreamHttpError as exc:
            raise DiscoveryError("insecure_endpoint", exc.public, exc.detail) from exc
        return value

    def strings(name: str, default: tuple[str, ...]) -> tuple[str, ...]:
        value = doc.get(name)
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return tuple(value)
        return default

    return ProviderMetadata(
        issuer=issuer,
        authorization_endpoint=cast(str, endpoint("authorization_endpoint")),
        token_endpoint=cast(str, endpoint("token_endpoint")),
        jwks_uri=cast(str, endpoint("jwks_uri")),
        userinfo_endpoint=endpoint("userinfo_endpoint", required=False),
        # Discovery §3: RS256 is the default when the IdP lists none.
        id_token_signing_algs=strings("id_token_signing_alg_values_supported", ("RS256",)),
        token_auth_methods=strings(
            "token_endpoint_auth_methods_supported", ("client_secret_basic",)
        ),
        code_challenge_methods=strings("code_challenge_methods_supported", ()),
        iss_parameter_supported=doc.get("authorization_response_iss_parameter_supported") is True,
        raw=dict(doc),
    )


@dataclass
class _MetadataEntry:
    metadata: ProviderMetadata
    fetched_at: float


@dataclass
class _JwksEntry:
    keys: dict[str, PublicKey]  # kid → key ("" for keys without a kid)
    fetched_at: float


class ProviderCache:
    """Discovery documents and JWKS of the IdPs this worker talks to."""

    def __init__(
        self,
        http: SafeHttp,
        *,
        metadata_ttl: float = 3600.0,
        max_stale: float = 86400.0,
        jwks_min_refresh: float = 10.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.http = http
        self.metadata_ttl = metadata_ttl
        self.max_stale = max_stale
        self.jwks_min_refresh = jwks_min_refresh
        self._now = monotonic
        self._metadata: dict[tuple[str, str], _MetadataEntry] = {}
        self._jwks: dict[tuple[str, str], _JwksEntry] = {}
        self._locks: dict[tuple[str, str, str], asyncio.Lock] = {}

    def _lock(self, *key: str) -> asyncio.Lock:
        return self._locks.setdefault((key[0], key[1], key[2]), asyncio.Lock())

    def forget(self, issuer: str) -> None:
        """Drop what is cached for an issuer (connection edited or deleted)."""
        for key in [k for k in self._metadata if k[0] == issuer]:
            del self._metadata[key]

    async def metadata(self, issuer: str, ca_pem: str | None = None) -> ProviderMetadata:
        key = (issuer, _digest(ca_pem))
        entry = self._metadata.get(key)
        if entry is not None and self._now() - entry.fetched_at < self.metadata_ttl:
            return entry.metadata
        async with self._lock("md", *key):
            entry = self._metadata.get(key)  # another task may have refreshed it meanwhile
            if entry is not None and self._now() - entry.fetched_at < self.metadata_ttl:
                return entry.metadata
            try:
                metadata = await self._fetch_metadata(issuer, ca_pem)
            except (UpstreamHttpError, DiscoveryError) as exc:
                if entry is not None and self._now() - entry.fetched_at < self.max_stale:
                    log.warning(
                        "discovery refresh failed; serving the cached document",
                        extra={"issuer": issuer, "detail": exc.detail},
                    )
                    return entry.metadata
                raise
            self._metadata[key] = _MetadataEntry(metadata, self._now())
            return metadata

    async def refresh(self, issuer: str, ca_pem: str | None = None) -> ProviderMetadata:
        """Fetch the discovery document and its JWKS now, whatever their age (the
        background refresher, broker.upstream_oidc.refresh, so that logins find them
        fresh). Each copy is replaced only by a good one: on failure the error is raised
        and the last good copies stay cached."""
        key = (issuer, _digest(ca_pem))
        async with self._lock("md", *key):
            metadata = await self._fetch_metadata(issuer, ca_pem)
            self._metadata[key] = _MetadataEntry(metadata, self._now())
        jwks_key = (metadata.jwks_uri, _digest(ca_pem))
        async with self._lock("jwks", *jwks_key):
            keys = await self._fetch_jwks(metadata.jwks_uri, ca_pem)
            self._jwks[jwks_key] = _JwksEntry(keys, self._now())
        return metadata

    def cached_kids(self, jwks_uri: str, ca_pem: str | None = None) -> list[str]:
        """The kids of the cached JWKS at `jwks_uri` (for the refresher's report)."""
        entry = self._jwks.get((jwks_uri, _digest(ca_pem)))
        return list(entry.keys) if entry else []

    async def _fetch_metadata(self, issuer: str, ca_pem: str | None) -> ProviderMetadata:
        response = await self.http.request(
            "GET", discovery_url(issuer), ca_pem=ca_pem, follow_redirects=True
        )
        if response.status != 200:
            raise DiscoveryError(
                "http_status",
                f"The identity provider's discovery document answered HTTP {response.status}.",
            )
        return parse_metadata(response.json(), issuer, self.http.policy.allow_insecure_loopback)

    async def signing_key(
        self, metadata: ProviderMetadata, kid: str | None, ca_pem: str | None = None
    ) -> PublicKey:
        """The IdP key for a token's `kid`; the JWKS is re-fetched once when the kid is
        new (rotation), and a missing kid is accepted only when the JWKS has one key."""
        key = (metadata.jwks_uri, _digest(ca_pem))
        entry = self._jwks.get(key)
        found = _pick(entry, kid)
        if found is not None:
            return found
        async with self._lock("jwks", *key):
            entry = self._jwks.get(key)
            found = _pick(entry, kid)
            if found is not None:
                return found
            if entry is None or self._now() - entry.fetched_at >= self.jwks_min_refresh:
                entry = _JwksEntry(await self._fetch_jwks(metadata.jwks_uri, ca_pem), self._now())
                self._jwks[key] = entry
                found = _pick(entry, kid)
                if found is not None:
                    return found
        raise DiscoveryError(
            "unknown_kid",
            "The identity provider signed the sign-in with a key it does not publish.",
            f"kid {kid!r} not in {metadata.jwks_uri} (kids: {sorted(entry.keys) if entry else []})",
        )

    async def _fetch_jwks(self, jwks_uri: str, ca_pem: str | None) -> dict[str, PublicKey]:
        response = await self.http.request("GET", jwks_uri, ca_pem=ca_pem, follow_redirects=True)
        if response.status != 200:
            raise DiscoveryError(
                "http_status", f"The identity provider's JWKS answered HTTP {response.status}."
            )
        doc = response.json()
        keys: dict[str, PublicKey] = {}
        for raw in doc.get("keys") or []:
            if not isinstance(raw, dict) or raw.get("use", "sig") != "sig":
                continue  # encryption keys never verify signatures
            if "d" in raw:
                continue  # a private key published by mistake: refuse to use it at all
            try:
                imported = KeySet.import_key_set({"keys": [raw]}).keys[0]
            except (JoseError, ValueError, TypeError, KeyError):
                continue  # one odd key (unknown kty) must not hide the others
            keys[str(raw.get("kid") or "")] = cast(PublicKey, imported)
        if not keys:
            raise DiscoveryError("no_keys", "The identity provider publishes no signing keys.")
        return keys


def _pick(entry: _JwksEntry | None, kid: str | None) -> PublicKey | None:
    if entry is None:
        return None
    if kid:
        return entry.keys.get(kid)
    return next(iter(entry.keys.values())) if len(entry.keys) == 1 else None


def _digest(ca_pem: str | None) -> str:
    return hashlib.sha256((ca_pem or "").encode()).hexdigest()[:16]
