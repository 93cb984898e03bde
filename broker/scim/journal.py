"""The SCIM request journal (ssoready's scim_requests): what each request asked, what we
answered and what changed, kept `scim.journal_retention_days` for the admin to read.

Bodies are stored with secrets redacted (passwords, tokens) and truncated; the bearer
token itself is never recorded (headers are not stored).
"""

from __future__ import annotations

import json
from typing import Any

from broker.core.directory_types import JournalEntry
from broker.scim import jsonbody

MAX_STORED = 16_384
MAX_UNAUTHENTICATED_PATH = 256  # a 401 keeps no body and a short path (service._record)
_SECRET_KEYS = frozenset({"password", "token", "secret", "authorization"})
REDACTED = "[redacted]"


def redact(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: REDACTED if k.lower() in _SECRET_KEYS else redact(v) for k, v in value.items()}
    if isinstance(value, list):
        return [redact(v) for v in value]
    return value


def redacted_body(raw: bytes) -> str | None:
    if not raw:
        return None
    try:
        text = json.dumps(redact(jsonbody.loads(raw)), separators=(",", ":"))
    except jsonbody.BodyError:  # also a body nested too deeply to walk (jsonbody.MAX_DEPTH)
        text = f"<{len(raw)} bytes, not JSON>"
    return text[:MAX_STORED]


def entry(
    *,
    directory_id: str | None,
    organization_id: str | None,
    at: float,
    method: str,
    path: str,
    status: int,
    request_body: str | None,
    response_body: bytes | None,
    change: dict[str, Any],
    user_agent: str | None,
    remote_addr: str | None,
    request_id: str | None,
    ms: float,
) -> JournalEntry:
    """`request_body` comes already redacted (redacted_body): that needs no store, so the
    caller computes it before taking the write lock."""
    response_text = None
    # Failures keep their error document; successes are summarised by `change` (the
    # resource itself is in the store), which keeps the journal small and writes cheap.
    if response_body and status >= 400:
        response_text = response_body[:MAX_STORED].decode("utf-8", "replace")
    return JournalEntry(
        directory_id=directory_id,
        organization_id=organization_id,
        at=at,
        method=method,
        path=path[:2048],
        status=status,
        request_body=request_body,
        response_body=response_text,
        change=change,
        user_agent=(user_agent or "")[:256] or None,
        remote_addr=remote_addr,
        request_id=request_id,
        ms=round(ms, 3),
    )
