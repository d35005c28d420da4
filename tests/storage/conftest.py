"""Storage tests run on both backends: SQLite in a temporary file, and PostgreSQL.

PostgreSQL isolation: each test gets its own schema (``search_path`` set per connection),
dropped afterwards, so parallel runs and reruns never see each other's tables. The server
is ``OCPPKIT_TEST_POSTGRES_URL`` or ``postgresql+asyncpg://postgres@127.0.0.1:5432/test``
(user ``root`` is tried when ``postgres`` is refused); a server that cannot be reached
skips the PostgreSQL half with the reason.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from ocppkit.storage import Database, default_sqlite_url
from tests.helpers.databases import pg_admin_url

OpenDatabase = Callable[[], Database]


@pytest.fixture(params=["sqlite", "postgresql"])
async def open_database(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[OpenDatabase]:
    """A factory of :class:`Database` objects all pointing at this test's database;
    every one opened is closed at teardown."""
    opened: list[Database] = []
    kwargs: dict[str, Any] = {}
    schema = None
    admin_url = None
    if request.param == "sqlite":
        url = default_sqlite_url(tmp_path)
    else:
        admin_url = await pg_admin_url()
        schema = f"test_{uuid.uuid4().hex[:16]}"
        url = admin_url
        kwargs["connect_args"] = {"server_settings": {"search_path": schema}}
        admin = create_async_engine(admin_url, poolclass=NullPool)
        try:
            async with admin.begin() as conn:
                await conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        finally:
            await admin.dispose()

    def factory() -> Database:
        db = Database(url, **kwargs)
        opened.append(db)
        return db

    try:
        yield factory
    finally:
        for db in opened:
            await db.close()
        if schema is not None and admin_url is not None:
            admin = create_async_engine(admin_url, poolclass=NullPool)
            try:
                async with admin.begin() as conn:
                    await conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
            finally:
                await admin.dispose()


@pytest.fixture
async def db(open_database: OpenDatabase) -> Database:
    """A migrated database on one backend."""
    database = open_database()
    await database.migrate()
    return database
