"""CSMS storage: SQLAlchemy 2 async models and repositories, Alembic migrations.

SQLite (aiosqlite) by default, PostgreSQL (asyncpg) to scale out::

    db = Database(default_sqlite_url("."))
    await db.migrate()
    async with db.session() as session:
        tx_id, _ = await repositories.start_transaction_v16(session, "CP1", ...)
        await session.commit()
    await db.close()
"""

from . import repositories
from .database import MIGRATIONS_PATH, Database, alembic_config, default_sqlite_url
from .models import Base

__all__ = [
    "MIGRATIONS_PATH",
    "Base",
    "Database",
    "alembic_config",
    "default_sqlite_url",
    "repositories",
]
