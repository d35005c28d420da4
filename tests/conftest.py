"""Fixtures shared by the suites that run our CSMS for real: ``db_url``, ``csms``, ``running``.

A directory's own conftest or a test module may override one (``tests/robustness`` names its
SQLite file differently); the others then use the override.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from ocppkit.csms import CsmsSettings
from ocppkit.node import RunningCsms, start_csms


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    """The CSMS's database: an SQLite file in the test's ``tmp_path``."""
    return f"sqlite+aiosqlite:///{tmp_path / 'csms.sqlite3'}"


@pytest.fixture
async def csms(db_url: str) -> AsyncIterator[Callable[..., Awaitable[RunningCsms]]]:
    """Start a real CSMS (``start_csms``) on ephemeral ports, storing to ``db_url``:
    ``await csms(**settings_overrides)``; each one still serving is stopped after the test."""
    started: list[RunningCsms] = []

    async def start(**overrides: Any) -> RunningCsms:
        settings = CsmsSettings(**{"port": 0, "api_port": 0, "database": db_url, **overrides})
        running = await start_csms(settings)
        started.append(running)
        return running

    yield start
    for running in started:
        if running.server.is_serving():
            await running.stop()


@pytest.fixture
async def running(csms: Callable[..., Awaitable[RunningCsms]]) -> RunningCsms:
    """A CSMS with the default settings (profile 0, unknown stations accepted)."""
    return await csms()
