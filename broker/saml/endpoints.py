"""Our per-connection SP endpoints (issue §2): entity ID, ACS URL, metadata URL.

Each connection is its own SP toward its IdP, so that two organizations using the same
IdP tenant can never have one's assertion accepted at the other's ACS (the Audience and
Recipient differ). The entity ID is the metadata URL, so IdPs that resolve entity IDs
(AD FS, Shibboleth) find our metadata there. All URLs derive from the configured public
URL, never from the Host header (DESIGN §7).
"""

from __future__ import annotations

from typing import Any

from broker.core.models import Connection
from broker.saml.sp_keys import SpKeys
from broker.saml.sp_metadata import DEFAULT_NAME_ID_FORMATS, sp_metadata_xml


def metadata_url(public_url: str, connection_id: str) -> str:
    return f"{public_url.rstrip('/')}/saml/{connection_id}/metadata"


def sp_entity_id(public_url: str, connection_id: str) -> str:
    return metadata_url(public_url, connection_id)


def acs_url(public_url: str, connection_id: str) -> str:
    return f"{public_url.rstrip('/')}/saml/{connection_id}/acs"


def start_path(connection_id: str, flow_id: str) -> str:
    return f"/saml/{connection_id}/start?flow={flow_id}"


def sp_summary(public_url: str, connection_id: str) -> dict[str, Any]:
    """What the admin pastes into the IdP."""
    return {
        "sp_entity_id": sp_entity_id(public_url, connection_id),
        "acs_url": acs_url(public_url, connection_id),
        "metadata_url": metadata_url(public_url, connection_id),
    }


def connection_metadata(public_url: str, connection: Connection, keys: SpKeys) -> bytes:
    """SP metadata: every published certificate (current, next, previous) for signing, and
    for encryption unless the connection turned encryption off (AD FS encrypts whenever
    an encryption certificate is listed; IDP-NOTES.md)."""
    certs = keys.published_certificates()
    config = connection.config
    name_id = config.get("name_id_format")
    return sp_metadata_xml(
        entity_id=sp_entity_id(public_url, connection.id),
        acs_url=acs_url(public_url, connection.id),
        signing_certs_pem=certs,
        encryption_certs_pem=certs if config.get("encrypt_assertions", True) else [],
        authn_requests_signed=bool(config.get("sign_requests")),
        want_assertions_signed=True,
        name_id_formats=(name_id,) if name_id else DEFAULT_NAME_ID_FORMATS,
    )
