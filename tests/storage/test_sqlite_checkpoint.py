"""SQLite checkpoints off the commit path (:meth:`Database.checkpoint`), and the thread hops
the SQLite write path saves (driver-level BEGIN and executemany, no pool reset)."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import text

from ocppkit.storage import Database, default_sqlite_url, repositories
from ocppkit.storage.database import WAL_AUTOCHECKPOINT_PAGES


def _size(path: Path) -> int:
    return path.stat().st_size


def _wal_frames(path: Path) -> tuple[int, int]:
    """(frames in the WAL, frames of it already copied into the database file)."""
    with sqlite3.connect(path) as connection:
        _busy, log, copied = connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
    return log, copied


async def test_checkpoint_copies_the_wal_into_the_database_file(tmp_path: Path) -> None:
    database = Database(default_sqlite_url(tmp_path))
    try:
        await database.migrate()
        path = Path(str(database.url.database))
        async with database.session() as session:
            await database.begin_write(session)
            await repositories.ensure_station(session, "CP1", now=datetime.now(UTC))
            rows: list[repositories.MessageLogRow] = [
                {
                    "time": datetime.now(UTC),
                    "station_id": "CP1",
                    "direction": "in",
                    "message_type": 2,
                    "action": "Heartbeat",
                    "message_id": str(n),
                    "raw": f'[2,"{n}","Heartbeat",{{}}]' + " " * 500,
                }
                for n in range(2000)
            ]
            await repositories.add_message_log(session, rows)
            await session.commit()
        size_before = _size(path)
        async with database.session() as session:
            # Below the backstop threshold nothing was copied by a commit.
            assert (await session.execute(text("PRAGMA wal_autocheckpoint"))).scalar_one() == (
                WAL_AUTOCHECKPOINT_PAGES
            )
        await database.checkpoint()
        assert _size(path) > size_before + 1_000_000  # the rows reached the file
        log, copied = _wal_frames(path)
        assert log == copied
        async with database.session() as session:  # and nothing was lost on the way
            count = (await session.execute(text("SELECT count(*) FROM message_log"))).scalar_one()
        assert count == 2000
    finally:
        await database.close()


@pytest.mark.parametrize("url", ["sqlite+aiosqlite://", "sqlite+aiosqlite:///:memory:"])
async def test_checkpoint_of_an_in_memory_database_does_nothing(url: str) -> None:
    database = Database(url)
    try:
        await database.checkpoint()
    finally:
        await database.close()


async def test_driver_level_insert_errors_are_sqlalchemy_errors(tmp_path: Path) -> None:
    """The group committer tells a unit's own error (rolled back, retried alone) from a
    storage failure by SQLAlchemy's exception classes; the driver-level executemany keeps
    them: a meter value of a station that does not exist is an IntegrityError."""
    from sqlalchemy.exc import IntegrityError

    database = Database(default_sqlite_url(tmp_path))
    try:
        await database.migrate()
        async with database.session() as session:
            await database.begin_write(session)
            with pytest.raises(IntegrityError):
                await repositories.add_meter_values(
                    session,
                    [{"station_id": "nobody", "timestamp": datetime.now(UTC), "value": 1.0}],
                )
            await session.rollback()
    finally:
        await database.close()
