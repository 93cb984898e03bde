"""SCIM filters and attribute paths (RFC 7644 §3.4.2.2, §3.5.2 PATH), parsed by hand.

Why not scim2-filter-parser (installed): version 0.7 parses `a or b and c` as
`(a or b) and c` (the RFC gives `and` precedence over `or`), turns every literal into a
string (so `true` and `"true"`, `1` and `"1"` cannot be told apart), has no entry point
for PATCH paths, and its sly dependency emits deprecation warnings. The grammar is small;
this recursive-descent parser is ~200 lines, table-tested (tests/scim/test_filters.py).

Precedence: `not` > `and` > `or`; parentheses group; keywords and operators are
case-insensitive; attribute names are case-insensitive (resolved against the schema).
A URN-prefixed path is split at its last colon (`urn:…:2.0:User:employeeNumber`).

The result is a small syntax tree (below) that `to_query` resolves against a resource
schema into the store's neutral query (broker.core.query), and that `matches` evaluates
in memory for PATCH value filters (`emails[type eq "work"]`).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from broker.core import query as q
from broker.scim import errors
from broker.scim.schema import Attr, ResourceSchema

OPS = frozenset({"eq", "ne", "co", "sw", "ew", "gt", "ge", "lt", "le"})
MAX_FILTER_LENGTH = 4096
MAX_DEPTH = 10  # nested parentheses, value filters and `not`s (IdPs send 1 or 2)
# Comparisons in one filter. Every IdP we know sends one or two (`userName eq "…"`,
# `externalId eq "…"`); a cap keeps the generated SQL within SQLite's parser stack and
# the trees within Python's recursion limit, so a long filter is a 400, never a 500.
MAX_TERMS = 100

_TOKEN = re.compile(
    r"""
    (?P<space>\s+)
  | (?P<string>"(?:[^"\\]|\\.)*")
  | (?P<punct>[()\[\]])
  | (?P<number>-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?(?![\w:$.-]))
  | (?P<word>[A-Za-z_$.][\w$.:\-]*|\d[\w$.:\-]*)
""",
    re.VERBOSE,
)


@dataclass(frozen=True)
class AttrRef:
    uri: str | None
    name: str
    sub: str | None = None


@dataclass(frozen=True)
class Cmp:
    ref: AttrRef
    op: str
    value: Any


@dataclass(frozen=True)
class Pr:
    ref: AttrRef


@dataclass(frozen=True)
class Both:
    left: Node
    right: Node


@dataclass(frozen=True)
class Either:
    left: Node
    right: Node


@dataclass(frozen=True)
class Neg:
    node: Node


@dataclass(frozen=True)
class ValuePath:
    ref: AttrRef  # the multi-valued attribute (ref.sub is None)
    where: Node  # relative to one element


Node = Cmp | Pr | Both | Either | Neg | ValuePath


@dataclass(frozen=True)
class Path:
    """A PATCH target: attribute, optional value filter, optional sub-attribute."""

    ref: AttrRef
    where: Node | None = None
    sub: str | None = None  # after a value filter: emails[type eq "work"].value


def split_ref(word: str) -> AttrRef:
    """`urn:…:User:manager.value` → (urn:…:User, manager, value); split at the last colon."""
    uri = None
    if ":" in word:
        uri, word = word.rsplit(":", 1)
    name, _, sub = word.partition(".")
    if (
        not name
        or not re.fullmatch(r"[A-Za-z$][\w$\-]*", name)
        or (sub and not re.fullmatch(r"[A-Za-z$][\w$\-]*", sub))
    ):
        raise errors.invalid_filter(f"invalid attribute path {word!r}")
    return AttrRef(uri, name, sub or None)


class _Parser:
    def __init__(self, text: str) -> None:
        if len(text) > MAX_FILTER_LENGTH:
            raise errors.invalid_filter("filter is too long")
        self.tokens: list[tuple[str, str]] = []
        pos = 0
        while pos < len(text):
            m = _TOKEN.match(text, pos)
            if m is None:
                raise errors.invalid_filter(f"unexpected character at {pos}: {text[pos]!r}")
            kind = m.lastgroup or ""
            if kind != "space":
                self.tokens.append((kind, m.group()))
            pos = m.end()
        self.i = 0
        self.depth = 0
        self.terms = 0

    def enter(self) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise errors.invalid_filter(f"filter is nested too deeply (at most {MAX_DEPTH} levels)")

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def next(self, what: str) -> tuple[str, str]:
        token = self.peek()
        if token is None:
            raise errors.invalid_filter(f"filter ended early: expected {what}")
        self.i += 1
        return token

    def keyword(self, *words: str) -> str | None:
        token = self.peek()
        if token and token[0] == "word" and token[1].lower() in words:
            self.i += 1
            return token[1].lower()
        return None

    def expect(self, punct: str) -> None:
        _kind, value = self.next(repr(punct))
        if value != punct:
            raise errors.invalid_filter(f"expected {punct!r}, got {value!r}")

    def done(self) -> None:
        if self.peek() is not None:
            raise errors.invalid_filter(f"unexpected {self.peek()[1]!r}")  # type: ignore[index]

    def parse_or(self) -> Node:
        self.enter()
        node = self.parse_and()
        while self.keyword("or"):
            node = Either(node, self.parse_and())
        self.depth -= 1
        return node

    def parse_and(self) -> Node:
        node = self.parse_unary()
        while self.keyword("and"):
            node = Both(node, self.parse_unary())
        return node

    def parse_unary(self) -> Node:
        if self.keyword("not"):
            self.enter()  # `not not not …` nests as deeply as parentheses do
            token = self.peek()
            if token and token[1] == "(":
                self.i += 1
                inner = self.parse_or()
                self.expect(")")
            else:
                inner = self.parse_unary()
            self.depth -= 1
            return Neg(inner)
        token = self.peek()
        if token and token[1] == "(":
            self.i += 1
            inner = self.parse_or()
            self.expect(")")
            return inner
        return self.parse_attr_expr()

    def parse_attr_expr(self) -> Node:
        kind, word = self.next("an attribute")
        if kind != "word":
            raise errors.invalid_filter(f"expected an attribute, got {word!r}")
        ref = split_ref(word)
        token = self.peek()
        if token and token[1] == "[":
            if ref.sub:
                raise errors.invalid_filter("a value filter follows the attribute itself")
            self.i += 1
            where = self.parse_or()
            self.expect("]")
            token = self.peek()
            if token and token[0] == "word" and token[1].startswith("."):
                self.i += 1  # emails[type eq "work"].value eq "…"
                sub = split_ref(token[1][1:]).name
                return ValuePath(ref, Both(where, self.parse_comparison(AttrRef(None, sub))))
            return ValuePath(ref, where)
        return self.parse_comparison(ref)

    def parse_comparison(self, ref: AttrRef) -> Node:
        self.terms += 1
        if self.terms > MAX_TERMS:
            raise errors.invalid_filter(f"filter has more than {MAX_TERMS} comparisons")
        kind, op = self.next("an operator")
        op = op.lower()
        if op == "pr":
            return Pr(ref)
        if kind != "word" or op not in OPS:
            raise errors.invalid_filter(f"unknown operator {op!r}")
        return Cmp(ref, op, self.parse_value())

    def parse_value(self) -> Any:
        kind, text = self.next("a value")
        if kind == "string":
            try:
                return json.loads(text)
            except ValueError:
                raise errors.invalid_filter(f"bad string {text}") from None
        if kind == "number":
            return float(text) if any(c in text for c in ".eE") else int(text)
        literal = {"true": True, "false": False, "null": None}
        if kind == "word" and text.lower() in literal:
            return literal[text.lower()]
        raise errors.invalid_filter(f"expected a value, got {text!r}")


def parse(text: str) -> Node:
    parser = _Parser(text)
    if not parser.tokens:
        raise errors.invalid_filter("empty filter")
    node = parser.parse_or()
    parser.done()
    return node


def parse_path(text: str) -> Path:
    """A PATCH `path` (RFC 7644 §3.5.2): attrPath, or valuePath with optional .subAttr."""
    parser = _Parser(text)
    try:
        kind, word = parser.next("an attribute")
        if kind != "word":
            raise errors.invalid_filter(f"invalid path {text!r}")
        ref = split_ref(word)
        where, sub = None, None
        token = parser.peek()
        if token and token[1] == "[":
            parser.i += 1
            where = parser.parse_or()
            parser.expect("]")
            token = parser.peek()
            if token and token[0] == "word" and token[1].startswith("."):
                parser.i += 1
                sub = split_ref(token[1][1:]).name
        parser.done()
    except errors.ScimError as exc:
        raise errors.invalid_path(exc.detail) from None
    return Path(ref, where, sub)


# -- resolution into the store's neutral query ---------------------------------------------

_KINDS: dict[str, q.Kind] = {
    "boolean": "boolean",
    "dateTime": "datetime",
    "integer": "number",
    "decimal": "number",
    "reference": "reference",
}


def _field(attr: Attr | None, path: tuple[str, ...]) -> q.Field:
    if attr is None:
        return q.Field(path=path)
    return q.Field(
        column=attr.column,
        path=() if attr.column else path,
        case_exact=attr.case_exact,
        kind=_KINDS.get(attr.type, "string"),
    )


def _check_value(field: q.Field, op: str, value: Any) -> None:
    if field.kind == "boolean" and value is not None and not isinstance(value, bool):
        raise errors.invalid_filter("a boolean attribute is compared with true or false")
    if field.kind == "boolean" and op not in ("eq", "ne"):
        raise errors.invalid_filter(f"{op} does not apply to a boolean")
    if isinstance(value, bool) and field.kind not in ("boolean",) and field.column is not None:
        raise errors.invalid_filter("true/false compared with a non-boolean attribute")


def _leaf(node: Cmp | Pr, field: q.Field) -> q.Expr:
    if isinstance(node, Pr):
        return q.Present(field)
    _check_value(field, node.op, node.value)
    return q.Compare(field, node.op, node.value)  # type: ignore[arg-type]


def to_query(node: Node, schema: ResourceSchema) -> q.Expr:
    if isinstance(node, Both):
        return q.And(to_query(node.left, schema), to_query(node.right, schema))
    if isinstance(node, Either):
        return q.Or(to_query(node.left, schema), to_query(node.right, schema))
    if isinstance(node, Neg):
        return q.Not(to_query(node.node, schema))
    if isinstance(node, ValuePath):
        key, attr = _top(schema, node.ref)
        if attr is None or not attr.multi:
            raise errors.invalid_filter(f"{node.ref.name} is not multi-valued")
        return _any(attr, key, node.where)
    key, attr = _top(schema, node.ref)
    if attr is not None and attr.multi:
        return _any(attr, key, _relative(node, AttrRef(None, node.ref.sub or "value")))
    if node.ref.sub:
        sub = attr.child(node.ref.sub) if attr else None
        if attr is not None and attr.sub and sub is None:
            raise errors.invalid_filter(f"{attr.name} has no {node.ref.sub}")
        name = sub.name if sub else node.ref.sub
        return _leaf(node, _field(sub, (*key, name)))
    return _leaf(node, _field(attr, key))


def _top(schema: ResourceSchema, ref: AttrRef) -> tuple[tuple[str, ...], Attr | None]:
    urn, attr = schema.find(ref.name, ref.uri)
    name = attr.name if attr else ref.name
    return ((urn, name) if urn else (name,)), attr


def _relative(node: Cmp | Pr, ref: AttrRef) -> Node:
    return Pr(ref) if isinstance(node, Pr) else Cmp(ref, node.op, node.value)


def _any(attr: Attr, key: tuple[str, ...], where: Node) -> q.Expr:
    element = _element(where, attr)
    value = attr.child("value")
    if value is not None and value.column:  # groups / members live in the membership table
        return element
    return q.Any(key, element)


def _element(node: Node, attr: Attr) -> q.Expr:
    if isinstance(node, Both):
        return q.And(_element(node.left, attr), _element(node.right, attr))
    if isinstance(node, Either):
        return q.Or(_element(node.left, attr), _element(node.right, attr))
    if isinstance(node, Neg):
        return q.Not(_element(node.node, attr))
    if isinstance(node, ValuePath):
        raise errors.invalid_filter("value filters cannot be nested")
    sub = attr.child(node.ref.name)
    if attr.sub and sub is None:
        raise errors.invalid_filter(f"{attr.name} has no {node.ref.name}")
    value = attr.child("value")
    if value is not None and value.column and sub is not value:
        raise errors.invalid_filter(f"{attr.name} can only be filtered by value")
    return _leaf(node, _field(sub, (sub.name if sub else node.ref.name,)))


# -- in-memory evaluation (PATCH value filters) ------------------------------------------


def matches(node: Node, element: Any, attr: Attr) -> bool:
    if isinstance(node, Both):
        return matches(node.left, element, attr) and matches(node.right, element, attr)
    if isinstance(node, Either):
        return matches(node.left, element, attr) or matches(node.right, element, attr)
    if isinstance(node, Neg):
        return not matches(node.node, element, attr)
    if isinstance(node, ValuePath):
        raise errors.invalid_filter("value filters cannot be nested")
    sub = attr.child(node.ref.name)
    if isinstance(element, dict):
        key = next((k for k in element if k.lower() == node.ref.name.lower()), None)
        actual = element.get(key) if key else None
    else:
        actual = element if node.ref.name.lower() == "value" else None
    if isinstance(node, Pr):
        return actual not in (None, "", [], {})
    return _compare(actual, node.op, node.value, sub.case_exact if sub else False)


def _compare(actual: Any, op: str, expected: Any, case_exact: bool) -> bool:
    if isinstance(actual, str) and isinstance(expected, str) and not case_exact:
        actual, expected = actual.lower(), expected.lower()
    if expected is None or actual is None:
        return (op == "eq") == (actual is expected) if op in ("eq", "ne") else False
    if op == "eq":
        return bool(actual == expected)
    if op == "ne":
        return bool(actual != expected)
    if isinstance(actual, str) and isinstance(expected, str):
        if op == "co":
            return expected in actual
        if op == "sw":
            return actual.startswith(expected)
        if op == "ew":
            return actual.endswith(expected)
    try:
        return bool(
            {
                "gt": actual > expected,
                "ge": actual >= expected,
                "lt": actual < expected,
                "le": actual <= expected,
            }[op]
        )
    except (TypeError, KeyError):
        return False


def sort_field(schema: ResourceSchema, text: str) -> q.Field:
    """`sortBy` (RFC 7644 §3.4.2.3) → the field to order by; singular attributes only."""
    ref = split_ref(text.strip())
    key, attr = _top(schema, ref)
    if attr is not None and attr.multi:
        raise errors.invalid_value(f"cannot sort by multi-valued {attr.name}")
    if ref.sub:
        sub = attr.child(ref.sub) if attr else None
        return _field(sub, (*key, sub.name if sub else ref.sub))
    return _field(attr, key)
