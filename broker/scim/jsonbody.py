"""Parsing a SCIM request body (RFC 7644 §3.1, JSON per RFC 8259) without ever failing
with anything but ValueError.

RFC 8259 §9 lets a parser limit nesting. SCIM resources nest three levels at most
(`Operations[].value[].value`); a body nested hundreds of levels deep is an attack on
recursion (json.loads raises RecursionError, redaction and rendering recurse again),
so anything deeper than MAX_DEPTH is refused as invalid syntax, before any other code
walks it. Both the handlers and the journal's redaction parse through here.
"""

from __future__ import annotations

import json
from typing import Any

MAX_DEPTH = 64


class BodyError(ValueError):
    """The body is not JSON we accept; `public` says why, for the SCIM error."""

    def __init__(self, public: str) -> None:
        super().__init__(public)
        self.public = public


def loads(raw: bytes) -> Any:
    """The parsed body, else BodyError (not JSON, not UTF-8, or nested too deeply)."""
    try:
        document = json.loads(raw)
    except RecursionError:
        raise BodyError(_too_deep()) from None
    except (ValueError, UnicodeDecodeError):
        raise BodyError("the request body is not valid JSON") from None
    if depth(document) > MAX_DEPTH:
        raise BodyError(_too_deep())
    return document


def depth(document: Any) -> int:
    """How deeply arrays and objects nest (a scalar is 0), without recursion."""
    deepest = 0
    pending: list[tuple[Any, int]] = [(document, 0)]
    while pending:
        value, level = pending.pop()
        if isinstance(value, dict):
            children: Any = value.values()
        elif isinstance(value, list):
            children = value
        else:
            continue
        level += 1
        deepest = max(deepest, level)
        if deepest > MAX_DEPTH:
            return deepest  # no need to walk the rest
        pending.extend((child, level) for child in children)
    return deepest


def _too_deep() -> str:
    return f"the request body nests JSON more than {MAX_DEPTH} levels deep"
