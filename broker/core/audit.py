"""Audit entries: who changed what, when and from where (never secrets)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from broker.core.models import AuditEntry
from broker.core.ports import Store


@dataclass(frozen=True)
class Actor:
    """Who acts: 'cli', 'admin:adm_…', 'scim:dir_…', 'system'; and from where."""

    name: str
    remote_addr: str | None = None
    correlation_id: str | None = None


CLI = Actor("cli")
SYSTEM = Actor("system")


def record(
    store: Store,
    actor: Actor,
    action: str,
    now: float,
    *,
    organization_id: str | None = None,
    target: str | None = None,
    **detail: Any,
) -> None:
    store.audit.append(
        AuditEntry(
            actor=actor.name,
            action=action,
            organization_id=organization_id,
            target=target,
            correlation_id=actor.correlation_id,
            remote_addr=actor.remote_addr,
            detail=detail,
            at=now,
        )
    )
