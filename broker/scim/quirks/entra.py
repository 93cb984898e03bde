"""Microsoft Entra ID provisioning (and Microsoft's SCIM validator).

Source: Microsoft Learn, "Known issues and resolutions with SCIM 2.0 protocol compliance
of the Azure AD User Provisioning service" (aadOptscim062020 flag), and "Tutorial:
Develop and plan provisioning for a SCIM endpoint in Microsoft Entra ID".

- Without the `aadOptscim062020` flag: op values capitalised (`Add`, `Replace`,
  `Remove`) and booleans as strings (`"active": "False"`). With it, standard.
- Path-less values whose keys are paths, dotted or URN-prefixed
  (`{"name.givenName": "Ann", "urn:…:enterprise:2.0:User:employeeNumber": "42"}`):
  handled by broker.scim.patch (split at the last colon).
- `manager` sent as a bare id string instead of `{"value": id}`.
- The validator URL-encodes filter values (`userName eq "a%40b.com"`).
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import unquote

from broker.scim.quirks import Ops, Quirk

_BOOLEAN_ATTRS = frozenset({"active", "primary"})
_BOOL_TEXT = {"true": True, "false": False}
_ENCODED = re.compile(r"%[0-9A-Fa-f]{2}")
_STRING = re.compile(r'"((?:[^"\\]|\\.)*)"')


def _last_name(path: str) -> str:
    return path.rsplit(":", 1)[-1].split("[", 1)[0].split(".")[-1].lower()


def _bool(value: Any) -> Any:
    if isinstance(value, str) and value.lower() in _BOOL_TEXT:
        return _BOOL_TEXT[value.lower()]
    return value


def _manager(value: Any) -> Any:
    return {"value": value} if isinstance(value, str) else value


def _fix_value(path: str, value: Any) -> Any:
    name = _last_name(path)
    if name in _BOOLEAN_ATTRS:
        return _bool(value)
    if name == "manager":
        return _manager(value)
    if isinstance(value, dict):
        return {k: _fix_value(k, v) for k, v in value.items()}
    if isinstance(value, list):
        return [_fix_value(path, v) if isinstance(v, dict) else v for v in value]
    return value


def patch(ops: Ops) -> Ops:
    fixed = []
    for op in ops:
        op = dict(op)
        if isinstance(op.get("op"), str):
            op["op"] = op["op"].lower()
        if "value" in op:
            op["value"] = _fix_value(op.get("path") or "", op["value"])
        fixed.append(op)
    return fixed


def resource(body: dict[str, Any]) -> dict[str, Any]:
    return {k: _fix_value(k, v) for k, v in body.items()}


def filter_text(text: str) -> str:
    """Decode %XX inside string literals only (the validator's double encoding)."""

    def decode(m: re.Match[str]) -> str:
        inner = m.group(1)
        return f'"{unquote(inner)}"' if _ENCODED.search(inner) else m.group(0)

    return _STRING.sub(decode, text)


QUIRK = Quirk(
    vendor="entra",
    source="learn.microsoft.com/entra/identity/app-provisioning/"
    "application-provisioning-config-problem-scim-compatibility",
    patch=patch,
    resource=resource,
    filter=filter_text,
)
