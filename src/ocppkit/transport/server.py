"""A WebSocket server that turns each accepted socket into a :class:`Connection`.

Minimal but real: subprotocol negotiation in the client's order, the identity from the last
path segment (refused with HTTP 400 before the upgrade when invalid), an immediate close
(1002) when no subprotocol matches, and every limit as a keyword argument. Authentication,
registries and persistence belong to the CSMS built on top of it.
"""

from __future__ import annotations

import asyncio
import http
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Final

from websockets.asyncio.server import Server, ServerConnection
from websockets.asyncio.server import serve as ws_serve
from websockets.datastructures import Headers
from websockets.http11 import Request, Response
from websockets.typing import Subprotocol

from ocppkit.protocol.identity import InvalidIdentityError, identity_from_path
from ocppkit.protocol.router import Router
from ocppkit.protocol.session import RpcSession
from ocppkit.protocol.versions import OcppVersion
from ocppkit.transport.connection import Connection, FrameObserver
from ocppkit.transport.negotiation import choose_subprotocol

__all__ = ["CLOSE_NO_SUBPROTOCOL", "DEFAULT_BACKLOG", "serve"]

#: Close code when the client offered no OCPP subprotocol we speak (protocol error).
CLOSE_NO_SUBPROTOCOL: Final = 1002
#: asyncio's default listen backlog of 100 overflows in a reconnect storm
#: (shared/tooling-notes.md); thousands of stations reconnecting at once need more.
DEFAULT_BACKLOG: Final = 4096

OnConnect = Callable[[Connection], Awaitable[None]]


async def serve(
    routers: Mapping[OcppVersion, Router],
    host: str = "127.0.0.1",
    port: int = 9000,
    *,
    on_connect: OnConnect | None = None,
    observer: FrameObserver | None = None,
    session_options: Mapping[str, Any] | None = None,
    open_timeout: float = 10.0,
    ping_interval: float | None = 20.0,
    ping_timeout: float | None = 20.0,
    max_size: int = 1 << 20,
    max_queue: int = 16,
    backlog: int = DEFAULT_BACKLOG,
    compression: str | None = "deflate",
) -> Server:
    """Start serving OCPP on ``host:port``; the versions served are the keys of ``routers``.

    Args:
        routers: the router answering stations of each version.
        on_connect: awaited with each new connection while it runs (e.g. to register it);
            the connection is closed when it raises.
        observer: sees every frame in and out (see :class:`Connection`).
        session_options: keyword arguments for each :class:`RpcSession` (timeouts, limits).
        open_timeout: seconds a client may take to complete the handshake.
        ping_interval, ping_timeout: WebSocket keep-alive; None disables it.
        max_size: largest frame in bytes; bigger ones close the connection with 1009.
        max_queue: frames websockets buffers before it stops reading.
        backlog: the listen backlog.
        compression: ``"deflate"`` (permessage-deflate, required of a 2.0.1 CSMS) or None.

    Returns:
        The running ``websockets`` server (``close()`` / ``wait_closed()`` to stop it).
    """
    supported = tuple(routers)
    options = dict(session_options or {})

    def select(connection: ServerConnection, offered: Sequence[Subprotocol]) -> Subprotocol | None:
        chosen = choose_subprotocol(offered, supported)
        return Subprotocol(chosen) if chosen else None

    def check_request(connection: ServerConnection, request: Request) -> Response | None:
        try:
            identity_from_path(request.path)
        except InvalidIdentityError as exc:
            return _refuse(http.HTTPStatus.BAD_REQUEST, str(exc))
        return None

    async def handle(websocket: ServerConnection) -> None:
        if websocket.subprotocol is None:
            await websocket.close(CLOSE_NO_SUBPROTOCOL, "no supported OCPP subprotocol offered")
            return
        version = OcppVersion.from_subprotocol(websocket.subprotocol)
        assert websocket.request is not None
        identity = identity_from_path(websocket.request.path)
        connection = Connection(
            websocket,
            RpcSession(version, **options),
            routers[version],
            identity=identity,
            observer=observer,
        )
        await run_connection(connection, on_connect)

    return await ws_serve(
        handle,
        host,
        port,
        select_subprotocol=select,
        process_request=check_request,
        open_timeout=open_timeout,
        ping_interval=ping_interval,
        ping_timeout=ping_timeout,
        max_size=max_size,
        max_queue=max_queue,
        backlog=backlog,
        compression=compression,
    )


async def run_connection(connection: Connection, on_connect: OnConnect | None) -> None:
    """Run ``connection`` and, beside it, the application's ``on_connect``."""
    runner = asyncio.create_task(connection.run())
    try:
        if on_connect is not None:
            await on_connect(connection)
    except Exception:
        connection.log.exception("on_connect failed; closing")
        await connection.close(1011, "internal error")
    await runner


def _refuse(status: http.HTTPStatus, text: str) -> Response:
    body = f"{status.value} {status.phrase}: {text}\n".encode()
    headers = Headers(
        [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(body)))]
    )
    return Response(status.value, status.phrase, headers, body)
