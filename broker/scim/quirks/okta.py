"""Okta provisioning.

Source: Okta Developer, "SCIM 2.0 protocol reference" and "Build a SCIM provisioning
integration" (developer.okta.com/docs/api/openapi/okta-scim/guides/scim-20).

- Group rename is a path-less replace whose value repeats the group's `id`:
  `{"op": "replace", "value": {"id": "…", "displayName": "…"}}`. `id` is read-only, so the
  echo is dropped rather than refused (it can only name the group being patched).
- Custom (AIW) apps update users with full PUT; a PUT that omits `active` keeps the
  state (broker.scim.resources.user_attributes gets the current state as default).
- Deprovisioning is `active: false` (PATCH or PUT), never DELETE.
- Probes `GET /Users?startIndex=1&count=2` and `GET /Groups?startIndex=1&count=100` when
  provisioning is switched on; `Content-Type: application/scim+json`.
"""

from __future__ import annotations

from broker.scim.quirks import Ops, Quirk

_ECHOED = frozenset({"id", "schemas", "meta"})


def patch(ops: Ops) -> Ops:
    fixed = []
    for op in ops:
        value = op.get("value")
        if not op.get("path") and isinstance(value, dict):
            op = {**op, "value": {k: v for k, v in value.items() if k.lower() not in _ECHOED}}
        fixed.append(op)
    return fixed


QUIRK = Quirk(
    vendor="okta",
    source="developer.okta.com/docs/api/openapi/okta-scim/guides/scim-20",
    patch=patch,
)
