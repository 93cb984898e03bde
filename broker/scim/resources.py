"""SCIM User and Group resources ↔ the core's records (RFC 7643 §4, §3.1 meta, RFC 7644 §3.9).

Incoming resources are checked against the declared schema (types of known attributes,
required userName/displayName), attribute names are folded to their canonical case,
read-only attributes (id, meta, groups) are ignored as the RFC says, passwords are never
kept, and anything unknown (other extension URNs, custom attributes) is kept verbatim
and returned. Outgoing resources carry `meta` with a weak ETag of the row version.
"""

from __future__ import annotations

from typing import Any

from broker.clock import iso
from broker.core.directory_types import GroupAttributes, UserAttributes
from broker.core.models import DirectoryGroup, DirectoryUser
from broker.scim import errors
from broker.scim.schema import ENTERPRISE, GROUP, GROUP_SCHEMA, USER, USER_SCHEMA, Attr

_DROP_USER = frozenset({"id", "meta", "groups", "password", "schemas"})
_DROP_GROUP = frozenset({"id", "meta", "members", "schemas"})
_PY_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "reference": (str,),
    "dateTime": (str,),
    "boolean": (bool,),
    "integer": (int,),
    "decimal": (int, float),
    "complex": (dict,),
}


def etag(version: int) -> str:
    return f'W/"{version}"'


def parse_etag(header: str | None) -> int | None:
    """If-Match → the version it names (None: no precondition, or `*`)."""
    if not header or header.strip() == "*":
        return None
    text = header.strip().removeprefix("W/").strip('"')
    try:
        return int(text)
    except ValueError:
        return -1  # never matches: an ETag we did not issue


def _check(attr: Attr, value: Any, where: str) -> Any:
    if value is None:
        return None
    if attr.multi:
        if isinstance(value, dict):
            value = [value]  # a lone object where a list belongs: lenient, as peers are
        if not isinstance(value, list):
            raise errors.invalid_value(f"{where} must be a list")
        return [_check(Attr(attr.name, attr.type, sub=attr.sub), v, where) for v in value]
    allowed = _PY_TYPES.get(attr.type, (object,))
    if (attr.type != "boolean" and isinstance(value, bool)) or not isinstance(value, allowed):
        raise errors.invalid_value(f"{where} must be of type {attr.type}")
    if isinstance(value, dict) and attr.sub:
        checked = {}
        for key, item in value.items():
            child = attr.child(key)
            if child is None:
                checked[key] = item
            else:
                checked[child.name] = _check(child, item, f"{where}.{child.name}")
        return checked
    return value


def canonical_user(body: dict[str, Any]) -> dict[str, Any]:
    """Fold names to canonical case, check types, drop read-only and secret attributes."""
    raw: dict[str, Any] = {}
    for key, value in body.items():
        if key.lower() in {k.lower() for k in _DROP_USER}:
            continue
        urn = USER.extension(key)
        if urn is not None:
            if not isinstance(value, dict):
                raise errors.invalid_value(f"{key} must be an object")
            ext = dict(raw.get(urn) or {})
            for sub_key, sub_value in value.items():
                _, attr = USER.find(sub_key, urn)
                if attr is None:
                    ext[sub_key] = sub_value
                else:
                    ext[attr.name] = _check(attr, sub_value, f"{urn}:{attr.name}")
            raw[urn] = ext
            continue
        _, attr = USER.find(key)
        if attr is None:
            raw[key] = value  # an unknown extension or attribute: kept and returned
        elif attr.mutability != "readOnly":
            raw[attr.name] = _check(attr, value, attr.name)
    return {k: v for k, v in raw.items() if v is not None}


def user_attributes(raw: dict[str, Any], *, active_default: bool) -> UserAttributes:
    user_name = raw.get("userName")
    if not isinstance(user_name, str) or not user_name.strip():
        raise errors.invalid_value("userName is required")
    active = raw.get("active", active_default)
    if not isinstance(active, bool):
        raise errors.invalid_value("active must be true or false")
    name: dict[str, Any] = raw["name"] if isinstance(raw.get("name"), dict) else {}
    external_id = raw.get("externalId")
    if external_id is not None and not isinstance(external_id, str):
        raise errors.invalid_value("externalId must be a string")
    stored = {k: v for k, v in raw.items() if k != "active"}
    return UserAttributes(
        user_name=user_name.strip(),
        active=active,
        raw=stored,
        external_id=external_id,
        email=primary_email(raw),
        given_name=name.get("givenName"),
        family_name=name.get("familyName"),
    )


def primary_email(raw: dict[str, Any]) -> str | None:
    emails = [e for e in raw.get("emails") or [] if isinstance(e, dict) and e.get("value")]
    chosen = (
        next((e for e in emails if e.get("primary") is True), None)
        or next((e for e in emails if str(e.get("type", "")).lower() == "work"), None)
        or (emails[0] if emails else None)
    )
    if chosen:
        return str(chosen["value"])
    user_name = raw.get("userName")
    return user_name if isinstance(user_name, str) and "@" in user_name else None


def user_raw_with_state(user: DirectoryUser) -> dict[str, Any]:
    """The stored resource plus the attributes kept in columns (for PATCH/PUT to work on)."""
    return {**user.raw, "userName": user.user_name, "active": user.state == "active"}


def render_user(
    user: DirectoryUser, base_url: str, groups: list[tuple[str, str]]
) -> dict[str, Any]:
    raw = user.raw
    extensions = sorted(k for k in raw if k.startswith("urn:"))
    resource: dict[str, Any] = {"schemas": [USER_SCHEMA, *extensions], "id": user.id}
    resource.update(raw)
    resource["userName"] = user.user_name
    resource["active"] = user.state == "active"
    if user.external_id is not None:
        resource["externalId"] = user.external_id
    resource["groups"] = [
        {"value": gid, "display": name, "$ref": f"{base_url}/Groups/{gid}", "type": "direct"}
        for gid, name in groups
    ]
    resource["meta"] = {
        "resourceType": "User",
        "created": iso(user.created_at),
        "lastModified": iso(user.updated_at),
        "location": f"{base_url}/Users/{user.id}",
        "version": etag(user.version),
    }
    return resource


def canonical_group(body: dict[str, Any]) -> dict[str, Any]:
    raw: dict[str, Any] = {}
    for key, value in body.items():
        if key.lower() in {k.lower() for k in _DROP_GROUP}:
            continue
        _, attr = GROUP.find(key)
        if attr is None:
            raw[key] = value  # e.g. Entra's extra schema URN objects: kept
        elif attr.mutability != "readOnly":
            raw[attr.name] = _check(attr, value, attr.name)
    return {k: v for k, v in raw.items() if v is not None}


def group_attributes(raw: dict[str, Any]) -> GroupAttributes:
    name = raw.get("displayName")
    if not isinstance(name, str) or not name.strip():
        raise errors.invalid_value("displayName is required")
    external_id = raw.get("externalId")
    if external_id is not None and not isinstance(external_id, str):
        raise errors.invalid_value("externalId must be a string")
    return GroupAttributes(display_name=name.strip(), raw=raw, external_id=external_id)


def member_ids(value: Any) -> tuple[str, ...]:
    """`members` as sent ([{"value": id}, …], or bare ids) → ids."""
    if value is None:
        return ()
    if isinstance(value, dict):
        value = [value]
    if not isinstance(value, list):
        raise errors.invalid_value("members must be a list")
    ids = []
    for member in value:
        member_id = member.get("value") if isinstance(member, dict) else member
        if not isinstance(member_id, str) or not member_id:
            raise errors.invalid_value("each member needs a value (the user id)")
        ids.append(member_id)
    return tuple(ids)


def render_group(
    group: DirectoryGroup, base_url: str, members: list[tuple[str, str]] | None
) -> dict[str, Any]:
    resource: dict[str, Any] = {"schemas": [GROUP_SCHEMA], "id": group.id}
    resource.update(group.raw)
    resource["displayName"] = group.display_name
    if group.external_id is not None:
        resource["externalId"] = group.external_id
    if members is not None:
        resource["members"] = [
            {"value": uid, "display": name, "type": "User", "$ref": f"{base_url}/Users/{uid}"}
            for uid, name in members
        ]
    resource["meta"] = {
        "resourceType": "Group",
        "created": iso(group.created_at),
        "lastModified": iso(group.updated_at),
        "location": f"{base_url}/Groups/{group.id}",
        "version": etag(group.version),
    }
    return resource


# -- attributes / excludedAttributes (RFC 7644 §3.4.2.5) -----------------------------------

_ALWAYS = frozenset({"id", "schemas"})


def _split(paths: str) -> list[tuple[str, ...]]:
    found = []
    for text in paths.split(","):
        text = text.strip()
        if not text:
            continue
        uri = None
        if ":" in text:
            uri, text = text.rsplit(":", 1)
            if uri.lower() in (USER_SCHEMA.lower(), GROUP_SCHEMA.lower()):
                uri = None
        parts = tuple(p.lower() for p in text.split("."))
        found.append(((uri.lower(),) if uri else ()) + parts)
    return found


def _key(mapping: dict[str, Any], lowered: str) -> str | None:
    return next((k for k in mapping if k.lower() == lowered), None)


def project(
    resource: dict[str, Any], attributes: str | None, excluded: str | None
) -> dict[str, Any]:
    if attributes:
        kept: dict[str, Any] = {k: resource[k] for k in resource if k in _ALWAYS}
        for path in _split(attributes):
            _copy(resource, kept, path)
        return kept
    if excluded:
        result = dict(resource)
        for path in _split(excluded):
            key = _key(result, path[0])
            if key is None or key in _ALWAYS:
                continue
            if len(path) == 1:
                del result[key]
            elif isinstance(result[key], dict):
                inner = dict(result[key])
                sub = _key(inner, path[1])
                if sub:
                    del inner[sub]
                result[key] = inner
        return result
    return resource


def _copy(source: dict[str, Any], target: dict[str, Any], path: tuple[str, ...]) -> None:
    key = _key(source, path[0])
    if key is None:
        return
    if len(path) == 1:
        target[key] = source[key]
        return
    value = source[key]
    if isinstance(value, dict):
        inner = target.setdefault(key, {})
        _copy(value, inner, path[1:])
    elif isinstance(value, list):
        sub = [
            {k: v for k, v in e.items() if k.lower() == path[1]}
            for e in value
            if isinstance(e, dict)
        ]
        target[key] = [e for e in sub if e]


def needs(attributes: str | None, excluded: str | None, name: str) -> bool:
    """Whether the projection will show top-level attribute `name` (skip loading it)."""
    lowered = name.lower()
    if attributes:
        return any(p[0] == lowered for p in _split(attributes))
    if excluded:
        return not any(p == (lowered,) for p in _split(excluded))
    return True


ENTERPRISE_URN = ENTERPRISE
