"""Storage tests run on both backends: SQLite in a temporary file, and PostgreSQL.

PostgreSQL isolation: each test gets its own schema (``search_path`` set per connection),
dropped afterwards, so parallel runs and reruns never see each other's tables. The server
is ``OCPPKIT_TEST_POSTGRES_URL`` or ``postgresql+asyncpg://postgres@127.0.0.1:5432/test``
(user ``root`` is tried when ``postgres`` is refused); a server that cannot be reached
skips the PostgreSQL half with the reason.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from ocppkit.storage import Database, default_sqlite_url

PG_URL = os.environ.get(
    "OCPPKIT_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
)

OpenDatabase = Callable[[], Database]


async def _pg_admin_url() -> str:
    """The first candidate URL whose user can log in."""
    url = make_url(PG_URL)
    candidates = (
        [url] if "OCPPKIT_TEST_POSTGRES_URL" in os.environ else [url, url.set(username="root")]
    )
    errors = []
    for candidate in candidates:
        engine = create_async_engine(candidate, poolclass=NullPool)
        try:
            async with engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
            return candidate.render_as_string(hide_password=False)
        except Exception as exc:
            errors.append(f"{candidate.username}: {exc}")
        finally:
            await engine.dispose()
    pytest.skip(f"PostgreSQL not reachable at {PG_URL}: {'; '.join(errors)}")


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
        admin_url = await _pg_admin_url()
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
