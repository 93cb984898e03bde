"""A neutral query over directory users and groups: filter tree, paging and sorting.

The SCIM edge turns RFC 7644 §3.4.2 query parameters into this; the store turns it into
parameterised SQL. Nothing here knows SCIM syntax or SQL: a `Field` names either an
indexed column the store knows or a path into the stored JSON resource, and says how
to compare (case-exact or not, value kind).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Op = Literal["eq", "ne", "co", "sw", "ew", "gt", "ge", "lt", "le"]
Kind = Literal["string", "boolean", "number", "datetime", "reference"]
Scalar = str | int | float | bool | None

# Columns a store must be able to filter and sort on. `member` (groups) and `group`
# (users) test membership; `active` is the user's state.
USER_COLUMNS = frozenset(
    {
        "id",
        "user_name",
        "external_id",
        "email",
        "given_name",
        "family_name",
        "active",
        "created",
        "updated",
        "group",
    }
)
GROUP_COLUMNS = frozenset({"id", "display_name", "external_id", "created", "updated", "member"})


@dataclass(frozen=True)
class Field:
    column: str | None = None  # one of *_COLUMNS, or None for a JSON path
    path: tuple[str, ...] = ()  # keys into the raw resource (or into an element, under Any)
    case_exact: bool = False
    kind: Kind = "string"


@dataclass(frozen=True)
class Compare:
    field: Field
    op: Op
    value: Scalar


@dataclass(frozen=True)
class In:
    """The field equals one of `values` (a store reads many rows by id in one query)."""

    field: Field
    values: tuple[Scalar, ...]


@dataclass(frozen=True)
class Present:
    field: Field


@dataclass(frozen=True)
class And:
    left: Expr
    right: Expr


@dataclass(frozen=True)
class Or:
    left: Expr
    right: Expr


@dataclass(frozen=True)
class Not:
    expr: Expr


@dataclass(frozen=True)
class Any:
    """Some element of the multi-valued attribute at `path` satisfies `where`
    (fields inside `where` are relative to the element)."""

    path: tuple[str, ...]
    where: Expr


Expr = Compare | In | Present | And | Or | Not | Any


@dataclass(frozen=True)
class Query:
    filter: Expr | None = None
    start_index: int = 1  # 1-based (RFC 7644 §3.4.2.4)
    count: int = 100
    sort_by: Field | None = None
    descending: bool = False
