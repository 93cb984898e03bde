"""What the setup UI needs from the SAML edge, registered at start-up by broker.app.

Edges never import each other (DESIGN §3): the setup UI (broker.admin) cannot call
broker.saml to parse IdP metadata, name our SP endpoints or read a preset's setup
guidance. broker.app, which wires every adapter, registers those functions here and
the UI reads them; with no SAML edge wired, `saml_tools()` is None and the UI says so.
Standard library only.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol


class PresetGuidance(Protocol):
    """The parts of a provider preset the setup UI shows (broker.saml.presets.Preset).
    Read-only members, so that frozen dataclasses satisfy it."""

    @property
    def key(self) -> str: ...
    @property
    def display_name(self) -> str: ...
    @property
    def source(self) -> str: ...
    @property
    def acs_url_label(self) -> str: ...
    @property
    def entity_id_label(self) -> str: ...
    @property
    def guidance(self) -> tuple[str, ...]: ...
    @property
    def attribute_statements(self) -> tuple[tuple[str, str], ...]: ...
    @property
    def notes(self) -> tuple[str, ...]: ...


@dataclass(frozen=True)
class SamlTools:
    # (public URL, connection id) → {"sp_entity_id", "acs_url", "metadata_url"}
    sp_summary: Callable[[str, str], dict[str, Any]]
    # (connection id, flow id) → path that starts the login at the IdP
    start_path: Callable[[str, str], str]
    # (metadata bytes, now) → IdP settings (core.connections.IDP_KEYS); raises InvalidInput
    from_xml: Callable[[bytes, float], dict[str, Any]]
    # (url, now, allowlist=, ca_bundle_pem=, timeout=, max_bytes=, allow_insecure_loopback=)
    from_url: Callable[..., Awaitable[dict[str, Any]]]
    # (entity id, SSO URL, certificate PEMs, now) → IdP settings
    manual: Callable[[str, str, Sequence[str], float], dict[str, Any]]
    # preset key → its guidance
    preset: Callable[[str], PresetGuidance]
    # preset key → the options a new connection starts with (binding, signing, SHA-1)
    preset_defaults: Callable[[str], dict[str, Any]]


_registered: list[SamlTools] = []


def register(tools: SamlTools) -> None:
    _registered[:] = [tools]


def saml_tools() -> SamlTools | None:
    return _registered[0] if _registered else None
