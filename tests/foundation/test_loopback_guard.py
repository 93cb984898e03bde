"""The test process can reach loopback only (tests/conftest.py guards every connect)."""

from __future__ import annotations

import asyncio
import socket

import pytest


@pytest.mark.parametrize("address", [("10.0.0.7", 443), ("169.254.169.254", 80)])
def test_blocking_sockets_cannot_leave_loopback(address: tuple[str, int]) -> None:
    with socket.socket() as probe, pytest.raises(ConnectionRefusedError, match="loopback"):
        probe.connect(address)


async def test_event_loop_connections_cannot_leave_loopback() -> None:
    with pytest.raises(ConnectionRefusedError, match="loopback"):
        await asyncio.open_connection("192.0.2.1", 443)


def test_loopback_still_works() -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        with socket.create_connection(server.getsockname(), timeout=2):
            pass
