"""IdP settings for a SAML connection, from the three sources an admin has (issue §1):
(a) a metadata URL, fetched SSRF-safely (broker.saml.fetch) and refreshed on a schedule,
(b) uploaded metadata XML, (c) entity ID + SSO URL + signing certificates typed by hand.

Each becomes the same plain dict of `broker.core.connections.IDP_KEYS`, stored in the
connection's config; the certificates are canonical PEM and `certificate_info` carries
their fingerprints and expiry so that the admin is told before one expires.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from broker.saml.fetch import fetch_metadata
from broker.saml.metadata import (
    BINDING_POST,
    BINDING_REDIRECT,
    IdpMetadata,
    manual_idp_metadata,
    parse_idp_metadata,
)

_BINDING_KEYS = {BINDING_REDIRECT: "redirect", BINDING_POST: "post"}
_BINDING_URIS = {v: k for k, v in _BINDING_KEYS.items()}


def _settings(meta: IdpMetadata, source: str, now: float, **extra: Any) -> dict[str, Any]:
    return {
        "idp_entity_id": meta.entity_id,
        "sso_urls": {_BINDING_KEYS[b]: url for b, url in meta.sso_urls.items()},
        "idp_certificates": list(meta.signing_certificates),
        "certificate_info": [info._asdict() for info in meta.certificates],
        "want_authn_requests_signed": meta.want_authn_requests_signed,
        "metadata_source": source,
        "metadata_valid_until": meta.valid_until,
        "metadata_fetched_at": now if source == "url" else None,
        "idp_warnings": list(meta.warnings),
        **extra,
    }


def from_xml(xml: bytes, now: float, entity_id: str | None = None) -> dict[str, Any]:
    return _settings(parse_idp_metadata(xml, entity_id, now=now), "xml", now)


def manual(
    entity_id: str,
    sso_url: str,
    certificates_pem: Sequence[str],
    now: float,
    bindings: Sequence[str] = ("redirect", "post"),
) -> dict[str, Any]:
    meta = manual_idp_metadata(
        entity_id, sso_url, certificates_pem, bindings=[_BINDING_URIS[b] for b in bindings], now=now
    )
    return _settings(meta, "manual", now)


async def from_url(
    url: str,
    now: float,
    *,
    allowlist: Sequence[str],
    ca_bundle_pem: str | None,
    timeout: float,
    max_bytes: int,
    entity_id: str | None = None,
    allow_insecure_loopback: bool = False,
) -> dict[str, Any]:
    """Fetch and parse; raises FetchError or MetadataError (both with a public message)."""
    body = await fetch_metadata(
        url,
        allowlist=allowlist,
        ca_bundle_pem=ca_bundle_pem,
        timeout=timeout,
        max_bytes=max_bytes,
        allow_insecure_loopback=allow_insecure_loopback,
    )
    meta = parse_idp_metadata(body, entity_id, now=now)
    extra: dict[str, Any] = {"metadata_url": url}
    if ca_bundle_pem:
        extra["ca_bundle_pem"] = ca_bundle_pem
    return _settings(meta, "url", now, **extra)
