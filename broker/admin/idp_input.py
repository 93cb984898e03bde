"""Turning the wizard's IdP form (metadata URL, metadata file or manual fields) into IdP
settings, through the SAML edge's parsers registered in broker.core.connection_tools.

Metadata URLs are fetched SSRF-safely by the SAML edge (HTTPS, size and time limits,
private addresses only for allow-listed hosts). Plain http is allowed only for loopback
metadata when the broker itself runs on plain-http loopback: a local trial or test run.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from aiohttp import web

from broker.core.connection_tools import SamlTools
from broker.errors import InvalidInput
from broker.web.services import Services

_LOOPBACK = ("127.0.0.1", "localhost", "::1")


def _local_trial(services: Services) -> bool:
    parts = urlsplit(services.settings.public_url)
    return parts.scheme == "http" and parts.hostname in _LOOPBACK


async def read_idp_settings(
    request: web.Request, services: Services, tools: SamlTools
) -> dict[str, Any]:
    """IdP settings from the posted form; InvalidInput (public message) when they are bad."""
    form = await request.post()
    source = str(form.get("source", "url"))
    now = services.clock.now()
    if source == "url":
        url = str(form.get("metadata_url", "")).strip()
        if not url:
            raise InvalidInput("Paste the IdP's metadata URL.")
        allow = set(services.settings.get("network.private_hosts_allowlist"))
        allow |= set(await services.run(services.store.network_hosts.list))
        return await tools.from_url(
            url,
            now,
            allowlist=sorted(allow),
            ca_bundle_pem=None,
            timeout=services.settings.get("saml.metadata_timeout_seconds"),
            max_bytes=services.settings.get("saml.metadata_max_bytes"),
            allow_insecure_loopback=_local_trial(services),
        )
    if source == "xml":
        upload = form.get("metadata_file")
        body = getattr(upload, "file", None)
        data = body.read() if body is not None else b""
        if not data:
            raise InvalidInput("Choose the metadata file downloaded from the IdP.")
        return tools.from_xml(data, now)
    if source == "manual":
        entity = str(form.get("entity_id", "")).strip()
        sso_url = str(form.get("sso_url", "")).strip()
        cert = str(form.get("certificate", "")).strip()
        if not entity or not sso_url or not cert:
            raise InvalidInput("Fill in the IdP entity ID, the SSO URL and the certificate.")
        return tools.manual(entity, sso_url, [cert], now)
    raise InvalidInput("Choose where the IdP settings come from.")
