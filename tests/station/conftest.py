"""Fixtures shared by the station runtime's suites."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from ocppkit.station.store import StationStore


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[StationStore]:
    """The station's persistent store: an SQLite file in the test's ``tmp_path``."""
    async with await StationStore.open(tmp_path / "station.sqlite3") as opened:
        yield opened
