"""Running the app: one process, or N processes sharing one port (SO_REUSEPORT).

Each worker is a full process with its own event loop and store connection; they
agree through the SQLite file (flows, codes, replay cache, sessions all live there).
SIGTERM/SIGINT stop accepting, finish in-flight requests, then exit.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import socket
import ssl
from typing import Any

from aiohttp import web

from broker.settings import Settings

log = logging.getLogger("broker.server")


def check_port(host: str, port: int) -> None:
    """Fail early, with one clear message, when the port is taken."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise OSError(f"cannot listen on {host}:{port}: {exc.strerror}") from None


def _ssl_context(settings: Settings) -> ssl.SSLContext | None:
    cert, key = settings.get("server.tls_cert"), settings.get("server.tls_key")
    if not cert:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    return context


def serve_one(
    settings: Settings, reuse_port: bool, banner: bool, setup_url: str | None = None
) -> None:
    from broker.app import make_app
    from broker.web.logs import configure

    configure(settings.get("log.level"), settings.get("log.format"))
    app = make_app(settings)
    if banner:
        app.on_startup.append(lambda app: _print_banner(settings, setup_url))
    web.run_app(
        app,
        host=settings.host,
        port=settings.port,
        reuse_port=reuse_port,
        ssl_context=_ssl_context(settings),
        print=None,
        access_log=None,
        shutdown_timeout=10,
        handle_signals=True,
    )


async def _print_banner(settings: Settings, setup_url: str | None = None) -> None:
    url = settings.public_url
    lines = [
        f"Exec Identity Broker listening on {settings.host}:{settings.port} (pid {os.getpid()})",
        f"  OIDC issuer:   {url}",
        f"  Discovery:     {url}/.well-known/openid-configuration",
        f"  Setup UI:      {url}/admin",
        f"  Health:        {url}/healthz  {url}/readyz",
    ]
    if setup_url:
        lines.append(f"  Setup UI (first run): {setup_url}")
    print("\n".join(lines), flush=True)


def serve(settings: Settings, workers: int, setup_url: str | None = None) -> int:
    check_port(settings.host, settings.port)
    if workers <= 1:
        serve_one(settings, reuse_port=False, banner=True, setup_url=setup_url)
        return 0
    context = multiprocessing.get_context("spawn")
    procs = [
        context.Process(
            target=serve_one,
            args=(settings, True, i == 0, setup_url if i == 0 else None),
            daemon=False,
        )
        for i in range(workers)
    ]
    for proc in procs:
        proc.start()

    def forward(signum: int, _frame: Any) -> None:
        for proc in procs:
            if proc.is_alive() and proc.pid:
                os.kill(proc.pid, signal.SIGTERM)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    codes = []
    for proc in procs:
        proc.join()
        codes.append(proc.exitcode or 0)
    return max(codes) if any(codes) else 0
