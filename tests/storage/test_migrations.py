"""The packaged Alembic migrations build exactly the schema the models declare."""

from __future__ import annotations

from typing import Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Connection, inspect

from ocppkit.storage import Base, Database, alembic_config
from ocppkit.storage.database import MIGRATIONS_PATH

from .conftest import OpenDatabase


def _diff(connection: Connection) -> list[Any]:
    context = MigrationContext.configure(
        connection, opts={"compare_type": True, "compare_server_default": True}
    )
    return list(compare_metadata(context, Base.metadata))


def _tables(connection: Connection) -> set[str]:
    return set(inspect(connection).get_table_names())


async def test_migrate_from_empty_matches_models(open_database: OpenDatabase) -> None:
    db = open_database()
    async with db.engine.connect() as conn:
        assert await conn.run_sync(_tables) == set()
    await db.migrate()
    async with db.engine.connect() as conn:
        assert await conn.run_sync(_tables) == {*Base.metadata.tables, "alembic_version"}
        assert await conn.run_sync(_diff) == []


async def test_migrate_twice_is_a_no_op(db: Database) -> None:
    await db.migrate()
    async with db.engine.connect() as conn:
        assert await conn.run_sync(_diff) == []


async def test_downgrade_to_base_removes_every_table(db: Database) -> None:
    def downgrade(connection: Connection) -> None:
        config = alembic_config()
        config.attributes["connection"] = connection
        command.downgrade(config, "base")

    async with db.engine.begin() as conn:
        await conn.run_sync(downgrade)
    async with db.engine.connect() as conn:
        assert await conn.run_sync(_tables) == {"alembic_version"}


def test_migration_files_are_in_the_package() -> None:
    """No alembic.ini at run time: env.py, the template and the versions ship as package data."""
    assert (MIGRATIONS_PATH / "env.py").is_file()
    assert (MIGRATIONS_PATH / "script.py.mako").is_file()
    assert (MIGRATIONS_PATH / "versions" / "0001_initial.py").is_file()
