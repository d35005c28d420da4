"""A session that reads and then writes while another connection commits (SQLite).

The CSMS writes SQLite from more than one connection: the group committer's pooled
sessions, its bulk-insert connection, and the REST API's sessions. A deferred transaction
that read before another connection committed cannot take the write lock afterwards:
SQLite answers SQLITE_BUSY_SNAPSHOT ("database is locked") at once, without waiting out
``busy_timeout``. A CI run hit this in ``PATCH /api/stations/{id}`` while message-log rows
were being inserted. :meth:`Database.write_session` begins as a writer instead.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.exc import OperationalError

from ocppkit.storage import Database, default_sqlite_url
from ocppkit.storage.models import IdTag

_INSERT = "INSERT INTO id_tags (id_tag, status) VALUES (?, ?)"


async def _database(tmp_path: Path) -> Database:
    database = Database(default_sqlite_url(tmp_path))
    await database.migrate()
    await database.insert_many([(_INSERT, [("A", "Accepted")])])
    return database


async def test_write_session_waits_for_a_writer_that_commits_after_its_read(
    tmp_path: Path,
) -> None:
    database = await _database(tmp_path)
    try:
        async with database.write_session() as session:
            tag = (await session.execute(select(IdTag).where(IdTag.id_tag == "A"))).scalar_one()
            # The bulk connection's insert waits for this transaction's lock...
            other = asyncio.ensure_future(database.insert_many([(_INSERT, [("B", "Accepted")])]))
            await asyncio.sleep(0.05)
            assert not other.done()
            tag.status = "Blocked"
            await session.commit()
        await other  # ...and goes in once it is committed: both writes kept
        async with database.session() as session:
            rows = (await session.execute(select(IdTag.id_tag, IdTag.status))).all()
        assert sorted(rows) == [("A", "Blocked"), ("B", "Accepted")]
    finally:
        await database.close()


async def test_a_deferred_read_then_write_fails_when_another_writer_committed_between(
    tmp_path: Path,
) -> None:
    """Why write_session exists: the same sequence on a plain session loses the write."""
    database = await _database(tmp_path)
    try:
        async with database.session() as session:
            tag = (await session.execute(select(IdTag).where(IdTag.id_tag == "A"))).scalar_one()
            await database.insert_many([(_INSERT, [("B", "Accepted")])])
            tag.status = "Blocked"
            with pytest.raises(OperationalError, match="database is locked"):
                await session.commit()
    finally:
        await database.close()
