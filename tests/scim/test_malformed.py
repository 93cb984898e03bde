"""Malformed input is a SCIM 400, never a 500 (RFC 7644 §3.12): filters too long for
SQLite's parser, JSON nested past Python's recursion limit (before and after
authentication), paging numbers past 64 bits."""

from __future__ import annotations

import json
from typing import Any

import aiohttp
import pytest

from broker.scim import filters, journal, jsonbody
from tests.scim.conftest import SCIM, Scim

ERROR = "urn:ietf:params:scim:api:messages:2.0:Error"


def _ors(term: str, n: int) -> str:
    return " or ".join(term.format(i=i) for i in range(n))


@pytest.mark.parametrize(
    ("resource", "text"),
    [
        ("/Users", _ors("title pr", 500)[:4000].rsplit(" or ", 1)[0]),  # the reviewer's
        ("/Users", _ors('emails[value eq "x{i}"]', 200)[:4000].rsplit(" or ", 1)[0]),
        ("/Users", _ors('userName eq "u{i}"', 101)),
        ("/Groups", " and ".join(["displayName pr"] * 101)),
        ("/Users", "not " * 900 + "title pr"),
        ("/Users", "(" * 40 + "title pr" + ")" * 40),
        ("/Users", "emails[" + "not (" * 40 + "value pr" + ")" * 40 + "]"),
    ],
)
async def test_oversized_filters_are_invalid_filter(scim: Scim, resource: str, text: str) -> None:
    status, doc, headers = await scim.call("GET", resource, params={"filter": text})
    assert status == 400, doc
    assert doc["schemas"] == [ERROR] and doc["scimType"] == "invalidFilter"
    assert headers["Content-Type"].startswith(SCIM)


@pytest.mark.parametrize(
    ("resource", "text"),
    [
        # The largest filters we accept still run in SQLite (flat AND/OR chains).
        ("/Users", _ors("title pr", filters.MAX_TERMS)),
        ("/Users", _ors('emails[value eq "x{i}"]', filters.MAX_TERMS)),
        ("/Users", _ors('userName eq "u{i}" and not (title pr)', filters.MAX_TERMS // 2)),
        ("/Groups", _ors('members[value eq "usr_{i}"]', filters.MAX_TERMS)),
        # The deepest: alternating or/and/not at the nesting limit.
        (
            "/Users",
            "".join(
                f'userName eq "a{i}" {"or" if i % 2 else "and"} not ('
                for i in range(filters.MAX_DEPTH // 2 - 1)
            )
            + "title pr"
            + ")" * (filters.MAX_DEPTH // 2 - 1),
        ),
        (
            "/Users",
            "(" * (filters.MAX_DEPTH - 1) + "title pr" + ")" * (filters.MAX_DEPTH - 1),
        ),
        (
            "/Users",
            "not " * (filters.MAX_DEPTH - 1) + "title pr",
        ),
    ],
)
async def test_filters_at_the_limits_run(scim: Scim, resource: str, text: str) -> None:
    await scim.create_user("ann@acme.test", title="x")
    status, doc, _ = await scim.call("GET", resource, params={"filter": text})
    assert status == 200, doc


async def test_many_terms_give_the_right_answer(scim: Scim) -> None:
    ids = [(await scim.create_user(f"u{i}@acme.test"))["id"] for i in range(3)]
    text = _ors('userName eq "nobody{i}"', filters.MAX_TERMS - 2) + (
        ' or userName eq "u0@acme.test" or id eq "' + ids[2] + '"'
    )
    status, doc, _ = await scim.call("GET", "/Users", params={"filter": text})
    assert status == 200 and sorted(r["id"] for r in doc["Resources"]) == sorted([ids[0], ids[2]])
    text = " and ".join(
        ['userName sw "u"'] * (filters.MAX_TERMS - 1) + ['not (userName ew "1@acme.test")']
    )
    status, doc, _ = await scim.call("GET", "/Users", params={"filter": text})
    assert status == 200 and doc["totalResults"] == 2


DEEP = b"[" * 200_000 + b"]" * 200_000
PARSEABLE_BUT_DEEP = b'{"userName":' + b"[" * 500 + b"]" * 500 + b"}"


@pytest.mark.parametrize("raw", [DEEP, PARSEABLE_BUT_DEEP], ids=["recursion", "depth"])
@pytest.mark.parametrize(
    ("method", "path"), [("POST", "/Users"), ("POST", "/Groups"), ("PATCH", "/Users/usr_x")]
)
async def test_deeply_nested_json_is_invalid_syntax(
    scim: Scim, raw: bytes, method: str, path: str
) -> None:
    status, doc, headers = await scim.call(method, path, raw=raw)
    assert status == 400, doc
    assert doc["scimType"] == "invalidSyntax" and "nests" in doc["detail"]
    assert headers["Content-Type"].startswith(SCIM)


async def test_deeply_nested_json_without_a_token_is_401(
    broker: Any, directory: Any, session: aiohttp.ClientSession
) -> None:
    for raw in (DEEP, PARSEABLE_BUT_DEEP):
        status, doc, headers = await Scim(session, directory.base, "wrong").call(
            "POST", "/Users", raw=raw
        )
        assert status == 401 and doc["schemas"] == [ERROR], doc
        assert headers["Content-Type"].startswith(SCIM)


def test_journal_redaction_survives_any_nesting() -> None:
    assert journal.redacted_body(DEEP) == f"<{len(DEEP)} bytes, not JSON>"
    assert journal.redacted_body(PARSEABLE_BUT_DEEP) == (
        f"<{len(PARSEABLE_BUT_DEEP)} bytes, not JSON>"
    )
    nested: Any = {"password": "p"}
    for _ in range(jsonbody.MAX_DEPTH - 1):
        nested = [nested]
    assert jsonbody.depth(nested) == jsonbody.MAX_DEPTH
    assert "[redacted]" in (journal.redacted_body(json.dumps(nested).encode()) or "")


async def test_paging_numbers_are_clamped(scim: Scim) -> None:
    for i in range(3):
        await scim.create_user(f"u{i}@acme.test")
    for params, start, shown in (
        ({"startIndex": "99999999999999999999"}, 2**31, 0),
        ({"startIndex": "-99999999999999999999", "count": "2"}, 1, 2),
        ({"startIndex": "0", "count": "99999999999999999999"}, 1, 3),
        ({"startIndex": "-3", "count": "-5"}, 1, 0),
        ({"startIndex": "2", "count": "1"}, 2, 1),
    ):
        status, doc, _ = await scim.call("GET", "/Users", params=params)
        assert status == 200, (params, doc)
        assert doc["startIndex"] == start and doc["itemsPerPage"] == shown, params
        assert doc["totalResults"] == 3
    status, doc, _ = await scim.call("GET", "/Users", params={"startIndex": "1e3"})
    assert status == 400 and doc["scimType"] == "invalidValue"


def test_the_store_refuses_a_query_sqlite_cannot_compile(broker: Any, directory: Any) -> None:
    """Safety net below the edge's caps: a query too deep for SQLite's parser (built here
    directly, past the filter parser's limits) is InvalidInput, never an OperationalError."""
    from broker.core import query as q
    from broker.errors import InvalidInput

    leaf: q.Expr = q.Present(q.Field(column="user_name"))
    expr = leaf
    for _ in range(60):
        expr = q.And(leaf, q.Not(q.Or(leaf, expr)))
    for repo in (broker.store.users, broker.store.groups):
        field = "user_name" if repo is broker.store.users else "display_name"
        deep = expr if field == "user_name" else _renamed(expr, field)
        with pytest.raises(InvalidInput):
            repo.query(directory.directory_id, q.Query(filter=deep))


def _renamed(expr: Any, column: str) -> Any:
    from dataclasses import replace

    from broker.core import query as q

    if isinstance(expr, q.Present):
        return q.Present(replace(expr.field, column=column))
    if isinstance(expr, q.Not):
        return q.Not(_renamed(expr.expr, column))
    return type(expr)(_renamed(expr.left, column), _renamed(expr.right, column))
