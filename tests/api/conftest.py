"""Shared API test fixtures: a real CSMS on both storage backends (a SQLite file in
``tmp_path`` and a PostgreSQL schema of its own, tests/helpers/databases.py), an HTTP client
over loopback, and independent stations (mobilityhouse ``ocpp`` 1.6 ChargePoint) over real
WebSockets."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets
from ocpp.routing import on
from ocpp.v16 import call as c16
from ocpp.v16 import call_result as r16

from ocppkit.csms import CsmsSettings
from ocppkit.node import RunningCsms, start_csms
from tests.helpers.databases import pg_admin_url, pg_schema, schema_url
from tests.helpers.mobilityhouse import Station16 as MhStation16


@pytest.fixture(params=["sqlite", "postgresql"])
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """An SQLAlchemy URL of an empty database for this test, on each backend."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'csms.sqlite3'}"
        return
    admin_url = await pg_admin_url()
    async with pg_schema(admin_url) as schema:
        yield schema_url(admin_url, schema)


def iso(delta: float = 0) -> str:
    return (datetime.now(UTC) + timedelta(seconds=delta)).isoformat()


class Station(MhStation16):
    """Answers GetConfiguration and Reset (after ``reset_delay`` s); UnlockConnector makes
    it hang up; every other CSMS-initiated action gets mobilityhouse's NotImplemented."""

    reset_delay = 0.0

    @on("GetConfiguration")
    async def on_get_configuration(self, key: list[str] | None = None) -> Any:
        return r16.GetConfiguration(
            configuration_key=[{"key": "HeartbeatInterval", "readonly": False, "value": "300"}],
            unknown_key=key or [],
        )

    @on("Reset")
    async def on_reset(self, type: str) -> Any:
        await asyncio.sleep(self.reset_delay)
        return r16.Reset(status="Accepted")

    @on("UnlockConnector")
    async def on_unlock(self, connector_id: int) -> Any:
        await self._connection.close()
        return r16.UnlockConnector(status="Unlocked")


Client = tuple[RunningCsms, httpx.AsyncClient]


@pytest.fixture
async def api(database_url: str) -> AsyncIterator[Callable[..., Awaitable[Client]]]:
    """Starts a CSMS on ``database_url`` (tests/api/conftest.py: both backends) and gives an
    HTTP client for its API; a configured ``api_token`` is sent as a bearer token."""
    started: list[RunningCsms] = []
    clients: list[httpx.AsyncClient] = []

    async def start(**overrides: Any) -> Client:
        settings = CsmsSettings(port=0, api_port=0, database=database_url, **overrides)
        running = await start_csms(settings)
        started.append(running)
        headers = {"Authorization": f"Bearer {settings.api_token}"} if settings.api_token else {}
        client = httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{running.api_port}", timeout=10, headers=headers
        )
        clients.append(client)
        return running, client

    yield start
    for client in clients:
        await client.aclose()
    for running in started:
        await running.stop()


@pytest.fixture
async def stations() -> AsyncIterator[Callable[..., Awaitable[Station]]]:
    opened: list[tuple[Any, asyncio.Task[None]]] = []

    async def connect(port: int, station_id: str, *, boot: bool = True) -> Station:
        ws = await websockets.connect(
            f"ws://127.0.0.1:{port}/ocpp/{station_id}", subprotocols=["ocpp1.6"]
        )
        cp = Station(station_id, ws)
        opened.append((ws, asyncio.create_task(cp.start())))
        if boot:
            reply = await cp.call(
                c16.BootNotification(
                    charge_point_model="Model-X",
                    charge_point_vendor="Vendor-Y",
                    firmware_version="1.2.3",
                )
            )
            assert reply.status == "Accepted"
        return cp

    yield connect
    for ws, task in opened:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await ws.close()


async def wait_offline(client: httpx.AsyncClient, station_id: str) -> None:
    for _ in range(200):
        if not (await client.get(f"/api/stations/{station_id}")).json()["online"]:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"{station_id} still online")
