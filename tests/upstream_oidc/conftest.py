"""Fixtures of the upstream OIDC tests: a broker that may reach 127.0.0.1 (on its
private-address allow-list, as an admin would allow an on-prem IdP) and re-fetches a JWKS
at once on an unknown kid, and a FakeOidcIdP with TLS and its own CA."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from broker.settings import Settings
from tests.conftest import make_home
from tests.fakes.oidc_idp import FakeOidcIdP


@pytest.fixture
def settings(tmp_path: Path, port: int, monkeypatch: pytest.MonkeyPatch) -> Settings:
    home = make_home(
        tmp_path, port, monkeypatch, BROKER_NETWORK_PRIVATE_HOSTS_ALLOWLIST="127.0.0.1"
    )
    return home.with_overrides(
        upstream_oidc__jwks_min_refresh_seconds=0, upstream_oidc__timeout_seconds=2
    )


@pytest.fixture
async def idp() -> AsyncIterator[FakeOidcIdP]:
    async with FakeOidcIdP(tls=True) as server:
        yield server
