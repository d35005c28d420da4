"""The per-connection rate limit over real loopback WebSockets (reliability.md H1): a station
that floods is throttled and then closed with 1008; another station is served meanwhile."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import UTC, datetime
from typing import Any

from websockets.asyncio.client import connect as raw_connect
from websockets.exceptions import ConnectionClosed

from ocppkit.messages import v16
from ocppkit.protocol import OcppVersion, Router
from ocppkit.transport import Connection, serve
from ocppkit.transport.rate_limit import RateLimiter


def _router() -> Router:
    router = Router()

    @router.on("Heartbeat")
    def heartbeat(request: v16.HeartbeatRequest, conn: Connection) -> Any:
        return v16.HeartbeatResponse(current_time=datetime.now(UTC))

    return router


async def test_flooding_station_is_throttled_then_closed_1008_others_unaffected() -> None:
    server = await serve(
        {OcppVersion.V16: _router()},
        port=0,
        rate_limiter=lambda: RateLimiter(50, 10, abuse_seconds=1.0, window=10.0),
    )
    port = server.sockets[0].getsockname()[1]
    try:
        async with (
            raw_connect(f"ws://127.0.0.1:{port}/flood", subprotocols=["ocpp1.6"]) as flood,
            raw_connect(f"ws://127.0.0.1:{port}/calm", subprotocols=["ocpp1.6"]) as calm,
        ):
            started = time.monotonic()
            for n in range(100):  # 2 s worth at 50/s: 90 over the burst
                await flood.send(json.dumps([2, f"f{n}", "Heartbeat", {}]))
            answered = 0
            calm_latencies = []
            reader = asyncio.create_task(_count_replies(flood))
            for n in range(5):
                sent = time.monotonic()
                await calm.send(json.dumps([2, f"c{n}", "Heartbeat", {}]))
                reply = json.loads(await calm.recv())
                calm_latencies.append(time.monotonic() - sent)
                assert reply[0] == 3
            answered = await reader
            elapsed = time.monotonic() - started
            assert flood.close_code == 1008
            assert answered < 100  # the flood was cut off, not served at full speed
            assert elapsed >= 0.9  # ... after being throttled for the abuse time
            assert max(calm_latencies) < 0.5
    finally:
        server.close()
        await server.wait_closed()


async def _count_replies(ws: Any) -> int:
    answered = 0
    try:
        while True:
            json.loads(await ws.recv())
            answered += 1
    except ConnectionClosed:
        return answered
