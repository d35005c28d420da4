"""Test databases on both backends: SQLite files, and PostgreSQL with a schema per test.

PostgreSQL isolation: each test gets its own schema, dropped afterwards, so parallel runs
and reruns never see each other's tables. The server is ``OCPPKIT_TEST_POSTGRES_URL`` or
``postgresql+asyncpg://postgres@127.0.0.1:5432/test`` (user ``root`` is tried when
``postgres`` is refused); a server that cannot be reached skips the PostgreSQL half with
the reason.

Two ways to point at the schema: ``connect_args`` (when the test builds the
:class:`~ocppkit.storage.Database` itself) or :func:`schema_url`, a plain URL for code
that only takes a URL (``CsmsSettings.database``).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

__all__ = ["PG_URL", "pg_admin_url", "pg_schema", "schema_url"]

PG_URL = os.environ.get(
    "OCPPKIT_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
)


async def pg_admin_url() -> str:
    """The first candidate URL whose user can log in (skips the test if none can)."""
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


@asynccontextmanager
async def pg_schema(admin_url: str) -> AsyncIterator[str]:
    """A new, empty schema for the duration of the block; dropped (cascade) afterwards."""
    schema = f"test_{uuid.uuid4().hex[:16]}"
    admin = create_async_engine(admin_url, poolclass=NullPool)
    try:
        async with admin.begin() as conn:
            await conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        yield schema
    finally:
        async with admin.begin() as conn:
            await conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        await admin.dispose()


def schema_url(admin_url: str, schema: str) -> str:
    """``admin_url`` with every connection's ``search_path`` set to ``schema``.

    SQLAlchemy passes URL query options to ``asyncpg.connect`` as keywords; asyncpg merges
    a ``dsn`` keyword with them and turns the dsn's unknown query options into server
    settings, so ``dsn=postgresql://?search_path=<schema>`` sets the search path.
    """
    url = make_url(admin_url).update_query_dict({"dsn": f"postgresql://?search_path={schema}"})
    return url.render_as_string(hide_password=False)
