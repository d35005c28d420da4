"""The server's shared keep-alive over real loopback WebSockets: a live station is pinged and
stays; a station that stops answering (a peer gone without a FIN, reliability.md A12) is
failed with 1011, as python-websockets' own keep-alive does; one task serves them all."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest
from websockets.asyncio.client import connect as raw_connect
from websockets.exceptions import ConnectionClosed

from ocppkit.protocol import OcppVersion, Router
from ocppkit.transport import Connection, serve
from ocppkit.transport.keepalive import CLOSE_PING_TIMEOUT, Keepalive

INTERVAL = 0.3


Closed = dict[str, tuple[float, int | None]]
Opened = dict[str, Connection]


@pytest.fixture
async def server() -> AsyncIterator[tuple[int, Opened, Closed]]:
    """A server pinging every 0.3 s (timeout 0.3 s); its connections, and (time, close code
    sent) of each that closed."""
    opened: Opened = {}
    closed: Closed = {}

    async def on_connect(connection: Connection) -> None:
        opened[connection.identity] = connection

    async def on_close(connection: Connection) -> None:
        sent = connection.websocket.protocol.close_sent
        closed[connection.identity] = (time.monotonic(), None if sent is None else sent.code)

    server = await serve(
        {OcppVersion.V16: Router()},
        port=0,
        on_connect=on_connect,
        on_close=on_close,
        ping_interval=INTERVAL,
        ping_timeout=INTERVAL,
    )
    try:
        yield server.sockets[0].getsockname()[1], opened, closed
    finally:
        server.close()
        await server.wait_closed()


async def test_live_station_is_pinged_and_stays(server: tuple[int, Opened, Closed]) -> None:
    port, opened, closed = server
    async with raw_connect(
        f"ws://127.0.0.1:{port}/LIVE", subprotocols=["ocpp1.6"], ping_interval=None
    ) as ws:
        await asyncio.sleep(INTERVAL * 8)
        assert ws.state.name == "OPEN"
        # The client answers pings by itself; the server measured a pong, so it pinged.
        assert opened["LIVE"].websocket.latency > 0
    await asyncio.sleep(0.1)
    assert closed["LIVE"][1] == 1000  # the client's closing handshake, echoed


async def test_silent_station_is_failed_1011_within_interval_plus_timeout(
    server: tuple[int, Opened, Closed],
) -> None:
    port, opened, closed = server
    async with raw_connect(
        f"ws://127.0.0.1:{port}/SILENT", subprotocols=["ocpp1.6"], ping_interval=None
    ) as ws:
        silenced = time.monotonic()
        ws.transport.pause_reading()  # pings are never read, so never answered
        protocol = opened["SILENT"].websocket.protocol
        for _ in range(100):
            if protocol.close_sent is not None:
                break
            await asyncio.sleep(0.02)
        failed_after = time.monotonic() - silenced
        assert protocol.close_sent is not None and protocol.close_sent.code == CLOSE_PING_TIMEOUT
        ws.transport.resume_reading()
        with pytest.raises(ConnectionClosed) as info:
            await asyncio.wait_for(ws.recv(), 5)
    assert info.value.rcvd is not None and info.value.rcvd.code == CLOSE_PING_TIMEOUT
    # First ping up to one interval after the pause, then the timeout, then the next turn.
    assert failed_after <= 3 * INTERVAL + 0.5
    await asyncio.sleep(0.1)
    assert closed["SILENT"][1] == CLOSE_PING_TIMEOUT


async def test_one_task_serves_every_connection() -> None:
    """The point of it: no keep-alive task per connection (memory per idle station)."""
    server = await serve({OcppVersion.V16: Router()}, port=0, ping_interval=INTERVAL)
    port = server.sockets[0].getsockname()[1]
    try:
        sockets = [
            await raw_connect(
                f"ws://127.0.0.1:{port}/CP{n}", subprotocols=["ocpp1.6"], ping_interval=None
            )
            for n in range(20)
        ]
        await asyncio.sleep(INTERVAL * 3)
        names = [task.get_coro().__qualname__ for task in asyncio.all_tasks()]
        assert names.count("Keepalive._run") == 1
        assert "Connection.keepalive" not in names  # websockets' task per connection
        assert all(ws.state.name == "OPEN" for ws in sockets)
        for ws in sockets:
            await ws.close()
        await asyncio.sleep(INTERVAL * 2)  # it ends by itself once no connection is left
        names = [task.get_coro().__qualname__ for task in asyncio.all_tasks()]
        assert "Keepalive._run" not in names
    finally:
        server.close()
        await server.wait_closed()


def test_interval_and_timeout_must_be_positive() -> None:
    with pytest.raises(ValueError, match="positive"):
        Keepalive(0, 1)
    with pytest.raises(ValueError, match="positive"):
        Keepalive(1, -1)
    assert len(Keepalive(1, None)) == 0
