"""Neutral query (broker.core.query) → parameterised SQL over directory users and groups.

Structure (column names, operators, EXISTS over json_each) comes only from the fixed
tables below; every value and every JSON path is a bound parameter, never spliced into
the text. Indexed columns (userName, externalId, id, displayName) are used directly so
that `userName eq "…"` is one index probe; other attributes are read from the stored
JSON resource. Case-insensitive attributes compare with COLLATE NOCASE (RFC 7643 §2.2,
caseExact); `co`/`sw`/`ew` use LIKE with escaped wildcards (ASCII case folding, as
SQLite's LIKE does) or `instr`/`substr` when case-exact.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from broker.core import query as q
from broker.errors import InvalidInput


@dataclass(frozen=True)
class Target:
    alias: str
    columns: dict[str, str]  # neutral column name → SQL expression
    membership: str  # SQL with one `?` selecting ids related through memberships


USERS = Target(
    alias="u",
    columns={
        "id": "u.id",
        "user_name": "u.user_name",
        "external_id": "u.external_id",
        "email": "u.email",
        "given_name": "u.given_name",
        "family_name": "u.family_name",
        "active": "(u.state = 'active')",
        "created": "u.created_at",
        "updated": "u.updated_at",
    },
    membership="u.id IN (SELECT user_id FROM directory_memberships WHERE group_id = ?)",
)
GROUPS = Target(
    alias="g",
    columns={
        "id": "g.id",
        "display_name": "g.display_name",
        "external_id": "g.external_id",
        "created": "g.created_at",
        "updated": "g.updated_at",
    },
    membership="g.id IN (SELECT group_id FROM directory_memberships WHERE user_id = ?)",
)
_RELATION = {"group": USERS, "member": GROUPS}
_COMPARE = {"eq": "=", "ne": "!=", "gt": ">", "ge": ">=", "lt": "<", "le": "<="}


def json_path(keys: tuple[str, ...]) -> str:
    for key in keys:
        if '"' in key or "\\" in key:
            raise InvalidInput(f"invalid attribute name {key!r}")
    return "$" + "".join(f'."{key}"' for key in keys)


class Builder:
    def __init__(self, target: Target) -> None:
        self.target = target
        self.params: list[Any] = []

    def where(self, expr: q.Expr) -> str:
        if isinstance(expr, q.And | q.Or):
            return _chain(expr, self.where)
        if isinstance(expr, q.Not):
            return f"({self.where(expr.expr)} IS NOT TRUE)"  # NULL too: not (a eq x)
        if isinstance(expr, q.Any):
            return self._any(expr)
        if isinstance(expr, q.In):
            return self._in(expr, f"{self.target.alias}.raw")
        if isinstance(expr, q.Present):
            return self._present(expr.field, f"{self.target.alias}.raw")
        return self._compare(expr, f"{self.target.alias}.raw")

    # -- leaves ------------------------------------------------------------------

    def _value_sql(self, field: q.Field, doc: str) -> str:
        if field.column is not None:
            sql = self.target.columns.get(field.column)
            if sql is None:
                raise InvalidInput(f"cannot filter on {field.column}")
            return sql
        if not field.path:
            return doc  # the element itself (a primitive in a multi-valued attribute)
        self.params.append(json_path(field.path))
        return f"json_extract({doc}, ?)"

    def _present(self, field: q.Field, doc: str) -> str:
        if field.column in _RELATION:
            self._check_relation(field)
            own = "user_id" if field.column == "group" else "group_id"
            alias = self.target.alias
            return f"EXISTS (SELECT 1 FROM directory_memberships m WHERE m.{own} = {alias}.id)"
        if field.column is not None:
            sql = self._value_sql(field, doc)
            return f"({sql} IS NOT NULL AND {sql} != '')"
        if not field.path:
            return f"({doc} IS NOT NULL AND {doc} != '')"
        path = json_path(field.path)
        self.params += [path, path, path, path, path]
        return (
            f"(COALESCE(json_type({doc}, ?), 'null') != 'null'"
            f" AND (json_type({doc}, ?) != 'array' OR json_array_length({doc}, ?) > 0)"
            f" AND (json_type({doc}, ?) != 'text' OR json_extract({doc}, ?) != ''))"
        )

    def _in(self, expr: q.In, doc: str) -> str:
        if not expr.values:
            return "0"
        if expr.field.column in _RELATION:
            raise InvalidInput(f"cannot list values of {expr.field.column}")
        sql = self._value_sql(expr.field, doc)
        self.params += [int(v) if isinstance(v, bool) else v for v in expr.values]
        return f"({sql} IN ({', '.join('?' for _ in expr.values)}))"

    def _check_relation(self, field: q.Field) -> None:
        if _RELATION[field.column or ""] is not self.target:
            raise InvalidInput(f"cannot filter on {field.column}")

    def _compare(self, cmp: q.Compare, doc: str) -> str:
        field, op, value = cmp.field, cmp.op, cmp.value
        if field.column in _RELATION:
            self._check_relation(field)
            if op not in ("eq", "ne"):
                raise InvalidInput("membership can only be compared with eq or ne")
            self.params.append(value)
            test = self.target.membership
            return f"({test})" if op == "eq" else f"(NOT {test})"
        if field.kind == "datetime" and isinstance(value, str):
            value = _epoch(value)
        if isinstance(value, bool):
            value = int(value)
        sql = self._value_sql(field, doc)
        textual = field.kind in ("string", "reference") and isinstance(value, str)
        collate = (" COLLATE BINARY" if field.case_exact else " COLLATE NOCASE") if textual else ""
        if value is None:
            if op == "eq":
                return f"({sql} IS NULL)"
            if op == "ne":
                return f"({sql} IS NOT NULL)"
            raise InvalidInput(f"null cannot be compared with {op}")
        if op in ("co", "sw", "ew"):
            if not isinstance(value, str):
                raise InvalidInput(f"{op} needs a string")
            return self._substring(sql, op, value, field.case_exact)
        self.params.append(value)
        if op == "ne":
            return f"({sql} IS NULL OR {sql} != ?{collate})"
        return f"({sql} {_COMPARE[op]} ?{collate})"

    def _substring(self, sql: str, op: str, value: str, case_exact: bool) -> str:
        if not case_exact:
            escaped = value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            pattern = {"co": f"%{escaped}%", "sw": f"{escaped}%", "ew": f"%{escaped}"}[op]
            self.params.append(pattern)
            return f"({sql} LIKE ? ESCAPE '\\')"
        if op == "co":
            self.params.append(value)
            return f"(instr({sql}, ?) > 0)"
        self.params += [value, value]
        if op == "sw":
            return f"(substr({sql}, 1, length(?)) = ?)"
        return f"(substr({sql}, -length(?)) = ?)"

    def _any(self, expr: q.Any) -> str:
        self.params.append(json_path(expr.path))
        inner = Builder(self.target)
        condition = inner._element(expr.where)
        self.params += inner.params
        return (
            f"EXISTS (SELECT 1 FROM json_each({self.target.alias}.raw, ?) AS e WHERE {condition})"
        )

    def _element(self, expr: q.Expr) -> str:
        """A condition on one element `e.value` of a multi-valued attribute."""
        if isinstance(expr, q.And | q.Or):
            return _chain(expr, self._element)
        if isinstance(expr, q.Not):
            return f"({self._element(expr.expr)} IS NOT TRUE)"
        if isinstance(expr, q.Any):
            raise InvalidInput("value filters cannot be nested")
        if isinstance(expr, q.In):
            return self._in(expr, "e.value")
        if isinstance(expr, q.Present):
            return self._present(expr.field, "e.value")
        return self._compare(expr, "e.value")

    def order(self, sort_by: q.Field | None, descending: bool) -> str:
        direction = "DESC" if descending else "ASC"
        alias = self.target.alias
        if sort_by is None:
            return f"{alias}.id {direction}"
        if sort_by.column is not None:
            sql = self._value_sql(sort_by, f"{alias}.raw")
        else:
            self.params.append(json_path(sort_by.path))
            sql = f"json_extract({alias}.raw, ?)"
        collate = "" if sort_by.case_exact or sort_by.kind != "string" else " COLLATE NOCASE"
        return f"{sql}{collate} {direction}, {alias}.id {direction}"


def _chain(expr: q.And | q.Or, render: Callable[[q.Expr], str]) -> str:
    """`(a OR b OR c)`, flat, for a run of the same connective: `a or b or c` parses
    into a left-deep tree, and one pair of parentheses per level would overflow SQLite's
    parser stack ("parser stack overflow") long before the filter's term limit.
    Operands are rendered left to right, so bound parameters stay in order."""
    kind = type(expr)
    operands: list[q.Expr] = []
    pending: list[q.Expr] = [expr]
    while pending:  # iterative: the tree may be as deep as the filter is long
        node = pending.pop()
        if isinstance(node, kind):
            pending += [node.right, node.left]  # type: ignore[union-attr]
        else:
            operands.append(node)
    word = " AND " if kind is q.And else " OR "
    return "(" + word.join(render(operand) for operand in operands) + ")"


# What SQLite says when a statement is too large to compile: a caller's filter, not a
# fault of ours (the SCIM edge caps terms and nesting, so this is a safety net).
_TOO_COMPLEX = ("parser stack overflow", "expression tree is too large", "too many sql variables")


@contextmanager
def too_complex_is_invalid() -> Iterator[None]:
    """Run a filtered query; a statement SQLite cannot compile raises InvalidInput."""
    try:
        yield
    except sqlite3.OperationalError as exc:
        if any(text in str(exc).lower() for text in _TOO_COMPLEX):
            raise InvalidInput("the filter is too complex", str(exc)) from None
        raise


def _epoch(text: str) -> float:
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        raise InvalidInput(f"{text!r} is not a dateTime") from None


def select(
    target: Target, table: str, scope_sql: str, scope_params: list[Any], query: q.Query
) -> tuple[str, list[Any], str, list[Any]]:
    """(page SQL, params, count SQL, params) for `query` within a scope condition."""
    builder = Builder(target)
    condition = scope_sql
    if query.filter is not None:
        condition += " AND " + builder.where(query.filter)
    where_params = [*scope_params, *builder.params]
    order_builder = Builder(target)
    order = order_builder.order(query.sort_by, query.descending)
    count_sql = f"SELECT count(*) FROM {table} {target.alias} WHERE {condition}"
    page_sql = (
        f"SELECT {target.alias}.* FROM {table} {target.alias} WHERE {condition}"
        f" ORDER BY {order} LIMIT ? OFFSET ?"
    )
    page_params = [*where_params, *order_builder.params, query.count, max(query.start_index, 1) - 1]
    return page_sql, page_params, count_sql, where_params
