"""What every edge needs, wired once by broker.app: settings, store, clock, keys, DNS.

`run` executes a synchronous core call on the store thread (one per process), so the
event loop never waits on SQLite's lock or disk (docs/adr/0003).
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from aiohttp import web

from broker.clock import Clock, SystemClock
from broker.core.flows import LoginConfig
from broker.core.ports import Store, TxtResolver
from broker.crypto.secrets import SecretBox
from broker.crypto.signing import KeyRing
from broker.settings import Settings

T = TypeVar("T")


@dataclass
class Services:
    settings: Settings
    store: Store
    keyring: KeyRing
    secret_box: SecretBox
    resolver: TxtResolver
    clock: Clock = field(default_factory=SystemClock)
    executor: ThreadPoolExecutor = field(
        default_factory=lambda: ThreadPoolExecutor(max_workers=1, thread_name_prefix="store")
    )
    # The upstream OIDC edge's per-worker state (its RelyingParty: HTTP pool + provider
    # cache), set by broker.upstream_oidc.routes.setup so that its background refresher,
    # which gets only `services`, warms the very cache logins read. Typed loosely: this
    # module must not import an edge.
    upstream_oidc: object | None = None

    async def run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.executor, functools.partial(fn, *args, **kwargs))

    @property
    def certs_dir(self) -> Path:
        return self.settings.certs_dir

    @property
    def issuer(self) -> str:
        return self.settings.public_url

    @functools.cached_property
    def login_config(self) -> LoginConfig:
        """The login core's issuer and lifetimes, for this app's calls into core.login
        (passed as `config=`, so that no process-wide setting is needed)."""
        get = self.settings.get
        return LoginConfig(
            issuer=self.issuer,
            code_ttl=int(get("oidc.code_ttl_seconds")),
            session_ttl=int(get("oidc.session_ttl_seconds")),
            flow_ttl=int(get("oidc.flow_ttl_seconds")),
            refresh_ttl=int(get("oidc.refresh_token_ttl_seconds")),
        )


SERVICES: web.AppKey[Services] = web.AppKey("services", Services)
