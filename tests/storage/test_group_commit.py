"""Group commit on SQLite and PostgreSQL: many units, one transaction, ack after commit.

Anchors: reliability.md E7/E8 (a reply is sent only for what is committed; a storage failure
is retried inside, then surfaces so the station retries), issue 3 "commits are grouped across
stations so durability does not cost throughput".
"""

from __future__ import annotations

import asyncio
import gc
import sqlite3
import threading
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import DatabaseError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from ocppkit.storage import Database, repositories
from ocppkit.storage.group_commit import GroupCommitter, StorageUnavailableError
from ocppkit.storage.models import MeterValue, Station

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


def _register(station_id: str):  # type: ignore[no-untyped-def]
    async def unit(session: AsyncSession) -> str:
        await repositories.ensure_station(session, station_id, now=NOW)
        return station_id

    return unit


async def _count_stations(db: Database) -> int:
    async with db.session() as session:
        return int((await session.execute(select(func.count()).select_from(Station))).scalar_one())


async def test_concurrent_units_share_few_commits(db: Database) -> None:
    """500 stations writing at once: every unit committed, in far fewer transactions."""
    committer = GroupCommitter(db, max_batch=200)
    results = await asyncio.gather(*(committer.run(_register(f"CP{i:04}")) for i in range(500)))
    await committer.close()
    assert results == [f"CP{i:04}" for i in range(500)]
    assert await _count_stations(db) == 500
    assert committer.units == 500
    assert 3 <= committer.batches <= 50, committer.batches


async def test_result_is_delivered_only_after_commit(db: Database) -> None:
    """Ack after commit: when run() returns, another connection already sees the row."""
    committer = GroupCommitter(db)
    await committer.run(_register("CP-visible"))
    assert await _count_stations(db) == 1
    await committer.close()


async def test_a_failing_unit_is_rolled_back_alone(db: Database) -> None:
    """One unit's error (a duplicate primary key) does not cost the others their commit."""
    committer = GroupCommitter(db)

    async def duplicate(session: AsyncSession) -> None:
        await session.execute(text("INSERT INTO id_tags (id_tag, status) VALUES ('T1', 'x')"))
        await session.execute(text("INSERT INTO id_tags (id_tag, status) VALUES ('T1', 'x')"))

    outcomes = await asyncio.gather(
        committer.run(_register("CP1")),
        committer.run(duplicate),
        committer.run(_register("CP2")),
        return_exceptions=True,
    )
    await committer.close()
    assert outcomes[0] == "CP1" and outcomes[2] == "CP2"
    assert isinstance(outcomes[1], IntegrityError)
    assert await _count_stations(db) == 2
    async with db.session() as session:
        tags = (await session.execute(text("SELECT count(*) FROM id_tags"))).scalar_one()
    assert tags == 0  # nothing half-written


async def test_lost_connection_is_retried_then_reported(db: Database) -> None:
    """E8: the database connection dies mid-batch (PostgreSQL backend terminated): the batch
    is retried on a new connection; a failure that persists surfaces as
    StorageUnavailableError and nothing of the unit is committed."""
    if db.dialect_name != "postgresql":
        pytest.skip("a backend connection can be terminated on PostgreSQL only")
    committer = GroupCommitter(db, retries=2, retry_delay=0.01)
    attempts = 0

    async def dies_once(session: AsyncSession) -> str:
        nonlocal attempts
        attempts += 1
        await repositories.ensure_station(session, "CP-retry", now=NOW)
        if attempts == 1:
            await session.execute(text("SELECT pg_terminate_backend(pg_backend_pid())"))
        return "ok"

    assert await committer.run(dies_once) == "ok"
    assert attempts == 2

    async def always_dies(session: AsyncSession) -> None:
        await repositories.ensure_station(session, "CP-never", now=NOW)
        await session.execute(text("SELECT pg_terminate_backend(pg_backend_pid())"))

    with pytest.raises(StorageUnavailableError):
        await committer.run(always_dies)
    await committer.close()
    async with db.session() as session:
        ids = set((await session.execute(select(Station.id))).scalars())
    assert ids == {"CP-retry"}


async def test_rows_of_many_callers_go_in_one_write_and_a_bad_one_fails_alone(
    db: Database,
) -> None:
    """Meter values of many stations: one multi-row INSERT per batch; when one caller's rows
    break a constraint, the others are still committed and only that caller gets the error."""
    committer = GroupCommitter(db)
    await committer.run(_register("CP-ROWS"))
    calls: list[int] = []

    async def writer(session: AsyncSession, rows: Sequence[Any]) -> None:
        calls.append(len(rows))
        await repositories.add_meter_values(session, rows)

    def rows(n: int, station: str = "CP-ROWS") -> list[dict[str, Any]]:
        return [
            {"station_id": station, "timestamp": NOW + timedelta(seconds=n), "raw_value": str(n)}
        ]

    await asyncio.gather(*(committer.insert(writer, rows(n)) for n in range(50)))
    assert calls.count(1) < 50 and sum(calls) == 50  # combined, not one write per caller
    calls.clear()
    outcomes = await asyncio.gather(
        committer.insert(writer, rows(100)),
        committer.insert(writer, rows(101, station="NO-SUCH-STATION")),  # foreign key fails
        committer.insert(writer, rows(102)),
        return_exceptions=True,
    )
    await committer.close()
    assert outcomes[0] is None and outcomes[2] is None
    assert isinstance(outcomes[1], IntegrityError)
    async with db.session() as session:
        stored = await session.scalar(select(func.count()).select_from(MeterValue))
    assert stored == 52


async def test_a_batch_that_fails_for_good_fails_its_callers_and_the_next_one_works(
    tmp_path: Path,
) -> None:
    """E8 / "never a success without a commit", and nobody left waiting: an error that is
    neither a unit's own nor transient (here the database file is not a database at all)
    reaches every caller of the batch, and the committer goes on with the next batch once
    the database is sound. It used to end the worker with the callers still waiting."""
    path = tmp_path / "broken.sqlite3"
    _write(path, b"this is not a database" * 100)
    db = Database(f"sqlite+aiosqlite:///{path}")
    committer = GroupCommitter(db)
    try:
        results = await asyncio.wait_for(
            asyncio.gather(
                committer.run(_register("CP-1")),
                committer.run(_register("CP-2")),
                return_exceptions=True,
            ),
            10,
        )
        assert all(isinstance(r, DatabaseError) for r in results), results
        _unlink(path)
        await db.migrate()
        assert await asyncio.wait_for(committer.run(_register("CP-3")), 10) == "CP-3"
        assert await _count_stations(db) == 1
    finally:
        await committer.close()
        await db.close()


async def test_bulk_inserts_open_the_file_anew_once_it_is_a_database(tmp_path: Path) -> None:
    """E8 on the path without a session: while the file is not a database the caller gets
    the error; once it is one, the next write opens it anew and is committed there."""
    path = tmp_path / "broken.sqlite3"
    _write(path, b"this is not a database" * 100)
    db = Database(f"sqlite+aiosqlite:///{path}")
    committer = GroupCommitter(db)
    row: repositories.MeterValueRow = {"station_id": "CP-1", "timestamp": NOW, "raw_value": "1"}
    try:
        with pytest.raises(DatabaseError):
            await asyncio.wait_for(committer.insert(repositories.add_meter_values, [row]), 10)
        _unlink(path)
        await db.migrate()
        await committer.run(_register("CP-1"))
        await asyncio.wait_for(committer.insert(repositories.add_meter_values, [row]), 10)
        async with db.session() as session:
            assert await session.scalar(select(func.count()).select_from(MeterValue)) == 1
    finally:
        await committer.close()
        await db.close()


def _write(path: Path, data: bytes) -> None:
    path.write_bytes(data)


def _unlink(path: Path) -> None:
    path.unlink()


async def test_a_batch_of_inserts_only_is_written_in_one_transaction_and_a_bad_row_fails_alone(
    db: Database,
) -> None:
    """E7/E8 on the path without an ORM session (SQLite; PostgreSQL keeps the session path,
    same outcome): meter values of many callers are committed together before any caller
    hears back; one caller whose rows break a constraint gets the error alone, and nothing
    of it is stored."""
    committer = GroupCommitter(db)
    await committer.run(_register("CP-BULK"))

    def rows(n: int, station: str = "CP-BULK") -> list[repositories.MeterValueRow]:
        return [
            {"station_id": station, "timestamp": NOW + timedelta(seconds=n), "raw_value": "1"},
            {"station_id": station, "timestamp": NOW + timedelta(seconds=n), "raw_value": "2",
             "phase": "L1"},
        ]  # fmt: skip

    before = committer.batches
    await asyncio.gather(
        *(committer.insert(repositories.add_meter_values, rows(n)) for n in range(60))
    )
    assert committer.batches - before < 60
    if db.sqlite_file is not None:  # written by the bulk writer's own thread
        assert any(t.name.startswith("ocppkit-sqlite-bulk") for t in threading.enumerate())
    outcomes = await asyncio.gather(
        committer.insert(repositories.add_meter_values, rows(100)),
        committer.insert(repositories.add_meter_values, rows(101, station="NO-SUCH-STATION")),
        committer.insert(repositories.add_meter_values, rows(102)),
        committer.insert(repositories.add_meter_values, rows(5)),  # a resend: stored once (E2)
        return_exceptions=True,
    )
    await committer.close()
    assert outcomes[0] is None and outcomes[2] is None and outcomes[3] is None
    assert isinstance(outcomes[1], IntegrityError)
    async with db.session() as session:
        stations = set((await session.execute(select(MeterValue.station_id))).scalars())
        stored = await session.scalar(select(func.count()).select_from(MeterValue))
    assert stations == {"CP-BULK"} and stored == 2 * 62


async def test_bulk_inserts_wait_for_another_writer_to_commit(tmp_path: Path) -> None:
    """The bulk writer is a second SQLite connection: while another one holds the write lock
    it waits (busy_timeout) and then commits, rather than failing the callers."""
    path = tmp_path / "locked.sqlite3"
    db = Database(f"sqlite+aiosqlite:///{path}")
    await db.migrate()
    committer = GroupCommitter(db)
    try:
        await committer.run(_register("CP-WAIT"))
        other = sqlite3.connect(path, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")
        row: repositories.MeterValueRow = {
            "station_id": "CP-WAIT",
            "timestamp": NOW,
            "raw_value": "7",
        }
        pending = asyncio.ensure_future(committer.insert(repositories.add_meter_values, [row]))
        await asyncio.sleep(0.3)
        assert not pending.done()  # waiting for the lock, not failed
        other.execute("COMMIT")
        other.close()
        await asyncio.wait_for(pending, 10)
        async with db.session() as session:
            assert await session.scalar(select(MeterValue.raw_value)) == "7"
    finally:
        await committer.close()
        await db.close()


async def test_a_caller_cancelled_while_waiting_leaves_nothing_unretrieved(db: Database) -> None:
    """A station that goes away while its write waits (its handler task is cancelled): the
    others still get their results, and its failed unit leaves no "exception was never
    retrieved" on the loop."""
    loop = asyncio.get_running_loop()
    reported: list[dict[str, Any]] = []
    loop.set_exception_handler(lambda _loop, context: reported.append(context))
    committer = GroupCommitter(db)

    async def fails(session: AsyncSession) -> None:
        await repositories.ensure_station(session, "CP-GONE", now=NOW)
        raise ValueError("the unit's own error")

    try:
        gone = asyncio.ensure_future(committer.run(fails))
        kept = asyncio.ensure_future(committer.run(_register("CP-KEPT")))
        await asyncio.sleep(0)
        gone.cancel()
        assert await kept == "CP-KEPT"
        with pytest.raises(asyncio.CancelledError):
            await gone
        await committer.close()
        del gone
        gc.collect()
        await asyncio.sleep(0)
    finally:
        loop.set_exception_handler(None)
    assert reported == []
    assert await _count_stations(db) == 1  # the failed unit's write was rolled back
