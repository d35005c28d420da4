"""Shared fixtures of the robustness checklist (reliability.md §4): a real CSMS on loopback,
raw WebSocket stations that send exact frames, and a database probe for "nothing persisted".

Conventions of the checklist, as these helpers implement them:

* "stays up": the *same* WebSocket then answers a valid CALL with a CALLRESULT
  (:meth:`RawStation.assert_stays_up`);
* "nothing persisted": no new row in any table except ``message_log``
  (:func:`row_counts` before and after; :func:`assert_nothing_persisted`).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.engine import make_url
from websockets.asyncio.client import ClientConnection
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import ConnectionClosed
from websockets.typing import Subprotocol

from ocppkit.node import RunningCsms
from ocppkit.storage import Database
from ocppkit.storage.models import Base

#: Every table but the message log, which records bad frames on purpose.
PERSISTED_TABLES = tuple(t.name for t in Base.metadata.sorted_tables if t.name != "message_log")

BOOT: dict[str, dict[str, Any]] = {
    "1.6": {"chargePointVendor": "Robust", "chargePointModel": "Raw"},
    "2.0.1": {"reason": "PowerUp", "chargingStation": {"vendorName": "Robust", "model": "Raw"}},
    "2.1": {"reason": "PowerUp", "chargingStation": {"vendorName": "Robust", "model": "Raw"}},
}


def iso(delta: float = 0.0) -> str:
    """An OCPP dateTime ``delta`` seconds from now, UTC."""
    return (datetime.now(UTC) + timedelta(seconds=delta)).isoformat().replace("+00:00", "Z")


def free_port() -> int:
    """A port the kernel just gave out (for a CSMS subprocess that must keep its port)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RawStation:
    """A station that speaks raw OCPP-J frames over a real WebSocket (no library between).

    ``frames`` of the CSMS arrive in order through :meth:`recv`; :meth:`call` sends a CALL
    and returns the reply that carries its id.
    """

    _ids = itertools.count(1)

    def __init__(self, websocket: ClientConnection, station_id: str) -> None:
        self.websocket = websocket
        self.station_id = station_id
        self.version = (websocket.subprotocol or "").removeprefix("ocpp")

    def next_id(self) -> str:
        return f"m{next(self._ids)}"

    async def send(self, frame: str | bytes | list[Any]) -> None:
        """Send one frame exactly as given (a list is JSON-encoded compactly)."""
        if isinstance(frame, list):
            frame = json.dumps(frame, separators=(",", ":"))
        await self.websocket.send(frame)

    async def recv(self, within: float = 5.0) -> list[Any]:
        """The next frame from the CSMS (within ``within`` seconds), decoded."""
        message = await asyncio.wait_for(self.websocket.recv(), within)
        decoded: list[Any] = json.loads(message)
        return decoded

    async def call(
        self,
        action: str,
        payload: dict[str, Any] | None = None,
        *,
        message_id: str | None = None,
        within: float = 5.0,
    ) -> list[Any]:
        """Send a CALL and return the CALLRESULT / CALLERROR frame with the same id."""
        message_id = message_id or self.next_id()
        await self.send([2, message_id, action, {} if payload is None else payload])
        deadline = asyncio.get_running_loop().time() + within
        while True:
            frame = await self.recv(deadline - asyncio.get_running_loop().time())
            if frame[0] in (3, 4) and frame[1] == message_id:
                return frame
            raise AssertionError(f"unexpected frame while waiting for {message_id}: {frame}")

    async def result(self, action: str, payload: dict[str, Any] | None = None) -> dict[str, Any]:
        """Send a CALL that must be answered with a CALLRESULT; returns its payload."""
        reply = await self.call(action, payload)
        assert reply[0] == 3, f"{action} answered {reply}"
        result: dict[str, Any] = reply[2]
        return result

    async def boot(self) -> dict[str, Any]:
        return await self.result("BootNotification", BOOT[self.version])

    async def heartbeat(self) -> list[Any]:
        return await self.call("Heartbeat", {})

    async def assert_stays_up(self) -> None:
        """Checklist "stays up": the same socket answers a valid CALL with a CALLRESULT."""
        reply = await self.heartbeat()
        assert reply[0] == 3 and "currentTime" in reply[2], reply

    async def assert_silent(self, duration: float = 0.3) -> None:
        """Nothing arrives within ``duration`` seconds (a frame that must not be answered)."""
        try:
            frame = await asyncio.wait_for(self.websocket.recv(), duration)
        except TimeoutError:
            return
        raise AssertionError(f"expected no frame, got {frame!r}")

    async def closed_with(self, within: float = 5.0) -> int | None:
        """Wait for the CSMS to close the socket; returns the close code it sent."""
        try:
            while True:
                await asyncio.wait_for(self.websocket.recv(), within)
        except ConnectionClosed:
            pass
        rcvd = self.websocket.protocol.close_rcvd
        return rcvd.code if rcvd is not None else None


StationFactory = Callable[..., Awaitable[RawStation]]


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    """Overrides the shared one (``tests/conftest.py``): tests here lock ``x.sqlite3``."""
    return f"sqlite+aiosqlite:///{tmp_path / 'x.sqlite3'}"


@pytest.fixture
async def raw_station(running: RunningCsms) -> AsyncIterator[StationFactory]:
    """Connect raw stations to ``running``: ``await raw_station("CP1", "2.0.1", boot=True)``."""
    opened: list[ClientConnection] = []

    async def connect(
        station_id: str,
        version: str = "2.0.1",
        *,
        boot: bool = True,
        port: int | None = None,
        subprotocols: list[str] | None = None,
    ) -> RawStation:
        offered = subprotocols if subprotocols is not None else [f"ocpp{version}"]
        websocket = await ws_connect(
            f"ws://127.0.0.1:{port or running.port}/ocpp/{station_id}",
            subprotocols=[Subprotocol(p) for p in offered] or None,
            compression=None,
            max_size=None,
            open_timeout=10,
        )
        opened.append(websocket)
        station = RawStation(websocket, station_id)
        if boot:
            assert (await station.boot())["status"] == "Accepted"
        return station

    yield connect
    for websocket in opened:
        await websocket.close()


async def row_counts(db_url: str) -> dict[str, int]:
    """Rows per table, every table but the message log."""
    async with Database(db_url) as db, db.session() as session:
        return {
            name: int(await session.scalar(select(func.count()).select_from(text(name))) or 0)
            for name in PERSISTED_TABLES
        }


def assert_nothing_persisted(before: dict[str, int], after: dict[str, int]) -> None:
    """Checklist "nothing persisted": no table but the message log gained or lost a row."""
    changed = {name: (before[name], after[name]) for name in before if before[name] != after[name]}
    assert not changed, f"rows changed (before, after): {changed}"


async def query(db_url: str, sql: str, **params: Any) -> list[tuple[Any, ...]]:
    """Run one SELECT on the CSMS's database (a separate connection, as an auditor would)."""
    async with Database(db_url) as db, db.session() as session:
        return [tuple(row) for row in (await session.execute(text(sql), params)).all()]


# -- a CSMS in its own process (kill -9, memory of the server alone) ---------------------------


class CsmsProcess:
    """``python -m ocppkit csms`` on a fixed port (kept across restarts) and a SQLite file."""

    def __init__(
        self,
        workdir: Path,
        *extra: str,
        env: dict[str, str] | None = None,
        database: str | None = None,
    ) -> None:
        self.workdir = workdir
        self.env = env or {}
        self.port = free_port()
        self.database = database or f"sqlite+aiosqlite:///{workdir / 'csms.sqlite3'}"
        self.extra = extra
        self.process: subprocess.Popen[bytes] | None = None
        self.log = open(workdir / "csms.log", "ab")  # noqa: SIM115 (closed in stop())

    def start(self, timeout: float = 30.0) -> None:
        """Start the process and wait until its OCPP port accepts connections."""
        env = {**os.environ, "PYTHONUNBUFFERED": "1", **self.env}
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "ocppkit",
                "csms",
                "--port",
                str(self.port),
                "--api-port",
                "0",
                "--database",
                self.database,
                *self.extra,
            ],
            cwd=self.workdir,
            stdout=self.log,
            stderr=self.log,
            env=env,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"the CSMS exited with {self.process.returncode}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.02)
        raise AssertionError("the CSMS never listened")

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs, nothing is flushed."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)

    def stop(self) -> None:
        """SIGTERM (a clean shutdown), SIGKILL after 3 s: the tests have their answers."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(3)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        self.log.close()

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid


@pytest.fixture
def csms_process(tmp_path: Path) -> Iterator[Callable[..., CsmsProcess]]:
    """Factory for :class:`CsmsProcess`; every process started is stopped afterwards."""
    made: list[CsmsProcess] = []

    def make(
        *extra: str, env: dict[str, str] | None = None, database: str | None = None
    ) -> CsmsProcess:
        process = CsmsProcess(tmp_path, *extra, env=env, database=database)
        made.append(process)
        return process

    yield make
    for process in made:
        process.stop()


# -- raw HTTP handshakes (paths and headers no WebSocket client would send) --------------------


def upgrade_request(path: str, *, extra_headers: list[tuple[str, str]] | None = None) -> bytes:
    """The bytes of a WebSocket upgrade request for ``path``, offering ``ocpp2.0.1``."""
    lines = [
        f"GET {path} HTTP/1.1",
        "Host: 127.0.0.1",
        "Upgrade: websocket",
        "Connection: Upgrade",
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
        "Sec-WebSocket-Version: 13",
        "Sec-WebSocket-Protocol: ocpp2.0.1",
        *(f"{name}: {value}" for name, value in extra_headers or []),
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


async def raw_handshake(port: int, request: bytes, within: float = 5.0) -> tuple[int, bytes]:
    """Send ``request`` on a fresh TCP socket; returns (HTTP status, everything read until the
    server closed or ``within`` seconds passed)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(request)
        await writer.drain()
        data = b""
        with contextlib.suppress(TimeoutError, ConnectionError):
            async with asyncio.timeout(within):
                while chunk := await reader.read(65536):
                    data += chunk
                    if b"\r\n\r\n" in data and not data.startswith(b"HTTP/1.1 101"):
                        # a refusal: read its body (Content-Length) then stop
                        head, _, body = data.partition(b"\r\n\r\n")
                        length = next(
                            (
                                int(line.split(b":", 1)[1])
                                for line in head.split(b"\r\n")
                                if line.lower().startswith(b"content-length:")
                            ),
                            0,
                        )
                        if len(body) >= length:
                            break
                    elif data.startswith(b"HTTP/1.1 101"):
                        break
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()
    status = int(data.split(b" ", 2)[1]) if data.startswith(b"HTTP/1.1 ") else 0
    return status, data


# -- a PostgreSQL database of its own (E7 on PostgreSQL) ---------------------------------------

#: The test server (tests/storage/conftest.py uses the same one); trust auth, user postgres.
PG_ADMIN = os.environ.get(
    "OCPPKIT_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
)


def postgres_database() -> Iterator[str]:
    """A new, empty PostgreSQL database (``CREATE DATABASE``) for a CSMS process, dropped
    afterwards; the test is skipped, with the reason, when the server cannot be reached.
    A plain generator: call it from a synchronous fixture (outside the event loop)."""
    import asyncpg  # type: ignore[import-untyped]  # the driver the CSMS uses

    admin = make_url(PG_ADMIN)
    name = f"ocppkit_e7_{uuid.uuid4().hex[:12]}"

    async def execute(sql: str) -> None:
        connection = await asyncpg.connect(
            user=admin.username, host=admin.host, port=admin.port, database=admin.database
        )
        try:
            await connection.execute(sql)
        finally:
            await connection.close()

    try:
        asyncio.run(execute(f'CREATE DATABASE "{name}"'))
    except (OSError, asyncpg.PostgresError) as exc:
        pytest.skip(f"PostgreSQL not reachable at {admin.host}:{admin.port}: {exc}")
    try:
        yield admin.set(database=name).render_as_string(hide_password=False)
    finally:
        asyncio.run(execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
