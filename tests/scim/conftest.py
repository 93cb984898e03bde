"""SCIM test fixtures: an organization with SSO and Directory Sync on (set through the
core, as an admin would), and a small client that speaks SCIM to the real server."""

from __future__ import annotations

import io
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest

from broker.clock import SystemClock
from broker.core import audit, organizations, policy
from broker.core.models import Connection, Domain
from broker.ids import new_id

SCIM = "application/scim+json"


def make_org(store: Any, name: str = "Acme", domain: str = "acme.test", seat: str = "basic") -> str:
    clock = SystemClock()
    org = organizations.create_organization(store, clock, audit.CLI, name, default_seat=seat)
    now = clock.now()
    with store.transaction():
        store.domains.create(
            Domain(
                id=new_id("dom"),
                organization_id=org.id,
                domain=domain,
                state="pending",
                verification_token="t",
                created_at=now,
            )
        )
        dom = store.domains.find(org.id, domain)
        store.domains.update(dom.id, state="verified", verified_at=now)
        store.connections.create(
            Connection(
                id=new_id("conn"),
                organization_id=org.id,
                type="saml",
                preset="okta",
                name="Okta",
                state="active",
                config={},
                created_at=now,
                updated_at=now,
                tested_at=now,
            )
        )
    policy.enable_sso(store, clock, audit.CLI, org.id)
    return org.id


@dataclass
class Directory:
    org_id: str
    directory_id: str
    token: str
    base: str


def enable(store: Any, org_id: str, url: str) -> Directory:
    enabled = policy.enable_directory_sync(store, SystemClock(), audit.CLI, org_id)
    return Directory(
        org_id, enabled.directory_id, enabled.token, f"{url}/scim/v2/{enabled.directory_id}"
    )


class Scim:
    """A SCIM client bound to one directory (or a wrong token, for isolation tests)."""

    def __init__(self, session: aiohttp.ClientSession, base: str, token: str) -> None:
        self.session, self.base, self.token = session, base, token

    async def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        headers: dict[str, str] | None = None,
        raw: bytes | None = None,
        params: dict[str, str] | None = None,
    ) -> tuple[int, Any, Any]:
        sent = {"Authorization": f"Bearer {self.token}", "Content-Type": SCIM, **(headers or {})}
        data: Any = (
            io.BytesIO(raw) if raw is not None else (None if body is None else json.dumps(body))
        )
        async with self.session.request(
            method, self.base + path, data=data, headers=sent, params=params
        ) as resp:
            text = await resp.text()
            return resp.status, (json.loads(text) if text else None), resp.headers

    async def create_user(self, user_name: str, **extra: Any) -> dict[str, Any]:
        body = {
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "userName": user_name,
            "active": True,
            "emails": [{"value": user_name, "type": "work", "primary": True}],
            **extra,
        }
        status, doc, _ = await self.call("POST", "/Users", body)
        assert status == 201, doc
        return doc

    async def create_group(self, name: str, members: list[str] = ()) -> dict[str, Any]:  # type: ignore[assignment]
        body = {
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
            "displayName": name,
            "members": [{"value": m} for m in members],
        }
        status, doc, _ = await self.call("POST", "/Groups", body)
        assert status == 201, doc
        return doc


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


@pytest.fixture
async def directory(broker: Any) -> Directory:
    org_id = make_org(broker.store)
    return enable(broker.store, org_id, broker.url)


@pytest.fixture
async def scim(directory: Directory, session: aiohttp.ClientSession) -> Scim:
    return Scim(session, directory.base, directory.token)


def events_of(store: Any, org_id: str, prefix: str = "dsync.") -> list[Any]:
    return [
        e
        for e in store.events.after(0, 100_000, organization_ids=[org_id])
        if e.type.startswith(prefix)
    ]
