"""/healthz (the process is alive) and /readyz (store reachable, schema current, keys loaded)."""

from __future__ import annotations

from aiohttp import web

from broker.errors import BrokerError
from broker.web.services import SERVICES


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    checks: dict[str, str] = {}

    def probe() -> None:
        services.store.check()
        checks["store"] = "ok"
        services.keyring.signing_key("RS256")
        services.keyring.signing_key("ES256")
        checks["keys"] = "ok"

    try:
        await services.run(probe)
    except BrokerError as exc:
        return web.json_response(
            {"status": "unavailable", "checks": checks, "reason": exc.public}, status=503
        )
    return web.json_response({"status": "ready", "checks": checks})


def setup(app: web.Application) -> None:
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
