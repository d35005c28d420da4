"""Alembic environment for ocppkit's storage.

Run programmatically by :meth:`ocppkit.storage.Database.migrate`, which passes a live
synchronous connection (from ``AsyncConnection.run_sync``) in ``config.attributes``.
Without one (generating a revision, or an ini-based CLI run) it builds its own async
engine from ``-x url=...`` or ``sqlalchemy.url``. To add a revision after changing the
models::

    from alembic import command
    from ocppkit.storage import alembic_config
    config = alembic_config()
    config.set_main_option("sqlalchemy.url", "sqlite+aiosqlite:////tmp/scratch.sqlite3")
    command.upgrade(config, "head")
    command.revision(config, message="...", autogenerate=True, rev_id="0002")

then replace ``ocppkit.storage.models.UTCDateTime`` in the output by
``sa.DateTime(timezone=True)`` (migrations do not import the models).
"""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy import Connection, pool
from sqlalchemy.ext.asyncio import create_async_engine

from ocppkit.storage.models import Base

config = context.config
target_metadata = Base.metadata


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


async def _run_async(url: str) -> None:
    engine = create_async_engine(url, poolclass=pool.NullPool)
    try:
        async with engine.begin() as connection:
            await connection.run_sync(_run)
    finally:
        await engine.dispose()


def _url() -> str:
    url = context.get_x_argument(as_dictionary=True).get("url") or config.get_main_option(
        "sqlalchemy.url"
    )
    if not url:
        raise RuntimeError("no database: pass -x url=... or set sqlalchemy.url")
    return url


if context.is_offline_mode():
    context.configure(url=_url(), target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
else:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
    else:
        asyncio.run(_run_async(_url()))
