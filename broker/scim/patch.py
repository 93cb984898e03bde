"""PATCH (RFC 7644 §3.5.2) applied to a resource held as a dict.

Operations run in order on a copy; any failure rejects the whole request (the core's
transaction then writes nothing). Supported: add / replace / remove, with or without
`path`; paths with value filters (`emails[type eq "work"].value`); sub-attributes;
URN-qualified extension paths (split at the last colon); path-less values whose keys
are themselves paths. IdP spellings (capitalised ops, "False" strings, bare manager ids)
are made standard before this runs, by broker.scim.quirks.

Group `members` never passes through the dict: member operations become a
MemberChange (ids to add/remove, or a full replacement) that the core applies one row
at a time, so a 10,000-member group is never loaded to add one member.
"""

from __future__ import annotations

import copy
from typing import Any

from broker.core.directory_types import MemberChange
from broker.scim import errors, filters
from broker.scim.resources import member_ids
from broker.scim.schema import GROUP, ResourceSchema

OPS = frozenset({"add", "replace", "remove"})
MAX_OPERATIONS = 1000


def operations(body: Any) -> list[dict[str, Any]]:
    if not isinstance(body, dict):
        raise errors.invalid_syntax("a PatchOp message is a JSON object")
    ops = body.get("Operations", body.get("operations"))
    if not isinstance(ops, list) or not ops:
        raise errors.invalid_syntax("Operations must be a non-empty list")
    if len(ops) > MAX_OPERATIONS:
        raise errors.invalid_syntax(f"at most {MAX_OPERATIONS} operations per request")
    for op in ops:
        if not isinstance(op, dict) or op.get("op") not in OPS:
            raise errors.invalid_syntax("each operation needs op add, replace or remove")
        if "path" in op and not isinstance(op["path"], str):
            raise errors.invalid_path("path must be a string")
        if op["op"] != "remove" and "value" not in op:
            raise errors.invalid_value(f"{op['op']} needs a value")
        if op["op"] == "remove" and not op.get("path") and "value" not in op:
            raise errors.no_target("remove needs a path")
    return ops


def apply(
    resource: dict[str, Any], ops: list[dict[str, Any]], schema: ResourceSchema
) -> dict[str, Any]:
    result = copy.deepcopy(resource)
    for op in ops:
        _one(result, op["op"], op.get("path"), op.get("value"), schema)
    return result


def _one(
    resource: dict[str, Any], op: str, path: str | None, value: Any, schema: ResourceSchema
) -> None:
    if not path:
        if not isinstance(value, dict):
            raise errors.invalid_value("a path-less operation needs an object value")
        for key, item in value.items():
            urn = schema.extension(key)
            if urn is not None and isinstance(item, dict):  # {"urn:…:User": {...}}
                for sub_key, sub_item in item.items():
                    _at_path(resource, op, f"{urn}:{sub_key}", sub_item, schema)
            else:
                _at_path(resource, op, key, item, schema)
        return
    _at_path(resource, op, path, value, schema)


def _container(
    resource: dict[str, Any], ref: filters.AttrRef, schema: ResourceSchema
) -> tuple[dict[str, Any], str, Any]:
    urn, attr = schema.find(ref.name, ref.uri)
    if attr is not None and attr.mutability == "readOnly":
        raise errors.mutability(f"{attr.name} is read-only")
    if attr is not None and attr.name in ("id",):
        raise errors.mutability("id is read-only")
    container = resource
    if urn is not None:
        existing = resource.get(urn)
        if not isinstance(existing, dict):
            existing = resource[urn] = {}
        container = existing
    key = attr.name if attr is not None else _existing_key(container, ref.name)
    return container, key, attr


def _existing_key(container: dict[str, Any], name: str) -> str:
    return next((k for k in container if k.lower() == name.lower()), name)


def _at_path(
    resource: dict[str, Any], op: str, text: str, value: Any, schema: ResourceSchema
) -> None:
    path = filters.parse_path(text)
    container, key, attr = _container(resource, path.ref, schema)
    if path.where is not None:
        if attr is None or not attr.multi:
            raise errors.invalid_path(f"{key} is not multi-valued")
        _filtered(container, key, attr, path, op, value)
        return
    if path.ref.sub:
        sub_attr = attr.child(path.ref.sub) if attr else None
        sub = sub_attr.name if sub_attr else path.ref.sub
        if attr is not None and attr.multi:  # emails.value: every element
            for element in container.get(key) or []:
                if isinstance(element, dict):
                    _set(element, sub, op, value, False)
            return
        parent = container.get(key)
        if not isinstance(parent, dict):
            if op == "remove":
                return
            parent = container[key] = {}
        _set(parent, sub, op, value, False)
        if not parent:
            container.pop(key, None)
        return
    _set(
        container,
        key,
        op,
        value,
        bool(attr and attr.multi),
        complex_attr=bool(attr and attr.type == "complex" and not attr.multi),
    )


def _set(
    container: dict[str, Any],
    key: str,
    op: str,
    value: Any,
    multi: bool,
    complex_attr: bool = False,
) -> None:
    if op == "remove":
        if multi and value is not None and isinstance(container.get(key), list):
            drop = value if isinstance(value, list) else [value]
            container[key] = [e for e in container[key] if e not in drop]
        else:
            container.pop(key, None)
        return
    if multi:
        items = value if isinstance(value, list) else [value]
        if op == "replace":
            container[key] = list(items)
        else:
            current = list(container.get(key) or [])
            current += [i for i in items if i not in current]
            container[key] = current
        return
    if complex_attr and isinstance(value, dict) and isinstance(container.get(key), dict):
        container[key] = {**container[key], **value}  # RFC 7644 §3.5.2.1/.3: merge
        return
    if value is None:
        container.pop(key, None)
    else:
        container[key] = value


def _filtered(
    container: dict[str, Any], key: str, attr: Any, path: filters.Path, op: str, value: Any
) -> None:
    elements = container.get(key)
    elements = list(elements) if isinstance(elements, list) else []
    assert path.where is not None
    hits = [i for i, e in enumerate(elements) if filters.matches(path.where, e, attr)]
    if op == "remove":
        if path.sub:
            for i in hits:
                if isinstance(elements[i], dict):
                    elements[i].pop(_existing_key(elements[i], path.sub), None)
        else:
            elements = [e for i, e in enumerate(elements) if i not in hits]
        container[key] = elements
        if not elements:
            container.pop(key)
        return
    if not hits:
        seed = _seed(path.where)
        if seed is None:
            raise errors.no_target(f"no {key} value matches the filter")
        elements.append(seed)
        hits = [len(elements) - 1]
    for i in hits:
        element = elements[i]
        if path.sub:
            sub_attr = attr.child(path.sub)
            element[sub_attr.name if sub_attr else path.sub] = value
        elif isinstance(value, dict) and isinstance(element, dict):
            elements[i] = {**element, **value}
        else:
            elements[i] = value
    container[key] = elements


def _seed(where: filters.Node) -> dict[str, Any] | None:
    """A new element from an eq-only filter (`emails[type eq "work"]` → {"type": "work"}):
    Entra replaces `emails[type eq "work"].value` on users that have no work email yet
    (Microsoft Learn, "Tutorial: Develop a sample SCIM endpoint", request examples)."""
    if isinstance(where, filters.Cmp) and where.op == "eq" and where.ref.sub is None:
        return {where.ref.name: where.value}
    if isinstance(where, filters.Both):
        left, right = _seed(where.left), _seed(where.right)
        return None if left is None or right is None else {**left, **right}
    return None


# -- groups -------------------------------------------------------------------------


class _Members:
    def __init__(self) -> None:
        self.add: dict[str, None] = {}
        self.remove: dict[str, None] = {}
        self.replace: list[str] | None = None

    def adding(self, ids: tuple[str, ...]) -> None:
        for member in ids:
            self.remove.pop(member, None)
            if self.replace is not None:
                if member not in self.replace:
                    self.replace.append(member)
            else:
                self.add[member] = None

    def removing(self, ids: tuple[str, ...]) -> None:
        for member in ids:
            self.add.pop(member, None)
            if self.replace is not None:
                self.replace = [m for m in self.replace if m != member]
            else:
                self.remove[member] = None

    def replacing(self, ids: tuple[str, ...]) -> None:
        self.add, self.remove, self.replace = {}, {}, list(dict.fromkeys(ids))

    def change(self) -> MemberChange:
        return MemberChange(
            add=tuple(self.add),
            remove=tuple(self.remove),
            replace=None if self.replace is None else tuple(self.replace),
        )


def _filter_ids(where: filters.Node) -> tuple[str, ...]:
    """`members[value eq "a" or value eq "b"]` → ("a", "b")."""
    if isinstance(where, filters.Cmp) and where.op == "eq" and where.ref.name.lower() == "value":
        return (str(where.value),)
    if isinstance(where, filters.Either):
        return _filter_ids(where.left) + _filter_ids(where.right)
    raise errors.invalid_filter("members can be selected only by value eq …")


def apply_group(
    raw: dict[str, Any], ops: list[dict[str, Any]]
) -> tuple[dict[str, Any], MemberChange]:
    """PATCH a group: (new raw without members, membership change)."""
    result = copy.deepcopy(raw)
    members = _Members()
    for op in ops:
        kind, text, value = op["op"], op.get("path"), op.get("value")
        if not text:
            if not isinstance(value, dict):
                raise errors.invalid_value("a path-less operation needs an object value")
            rest = {}
            for key, item in value.items():
                if key.lower() == "members":
                    _members_op(members, kind, None, item)
                else:
                    rest[key] = item
            if rest:
                _one(result, kind, None, rest, GROUP)
            continue
        path = filters.parse_path(text)
        if path.ref.name.lower() == "members" and path.ref.uri is None:
            _members_op(members, kind, path, value)
        else:
            _one(result, kind, text, value, GROUP)
    return result, members.change()


def _members_op(members: _Members, kind: str, path: filters.Path | None, value: Any) -> None:
    if path is not None and path.where is not None:
        if kind != "remove":
            raise errors.invalid_path("members are added by value, not through a filter")
        members.removing(_filter_ids(path.where))
        return
    if path is not None and path.ref.sub:
        raise errors.invalid_path("members are changed as a whole member, not a sub-attribute")
    if kind == "add":
        members.adding(member_ids(value))
    elif kind == "replace":
        members.replacing(member_ids(value))
    elif value is None:
        members.replacing(())  # remove all members
    else:
        members.removing(member_ids(value))
