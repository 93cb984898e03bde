"""make_app(settings) → the aiohttp application: services, middlewares, every edge's routes.

This module and broker.cli are the only places that wire concrete adapters (SQLite,
dnspython) to the core's ports (DESIGN §3).
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor

from aiohttp import web

from broker.clock import Clock, SystemClock
from broker.crypto.secrets import SecretBox
from broker.crypto.signing import KeyRing
from broker.settings import Settings
from broker.storage.store import SQLiteStore
from broker.web import health
from broker.web.middlewares import make_middlewares
from broker.web.render import ENV_KEY, make_environment, ui_dir
from broker.web.services import SERVICES, Services

log = logging.getLogger("broker.app")

# Each edge module exposes `setup(app)`; listed here so that the edges never import
# each other and each can be left out of a minimal build.
EDGE_MODULES: tuple[str, ...] = (
    "broker.api",
    "broker.oidc.routes",
    "broker.admin.routes",
    "broker.saml.routes",
    "broker.scim.routes",
    "broker.upstream_oidc.routes",
)

# Each background module exposes `async def run(services)`; started once per worker.
BACKGROUND_MODULES: tuple[str, ...] = (
    "broker.api.webhook_worker",
    "broker.oidc.backchannel",
    "broker.admin.domain_recheck",
    "broker.saml.refresh",
    "broker.upstream_oidc.refresh",
)


def build_services(settings: Settings, clock: Clock | None = None) -> Services:
    from broker.dns.txt import TxtLookup

    store = SQLiteStore.open(settings.database, settings.get("storage.busy_timeout_ms"))
    return Services(
        settings=settings,
        store=store,
        keyring=KeyRing(store, settings.get("keys.rotation_grace_seconds")),
        secret_box=SecretBox.load(settings.certs_dir),
        resolver=TxtLookup(settings.get("dns.resolvers"), settings.get("dns.timeout_seconds")),
        clock=clock or SystemClock(),
    )


def make_app(
    settings: Settings, services: Services | None = None, background: bool = True
) -> web.Application:
    app = web.Application(
        middlewares=make_middlewares(settings.get("server.trusted_proxies")),
        client_max_size=settings.get("server.max_body_bytes"),
    )
    app[SERVICES] = services or build_services(settings)
    app[ENV_KEY] = make_environment()
    health.setup(app)
    app.router.add_static("/static", ui_dir() / "static", append_version=False)
    if "broker.saml.routes" in EDGE_MODULES:
        _register_saml_tools()
    for name in EDGE_MODULES:
        importlib.import_module(name).setup(app)
    app.cleanup_ctx.append(_services_lifecycle)
    if background:
        app.cleanup_ctx.append(_background_tasks)
    return app


def _register_saml_tools() -> None:
    """The setup UI reads SAML metadata parsing, SP endpoints and preset guidance through
    the core (broker.admin never imports broker.saml)."""
    from broker.core import connection_tools
    from broker.saml import endpoints, idp_settings, presets

    connection_tools.register(
        connection_tools.SamlTools(
            sp_summary=endpoints.sp_summary,
            start_path=endpoints.start_path,
            from_xml=lambda xml, now: idp_settings.from_xml(xml, now),
            from_url=idp_settings.from_url,
            manual=lambda entity, url, certs, now: idp_settings.manual(entity, url, certs, now),
            preset=presets.get_preset,
            preset_defaults=presets.preset_defaults,
        )
    )


async def _services_lifecycle(app: web.Application) -> AsyncIterator[None]:
    services = app[SERVICES]
    await services.run(services.keyring.refresh, True)
    yield
    services.executor.shutdown(wait=True)
    services.store.close()


async def _checkpoints(services: Services, every: float = 1.0) -> None:
    """Move WAL pages into the database file off the request path, on a thread of its own
    (a checkpoint fsyncs; inside a request it would hold the write lock meanwhile)."""
    loop = asyncio.get_running_loop()
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="checkpoint") as pool:
        while True:
            await asyncio.sleep(every)
            try:
                await loop.run_in_executor(pool, services.store.checkpoint)
            except Exception:
                log.warning("checkpoint failed", exc_info=True)


async def _background_tasks(app: web.Application) -> AsyncIterator[None]:
    services = app[SERVICES]
    tasks = [
        asyncio.create_task(importlib.import_module(name).run(services), name=name)
        for name in BACKGROUND_MODULES
    ]
    tasks.append(asyncio.create_task(_checkpoints(services), name="checkpoints"))
    yield
    for task in tasks:
        task.cancel()
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
