"""Open an OCPP connection as a station (or any client) and run it.

The client offers its versions in order of preference (default ``ocpp2.1``, ``ocpp2.0.1``,
``ocpp1.6``); the server chooses. If the server chose none, the connection is closed and
:class:`NegotiationError` raised.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

from websockets.asyncio.client import connect as ws_connect
from websockets.typing import Subprotocol

from ocppkit.protocol.errors import LocalError
from ocppkit.protocol.router import Router
from ocppkit.protocol.session import RpcSession
from ocppkit.protocol.versions import OcppVersion, parse_version
from ocppkit.transport.connection import Connection
from ocppkit.transport.negotiation import DEFAULT_PREFERENCE

__all__ = ["NegotiationError", "connect"]


class NegotiationError(LocalError):
    """The server accepted none of the OCPP versions we offered."""


@contextlib.asynccontextmanager
async def connect(
    url: str,
    *,
    versions: Sequence[str | OcppVersion] = DEFAULT_PREFERENCE,
    routers: Mapping[OcppVersion, Router] | None = None,
    session_options: Mapping[str, Any] | None = None,
    open_timeout: float = 10.0,
    ping_interval: float | None = 20.0,
    ping_timeout: float | None = 20.0,
    max_size: int = 1 << 20,
    additional_headers: Mapping[str, str] | None = None,
    ssl: Any = None,
) -> AsyncIterator[Connection]:
    """Connect to ``url`` and yield a running :class:`Connection`; closed on exit.

    Args:
        url: ``ws[s]://host:port/path/<identity>``.
        versions: the versions to offer, most preferred first.
        routers: the router answering the server's CALLs, per version.
        session_options: keyword arguments for the :class:`RpcSession`.
        additional_headers: e.g. ``Authorization`` for security profiles 1 and 2.
        ssl: an ``ssl.SSLContext`` for ``wss://`` (profiles 2 and 3).

    Raises:
        NegotiationError: the server chose no subprotocol.
    """
    offered = [parse_version(v) for v in versions]
    kwargs: dict[str, Any] = {}
    if ssl is not None:
        kwargs["ssl"] = ssl
    websocket = await ws_connect(
        url,
        subprotocols=[Subprotocol(v.subprotocol) for v in offered],
        open_timeout=open_timeout,
        ping_interval=ping_interval,
        ping_timeout=ping_timeout,
        max_size=max_size,
        additional_headers=dict(additional_headers or {}),
        **kwargs,
    )
    if websocket.subprotocol is None:
        await websocket.close()
        raise NegotiationError(f"server accepted none of {[v.subprotocol for v in offered]}")
    version = OcppVersion.from_subprotocol(websocket.subprotocol)
    router = (routers or {}).get(version)
    connection = Connection(
        websocket,
        RpcSession(version, **dict(session_options or {})),
        router,
        identity=url.split("?", 1)[0].rstrip("/").rsplit("/", 1)[-1],
    )
    runner = asyncio.create_task(connection.run())
    try:
        yield connection
    finally:
        await connection.close()
        await runner
