"""A real webhook receiver on 127.0.0.1 that can answer 2xx, fail, hang, redirect, be
down, or answer 200 with an endless body (`huge`: HUGE_BYTES, streamed, counting what the
broker let it send).

It verifies nothing itself: tests verify the recorded bytes with the `standardwebhooks`
package, exactly as Exec would.
"""

from __future__ import annotations

import asyncio
import json
import socket
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.conftest import free_port

HUGE_BYTES = 10 * 1024 * 1024
HUGE_PREFIX = "".join(f"line {i:04d} of a very long answer\n" for i in range(40))
_CHUNK = 64 * 1024


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes
    status: int

    @property
    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class WebhookSink:
    port: int = field(default_factory=free_port)
    mode: str = "ok"  # ok | fail | hang | redirect | huge
    hang_seconds: float = 5.0
    fail_next: int = 0  # answer 500 to the next N requests, then `mode`
    received: list[Received] = field(default_factory=list)
    huge_sent: list[int] = field(default_factory=list)  # bytes out per `huge` answer
    # Per `huge` answer: None while it is being written, then whether the whole body went out.
    huge_finished: list[bool | None] = field(default_factory=list)
    _runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/exec"

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        status = 204
        if self.fail_next > 0:
            self.fail_next -= 1
            status = 500
        elif self.mode == "fail":
            status = 503
        elif self.mode == "hang":
            # Answer after the broker gave up: recorded as 408, since the sender never saw
            # a 2xx the receiver must treat it as not delivered (and de-duplicate by id).
            await asyncio.sleep(self.hang_seconds)
            status = 408
        elif self.mode == "redirect":
            status = 302
        elif self.mode == "huge":
            status = 200
        self.received.append(Received(dict(request.headers), body, status))
        if self.mode == "huge" and status == 200:
            return await self._huge(request)
        if status == 302:
            return web.Response(status=302, headers={"Location": "http://127.0.0.1:9/"})
        if status >= 500:
            return web.Response(status=status, text="receiver unhappy " + "x" * 1000)
        return web.Response(status=status)

    async def _huge(self, request: web.Request) -> web.StreamResponse:
        """HUGE_BYTES in chunks, each written only when the last one drained: a sender
        that stops reading stalls this loop, and its hang-up ends it early."""
        sock = request.transport.get_extra_info("socket") if request.transport else None
        if sock is not None:
            # A fixed send buffer (no autotuning up to tcp_wmem's max, several MB on some
            # hosts): what the kernels can hold stays far below HUGE_BYTES, so a sender that
            # stops reading really stops this loop.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, _CHUNK)
        response = web.StreamResponse(status=200, headers={"Content-Type": "text/plain"})
        response.content_length = HUGE_BYTES
        await response.prepare(request)
        prefix = HUGE_PREFIX.encode()
        sent, index = 0, len(self.huge_sent)
        self.huge_sent.append(0)
        self.huge_finished.append(None)
        try:
            while sent < HUGE_BYTES:
                chunk = (prefix if sent == 0 else b"") + b"y" * _CHUNK
                chunk = chunk[: HUGE_BYTES - sent]
                await response.write(chunk)
                sent += len(chunk)
                self.huge_sent[index] = sent
            await response.write_eof()
            self.huge_finished[index] = True
        except ConnectionError:
            # The broker hung up with the rest unread: what a careful sender does.
            self.huge_finished[index] = False
        return response

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/hooks/exec", self._handle)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port, reuse_address=True).start()

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def accepted(self) -> list[Received]:
        return [r for r in self.received if 200 <= r.status < 300]

    async def wait_for(self, count: int, timeout: float = 15.0) -> list[Received]:
        deadline = asyncio.get_running_loop().time() + timeout
        while len(self.accepted()) < count:
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(
                    f"{len(self.accepted())} of {count} webhooks accepted; "
                    f"{len(self.received)} requests in all"
                )
            await asyncio.sleep(0.02)
        return self.accepted()
