"""WebSocket keep-alive for every connection of a server, from one task.

Why
---
python-websockets keeps each connection alive with a task of its own: a coroutine asleep
for ``ping_interval``, with its timer and future, about 1.5 KiB per connection. A CSMS
holds thousands of mostly idle stations, so that is a tenth of what each one costs
(bench/README.md, idle RSS). One task can do the same for all of them.

Theory of operation
-------------------
Connections are spread over ``ping_interval / tick`` buckets, a new one into the bucket
whose turn is furthest away, so its first ping comes about ``ping_interval`` after it
opened and the pings of a reconnect storm are spread over the interval instead of all
falling in the same second. Every ``tick`` seconds one bucket has its turn: each of its
connections is pinged, unless the pong of its previous ping is still outstanding: then,
once ``ping_timeout`` has passed since that ping, the connection is closed with 1011 as
websockets' own keep-alive does ("keepalive ping timeout"); a peer that vanished without a
FIN is detected within ``ping_interval + ping_timeout``. The task ends by itself when no
connection is left and starts again with the next one, so the server needs no extra
lifecycle step.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import Coroutine
from typing import Any, Final

from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed

__all__ = ["CLOSE_PING_TIMEOUT", "Keepalive"]

#: The close code websockets' own keep-alive uses for an unanswered ping.
CLOSE_PING_TIMEOUT: Final = 1011
#: Seconds between two buckets' turns at most: small, so that each turn pings few connections
#: (a few hundred pings in one turn would hold the loop for milliseconds).
DEFAULT_TICK: Final = 0.1


class Keepalive:
    """Pings every added connection each ``interval`` seconds; see the module docstring.

    ``timeout`` None: an unanswered ping never closes the connection (as in websockets).
    """

    def __init__(
        self, interval: float, timeout: float | None, *, tick: float = DEFAULT_TICK
    ) -> None:
        if interval <= 0 or (timeout is not None and timeout <= 0):
            raise ValueError("ping interval and timeout must be positive")
        count = max(1, math.ceil(interval / tick))
        self.tick = interval / count
        self.timeout = timeout
        # bucket -> connection -> (pong waiter, loop time of its ping) or None before a ping
        self._buckets: list[dict[ServerConnection, tuple[asyncio.Future[float], float] | None]]
        self._buckets = [{} for _ in range(count)]
        self._where: dict[ServerConnection, int] = {}
        self._turn = 0  # the bucket whose turn is next
        self._task: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()  # pings and closes under way

    def add(self, connection: ServerConnection) -> None:
        """Keep ``connection`` alive until :meth:`discard`."""
        index = (self._turn - 1) % len(self._buckets)  # the turn furthest away
        self._buckets[index][connection] = None
        self._where[connection] = index
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run(), name="keepalive")

    def discard(self, connection: ServerConnection) -> None:
        """Stop pinging ``connection`` (it closed)."""
        index = self._where.pop(connection, None)
        if index is not None:
            del self._buckets[index][connection]

    def __len__(self) -> int:
        return len(self._where)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        next_turn = loop.time() + self.tick
        while self._where:
            await asyncio.sleep(max(0.0, next_turn - loop.time()))
            next_turn += self.tick
            index = self._turn
            self._turn = (self._turn + 1) % len(self._buckets)
            now = loop.time()
            for connection, pending in list(self._buckets[index].items()):
                if pending is not None and not pending[0].done():
                    if self.timeout is not None and now - pending[1] >= self.timeout:
                        self._later(self._close(connection))
                    continue  # its pong may still come: its next turn decides
                # A task each: ping() waits while the socket's write buffer is full, and
                # one slow station must not hold up the others' pings.
                self._later(self._ping(connection, index, now))

    async def _ping(self, connection: ServerConnection, index: int, now: float) -> None:
        try:
            pong = asyncio.ensure_future(await connection.ping())  # a Future already
        except ConnectionClosed:
            return
        pong.add_done_callback(_consume)  # failed by websockets when the connection closes
        bucket = self._buckets[index]
        if connection in bucket:
            bucket[connection] = (pong, now)

    async def _close(self, connection: ServerConnection) -> None:
        """Fail the connection (RFC 6455 §7.1.7: a close frame, then the TCP connection
        closed without waiting for the peer's), as websockets' own keep-alive does: a peer
        that stopped answering pings would not answer a closing handshake either."""
        self.discard(connection)
        with contextlib.suppress(ConnectionClosed):
            async with connection.send_context():
                connection.protocol.fail(CLOSE_PING_TIMEOUT, "keepalive ping timeout")

    def _later(self, coroutine: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


def _consume(future: asyncio.Future[float]) -> None:
    if not future.cancelled():
        future.exception()
