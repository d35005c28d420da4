"""Run a CSMS node: storage migrated, OCPP server listening, clean shutdown on a signal.

Shutdown (SIGINT / SIGTERM): stop accepting, close every station with 1001 (going away),
let in-flight handlers finish their writes, flush the message log, close the database.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal

import structlog
from sqlalchemy.exc import ArgumentError, NoSuchModuleError
from websockets.asyncio.server import Server

from ocppkit.csms.service import CsmsService
from ocppkit.csms.settings import CsmsSettings, SettingsError
from ocppkit.storage import Database
from ocppkit.transport import serve

__all__ = ["run_csms", "start_csms"]

_log = structlog.get_logger("ocppkit.csms")


class RunningCsms:
    """A started CSMS: its service, server and background tasks; ``await stop()`` ends it."""

    def __init__(
        self,
        service: CsmsService,
        server: Server,
        log_task: asyncio.Task[None],
    ) -> None:
        self.service = service
        self.server = server
        self._log_task = log_task

    @property
    def port(self) -> int:
        """The OCPP port actually bound (useful with port 0)."""
        return int(self.server.sockets[0].getsockname()[1])

    async def stop(self) -> None:
        """Stop accepting, close stations with 1001, flush the log, close the database."""
        self.server.close()  # websockets closes each connection with 1001
        await self.server.wait_closed()
        self._log_task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._log_task
        await self.service.db.close()


async def start_csms(settings: CsmsSettings) -> RunningCsms:
    """Migrate the database and start listening; returns once stations can connect."""
    try:
        database = Database(settings.database)
    except (ArgumentError, NoSuchModuleError, ImportError) as exc:
        first_line = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise SettingsError(f"invalid database URL {settings.database!r}: {first_line}") from None
    try:
        await database.migrate()
    except Exception:
        await database.close()
        raise
    service = CsmsService(settings, database)
    server = await serve(
        service.routers,
        settings.host,
        settings.port,
        on_connect=service.on_connect,
        observer=service.observe,
        session_options={
            "call_timeout": settings.call_timeout,
            "max_frame_size": settings.max_frame_size,
        },
        max_size=settings.max_frame_size,
    )
    log_task = asyncio.create_task(service.run_message_log())
    return RunningCsms(service, server, log_task)


async def run_csms(settings: CsmsSettings) -> None:
    """Run until SIGINT or SIGTERM, then shut down cleanly."""
    running = await start_csms(settings)
    _log.info(
        "csms listening",
        host=settings.host,
        port=running.port,
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
