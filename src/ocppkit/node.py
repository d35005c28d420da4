"""Run a CSMS node: storage migrated, OCPP server and HTTP API listening, clean shutdown.

This module assembles the layers (csms below, api above it), so it sits above both and is
used by the CLI.

Shutdown (SIGINT / SIGTERM): stop the HTTP API (running requests may finish), stop
accepting stations, close every station with 1001 (going away), let in-flight handlers
finish their writes, flush the message log, close the database.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import signal

import structlog
from sqlalchemy.exc import ArgumentError, NoSuchModuleError
from websockets.asyncio.server import Server

from ocppkit.api import ApiServer, create_api
from ocppkit.csms.security import CsmsAuthenticator, server_ssl_context, tls_refusal_recorder
from ocppkit.csms.service import CsmsService
from ocppkit.csms.settings import CsmsSettings, SettingsError
from ocppkit.logs import configure_logging
from ocppkit.storage import Database
from ocppkit.transport import serve
from ocppkit.transport.rate_limit import RateLimiter

__all__ = ["run_csms", "start_csms"]

_log = structlog.get_logger("ocppkit.csms")


class RunningCsms:
    """A started CSMS: its service, servers and background tasks; ``await stop()`` ends it."""

    def __init__(
        self,
        service: CsmsService,
        server: Server,
        log_task: asyncio.Task[None],
        api_server: ApiServer,
    ) -> None:
        self.service = service
        self.server = server
        self.api_server = api_server
        self._log_task = log_task

    @property
    def port(self) -> int:
        """The OCPP port actually bound (useful with port 0)."""
        return int(self.server.sockets[0].getsockname()[1])

    @property
    def api_port(self) -> int:
        """The HTTP API port actually bound (useful with ``api_port=0``)."""
        return self.api_server.port

    async def stop(self) -> None:
        """Stop the API, stop accepting, close stations with 1001, flush, close the database."""
        await self.api_server.stop()
        self.server.close()  # websockets closes each connection with 1001
        await self.server.wait_closed()
        self._log_task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._log_task
        await self.service.committer.close()
        await self.service.db.close()


async def start_csms(settings: CsmsSettings) -> RunningCsms:
    """Migrate the database and start listening; returns once stations can connect."""
    tls = server_ssl_context(settings)  # before anything starts: bad files fail fast
    try:
        database = Database(settings.database)
    except (ArgumentError, NoSuchModuleError, ImportError) as exc:
        first_line = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise SettingsError(f"invalid database URL {settings.database!r}: {first_line}") from None
    try:
        await database.migrate()
        service = CsmsService(settings, database)
        await service.prune_message_log()  # at start; then hourly in run_message_log
    except Exception:
        await database.close()
        raise
    authenticator = CsmsAuthenticator(settings, database)
    server = await serve(
        service.routers,
        settings.host,
        settings.port,
        on_connect=service.on_connect,
        on_close=service.on_close,
        observer=service.observe,
        session_options={
            "call_timeout": settings.call_timeout,
            "max_frame_size": settings.max_frame_size,
        },
        max_size=settings.max_frame_size,
        max_incoming=settings.max_inbound_queue,
        rate_limiter=lambda: RateLimiter(settings.max_messages_per_second, settings.message_burst),
        open_timeout=settings.handshake_timeout,
        authenticate=authenticator if authenticator.needed else None,
        ssl=tls,
        on_tls_refusal=tls_refusal_recorder(service.metrics),
    )
    api_server = ApiServer(create_api(service), settings.api_host, settings.api_port)
    try:
        await api_server.start()
    except BaseException:
        server.close()
        await server.wait_closed()
        await database.close()
        raise
    log_task = asyncio.create_task(service.run_message_log())
    return RunningCsms(service, server, log_task, api_server)


def tune_gc() -> None:
    """Keep CPython's cyclic garbage collector from pausing the loop under thousands of stations.

    Everything alive after start-up (modules, schemas, decoders, the app) is moved out of the
    collector's sight (``gc.freeze``), and a young-generation collection waits for 50 000 net
    allocations instead of 700: with thousands of connections, full collections otherwise
    run every few seconds and pause the loop for 0.2-1.5 s each (bench/README.md).
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 20)


async def run_csms(settings: CsmsSettings) -> None:
    """Run until SIGINT or SIGTERM, then shut down cleanly."""
    configure_logging(settings.log_level, settings.log_format)
    running = await start_csms(settings)
    tune_gc()
    _log.info(
        "csms listening",
        host=settings.host,
        port=running.port,
        api=f"http://{settings.api_host}:{running.api_port}/docs",
        database=running.service.db.url.render_as_string(hide_password=True),
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        _log.info("csms stopping")
        await running.stop()
