"""IdP quirks, declared once per vendor and applied before the RFC code sees a request.

Each vendor module exposes a `QUIRK` with up to three hooks (PATCH operations, request
resources, filter text) and cites where its behaviour is documented. The hooks only
rewrite non-standard spellings into the standard ones, so they are safe on standard
input and all of them run on every request: Entra often sends no User-Agent, so
detecting the vendor would be guesswork (IDP-NOTES "SCIM clients").

Behaviour that needs no rewriting is handled by the RFC code and pinned by tests:
Okta's probes (`GET /Users?startIndex=1&count=2`), exact `totalResults`, PUT without
`active` (keeps the state: resources.user_attributes), Entra never sending DELETE,
OneLogin sending nothing when a group is deleted (the drift report shows such groups).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

Ops = list[dict[str, Any]]


@dataclass(frozen=True)
class Quirk:
    vendor: str
    source: str
    patch: Callable[[Ops], Ops] | None = None
    resource: Callable[[dict[str, Any]], dict[str, Any]] | None = None
    filter: Callable[[str], str] | None = None


def registry() -> tuple[Quirk, ...]:
    from broker.scim.quirks import entra, jumpcloud, okta

    return (entra.QUIRK, okta.QUIRK, jumpcloud.QUIRK)


_REGISTRY: tuple[Quirk, ...] | None = None


def _quirks() -> tuple[Quirk, ...]:
    global _REGISTRY
    if _REGISTRY is None:
        _REGISTRY = registry()
    return _REGISTRY


def normalise_patch(ops: Ops) -> Ops:
    for quirk in _quirks():
        if quirk.patch:
            ops = quirk.patch(ops)
    return ops


def normalise_resource(body: dict[str, Any]) -> dict[str, Any]:
    for quirk in _quirks():
        if quirk.resource:
            body = quirk.resource(body)
    return body


def normalise_filter(text: str) -> str:
    for quirk in _quirks():
        if quirk.filter:
            text = quirk.filter(text)
    return text
