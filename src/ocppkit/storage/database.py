"""One :class:`Database` per application: an async engine, a session factory, migrations.

Any SQLAlchemy async URL works; SQLite (aiosqlite) is the default and PostgreSQL (asyncpg)
the one to scale out with. Migrations ship inside the package, so ``await db.migrate()``
needs no ``alembic.ini`` and no working-directory layout.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import sqlite3
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

__all__ = ["MIGRATIONS_PATH", "Database", "alembic_config", "default_sqlite_url"]

#: The packaged Alembic script directory.
MIGRATIONS_PATH = Path(__file__).resolve().parent / "migrations"


def default_sqlite_url(directory: str | Path) -> str:
    """The default database: ``<directory>/ocppkit.sqlite3`` through aiosqlite."""
    return f"sqlite+aiosqlite:///{Path(directory).resolve() / 'ocppkit.sqlite3'}"


def alembic_config() -> Config:
    """An Alembic config pointing at the packaged migrations (no ini file)."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_PATH))
    return config


#: Connection execution option: start the transaction with ``BEGIN IMMEDIATE`` (SQLite).
WRITE_OPTION = "ocppkit_write"


#: WAL pages after which a commit checkpoints by itself (SQLite's default is 1 000, 4 MB).
#: A backstop: :meth:`Database.checkpoint`, run every second by the CSMS, keeps the WAL far
#: below it, so that no commit (and no reply waiting for one) pays for a checkpoint. Should
#: nothing call it, the threshold still bounds the WAL to about 40 MB.
WAL_AUTOCHECKPOINT_PAGES = 10_000


def _sqlite_on_connect(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets readers (API, dashboard) run beside the writer; NORMAL sync is durable in
    # WAL mode except for the last commits on power loss. SQLite ignores foreign keys
    # unless asked, per connection. The driver's own implicit BEGIN is turned off
    # (isolation_level None) and _sqlite_on_begin emits it instead: the driver's version
    # breaks SAVEPOINTs, which group commits use (SQLAlchemy's documented pysqlite recipe).
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA busy_timeout=5000")
        cursor.execute(f"PRAGMA wal_autocheckpoint={WAL_AUTOCHECKPOINT_PAGES}")
    finally:
        cursor.close()


def _sqlite_on_begin(connection: Connection) -> None:
    # A writer takes the write lock at BEGIN: a deferred transaction that reads and then
    # writes fails with SQLITE_BUSY_SNAPSHOT when another connection committed in between.
    immediate = connection.get_execution_options().get(WRITE_OPTION, False)
    statement = "BEGIN IMMEDIATE" if immediate else "BEGIN"
    # On aiosqlite's connection itself: one hop to its thread where exec_driver_sql takes
    # three (cursor, execute, close); every transaction begins here.
    try:
        connection.connection.dbapi_connection.run_async(  # type: ignore[union-attr]
            lambda driver: driver.execute(statement)
        )
    except sqlite3.Error as exc:  # as SQLAlchemy would raise it ("database is locked": retried)
        raise DBAPIError.instance(statement, (), exc, sqlite3.Error) from exc


def _without_nul(value: Any) -> Any:
    """``value`` with each NUL character of its strings replaced by U+FFFD."""
    if isinstance(value, str):
        return value.replace("\x00", "\ufffd") if "\x00" in value else value
    if isinstance(value, (tuple, list)):
        return type(value)(_without_nul(item) for item in value)
    if isinstance(value, dict):
        return {key: _without_nul(item) for key, item in value.items()}
    return value


def _postgresql_parameters(
    _conn: Connection,
    _cursor: Any,
    statement: str,
    parameters: Any,
    _context: Any,
    _executemany: bool,
) -> tuple[str, Any]:
    # PostgreSQL's text cannot hold U+0000, which JSON (and so any OCPP string a station
    # sends, or an API query) can: the statement would fail and the station would be
    # answered InternalError on every retry of a valid message. The character is stored as
    # U+FFFD instead, on this backend only; the message log keeps the frame as it came
    # (JSON text, where it is the escape "\u0000").
    return statement, _without_nul(parameters)


def _checkpoint(path: str) -> None:
    with contextlib.closing(sqlite3.connect(path, timeout=5.0)) as connection:
        connection.execute("PRAGMA wal_checkpoint(PASSIVE)")


class _BulkWriter:
    """The connection and thread of :meth:`Database.insert_many` (SQLite only).

    Its own sqlite3 connection, opened, used and closed on its one thread, set up as the
    pool's are (:func:`_sqlite_on_connect`). It writes beside the pooled connections as any
    second SQLite connection does: ``BEGIN IMMEDIATE`` waits (``busy_timeout``) for another
    writer's commit, so transactions never interleave.
    """

    def __init__(self, path: str) -> None:
        self._path = path
        self._connection: sqlite3.Connection | None = None
        self._thread = concurrent.futures.ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="ocppkit-sqlite-bulk"
        )

    async def run(self, statements: Sequence[tuple[str, Sequence[Sequence[Any]]]]) -> None:
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._thread, self._insert, statements)

    async def close(self) -> None:
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._thread, self._close)
        self._thread.shutdown()

    def _insert(self, statements: Sequence[tuple[str, Sequence[Sequence[Any]]]]) -> None:
        sql = "BEGIN IMMEDIATE"
        parameters: Sequence[Sequence[Any]] = ()
        try:
            connection = self._connection or self._connect()
            connection.execute(sql)
            try:
                for sql, parameters in statements:
                    connection.executemany(sql, parameters)
                sql, parameters = "COMMIT", ()
                connection.execute(sql)
            except BaseException:
                if connection.in_transaction:
                    connection.execute("ROLLBACK")
                raise
        except sqlite3.Error as exc:  # as SQLAlchemy would raise it (the committer's retries)
            raise DBAPIError.instance(sql, parameters, exc, sqlite3.Error) from exc

    def _connect(self) -> sqlite3.Connection:
        """Open and set up the connection; kept only once that worked, so that a file that
        was not a database yet (or not reachable) is opened anew next time."""
        connection = sqlite3.connect(self._path, timeout=5.0)
        try:
            _sqlite_on_connect(connection, None)
        except BaseException:
            connection.close()
            raise
        self._connection = connection
        return connection

    def _close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None


def _upgrade(connection: Connection, revision: str) -> None:
    config = alembic_config()
    config.attributes["connection"] = connection
    command.upgrade(config, revision)


class Database:
    """An async engine plus session factory; ``close()`` it (or use ``async with``).

    ``engine_kwargs`` go to :func:`~sqlalchemy.ext.asyncio.create_async_engine`
    (``connect_args``, ``pool_size``, ``echo``...).
    """

    def __init__(self, url: str, **engine_kwargs: Any) -> None:
        self.url = make_url(url)
        if self.url.get_backend_name() == "sqlite":
            # The pool's rollback of every connection it takes back costs a thread hop to the
            # aiosqlite worker (about 40 us) per session. It is redundant here: SQLAlchemy
            # begins every transaction (``_sqlite_on_begin``), and a connection closed inside
            # one rolls it back itself before it returns to the pool.
            engine_kwargs.setdefault("pool_reset_on_return", None)
        self.engine: AsyncEngine = create_async_engine(self.url, **engine_kwargs)
        if self.url.get_backend_name() == "sqlite":
            event.listen(self.engine.sync_engine, "connect", _sqlite_on_connect)
            event.listen(self.engine.sync_engine, "begin", _sqlite_on_begin)
        elif self.url.get_backend_name() == "postgresql":
            event.listen(
                self.engine.sync_engine,
                "before_cursor_execute",
                _postgresql_parameters,
                retval=True,
            )
        self._sessions = async_sessionmaker(self.engine, expire_on_commit=False)
        self._bulk: _BulkWriter | None = None

    @property
    def sqlite_file(self) -> str | None:
        """The SQLite database file; None for another database or one in memory (neither
        :meth:`checkpoint` nor :meth:`insert_many` has anything to do there)."""
        path = self.url.database
        if self.url.get_backend_name() != "sqlite" or not path or path == ":memory:":
            return None
        return path

    async def insert_many(self, statements: Sequence[tuple[str, Sequence[Sequence[Any]]]]) -> None:
        """SQLite: run each ``(sql, rows)`` executemany in one transaction, in one hop to a
        thread of its own (see :mod:`ocppkit.storage.bulk_insert` for why).

        Raises:
            sqlalchemy.exc.DBAPIError: as SQLAlchemy would raise it (IntegrityError,
                OperationalError for "database is locked"...); nothing was committed.
            RuntimeError: not an SQLite file (:attr:`sqlite_file` is None).
        """
        path = self.sqlite_file
        if path is None:
            raise RuntimeError("insert_many needs an SQLite database file")
        if self._bulk is None:
            self._bulk = _BulkWriter(path)
        await self._bulk.run(statements)

    @property
    def dialect_name(self) -> str:
        return self.engine.dialect.name

    async def migrate(self, revision: str = "head") -> None:
        """Upgrade the schema to ``revision`` with the packaged Alembic migrations."""
        async with self.engine.begin() as connection:
            await connection.run_sync(_upgrade, revision)

    async def checkpoint(self) -> None:
        """SQLite: copy the write-ahead log into the database file, on a connection and a
        thread of its own; nothing to do on other databases.

        Why: SQLite's automatic checkpoint runs inside the commit that crosses its threshold,
        so that commit, and every reply waiting for it, pays for copying and syncing the
        pages (4-18 ms measured here for 1 000 pages, against 0.05 ms for a commit). A PASSIVE
        checkpoint neither waits for nor blocks a writer; what it cannot copy yet waits for
        the next one.
        """
        path = self.sqlite_file
        if path is None:
            return
        await asyncio.to_thread(_checkpoint, path)

    def session(self) -> AsyncSession:
        """A new session; use as ``async with db.session() as s:`` and commit explicitly."""
        return self._sessions()

    async def begin_write(self, session: AsyncSession) -> None:
        """Begin ``session``'s transaction as a writer (SQLite: ``BEGIN IMMEDIATE``)."""
        await session.connection(execution_options={WRITE_OPTION: True})

    @contextlib.asynccontextmanager
    async def write_session(self) -> AsyncIterator[AsyncSession]:
        """A new session whose transaction begins as a writer; commit explicitly.

        Every session that reads and then writes must be one: on SQLite a deferred
        transaction that read before another connection (the group committer, the bulk
        writer) committed cannot take the write lock any more and fails at once with
        "database is locked" (SQLITE_BUSY_SNAPSHOT; ``busy_timeout`` does not apply).
        ``BEGIN IMMEDIATE`` instead waits for the other writer.
        """
        async with self._sessions() as session:
            await self.begin_write(session)
            yield session

    async def close(self) -> None:
        """Close every pooled connection (no unclosed-connection warnings later)."""
        if self._bulk is not None:
            bulk, self._bulk = self._bulk, None
            await bulk.close()
        await self.engine.dispose()

    async def __aenter__(self) -> Database:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()
