"""Serve an ASGI app with uvicorn inside the running event loop, beside the OCPP server.

The CSMS owns SIGINT / SIGTERM, so uvicorn's own signal handling is switched off. The
listening socket is bound here, before uvicorn starts: a port in use raises
:class:`OSError` from :meth:`ApiServer.start` (uvicorn itself would call ``sys.exit``
inside a task, which would tear down the whole event loop).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Iterator
from typing import Any

import uvicorn

__all__ = ["ApiServer"]


class _Server(uvicorn.Server):
    """uvicorn without signal handlers: the CSMS decides when to stop."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class ApiServer:
    """One uvicorn server bound to ``host:port`` (port 0 picks a free one).

    Args:
        app: the ASGI application.
        host: the address to listen on.
        port: the port to listen on; read :attr:`port` for the one bound.
        shutdown_timeout: seconds requests still running at :meth:`stop` may take to finish
            before they are cancelled.
    """

    def __init__(self, app: Any, host: str, port: int, *, shutdown_timeout: int = 5) -> None:
        self.host = host
        self.requested_port = port
        config = uvicorn.Config(
            app,
            host=host,
            port=port,
            log_level="warning",
            log_config=None,  # leave the application's logging configuration alone
            access_log=False,
            lifespan="off",
            ws="none",
            timeout_graceful_shutdown=shutdown_timeout,
        )
        self._server = _Server(config)
        self._socket: socket.socket | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def port(self) -> int:
        """The port actually bound (useful with port 0)."""
        if not self._server.started:
            raise RuntimeError("the API server is not started")
        sockets = self._server.servers[0].sockets
        return int(sockets[0].getsockname()[1])

    async def start(self) -> None:
        """Bind, start serving, and return once requests are accepted.

        Raises:
            OSError: the address cannot be bound (port in use, unknown host, ...).
        """
        self._socket = await _bind(self.host, self.requested_port)
        self._task = asyncio.create_task(self._server.serve(sockets=[self._socket]))
        while not self._server.started:
            if self._task.done():
                self._socket.close()
                self._task.result()  # raises what stopped it
                raise RuntimeError("the API server stopped while starting")
            await asyncio.sleep(0.005)

    async def stop(self) -> None:
        """Stop accepting, let running requests finish (or cancel them), and return."""
        if self._task is None:
            return
        self._server.should_exit = True
        try:
            await self._task
        finally:
            self._task = None
            if self._socket is not None:
                self._socket.close()
                self._socket = None


async def _bind(host: str, port: int) -> socket.socket:
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    family, type_, proto, _, address = infos[0]
    sock = socket.socket(family, type_, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind(address)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock
