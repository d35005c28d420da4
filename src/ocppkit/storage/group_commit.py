"""Group commit: many stations' writes in one database transaction, each acked after it.

Why
---
The CSMS answers a message that announces or closes a transaction only after its row is
committed (ack after commit, reliability.md E7/E8). One commit per message makes the
database's commit rate the CSMS's message rate; grouping the writes that arrive while the
previous commit is in flight into one transaction removes that ceiling without delaying a
lone writer (no timer: an idle committer starts at once).

Theory of operation
-------------------
:meth:`GroupCommitter.run` queues a *unit* (an async function of an
:class:`~sqlalchemy.ext.asyncio.AsyncSession`) and waits for its result. One worker task
takes every queued unit (up to ``max_batch``), runs them one after another in one
transaction, commits once and resolves the callers. If a unit raises (its own error, such as
a constraint), the transaction is rolled back and the batch runs again with a SAVEPOINT
around each unit, so only that unit is lost and its caller gets the exception. A unit's
result is delivered only after the commit succeeded; if the commit fails, every caller of the
batch gets the error.

A batch made only of :class:`~ocppkit.storage.bulk_insert.InsertWriter` rows (meter values,
the message log: the common batch under load) skips the ORM session on SQLite: its
statements run in one hop to a thread of their own (:meth:`Database.insert_many`); should
that fail for a row's own reason, the batch runs again the usual way, one unit at a time.

Transient storage errors (SQLite ``database is locked``, a PostgreSQL connection lost in a
restart) are retried ``retries`` times with a short back-off; then the callers get
:class:`StorageUnavailableError`, which the CSMS answers as CALLERROR InternalError so the
station retries (1.6 §3.7.1: never a CALLRESULT without a commit).

Units run one after another in the worker, so they must not wait for anything but the
database (no network calls inside a unit).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Final, TypeVar, cast

import structlog
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import AsyncSession

from ocppkit.storage.bulk_insert import InsertWriter
from ocppkit.storage.database import Database

__all__ = ["GroupCommitter", "StorageUnavailableError", "Unit"]

T = TypeVar("T")
Unit = Callable[[AsyncSession], Awaitable[T]]

#: Units taken into one transaction at most.
DEFAULT_MAX_BATCH: Final = 256
#: Attempts after the first for a batch that fails with a transient error.
DEFAULT_RETRIES: Final = 3

_log = structlog.get_logger("ocppkit.storage")

BatchObserver = Callable[[int, float], None]


class StorageUnavailableError(Exception):
    """The database kept failing; nothing of the unit was committed."""


#: Writes rows in one statement, e.g. ``repositories.add_meter_values``. It may return a
#: list with one result per row (in the rows' order), which is how each caller learns its own.
RowWriter = Callable[[AsyncSession, Sequence[Any]], Awaitable[Any]]


class _Pending:
    __slots__ = ("future", "rows", "unit", "writer")

    def __init__(
        self,
        unit: Unit[Any],
        future: asyncio.Future[Any],
        writer: RowWriter | None = None,
        rows: Sequence[Any] = (),
    ) -> None:
        self.unit = unit
        self.future = future
        self.writer = writer
        self.rows = rows


class GroupCommitter:
    """Runs units of work in shared transactions; see the module docstring.

    Args:
        database: where to commit.
        max_batch: most units per transaction.
        retries: extra attempts for a batch failing with a transient error.
        retry_delay: first back-off in seconds (doubled per attempt).
        on_batch: called with (units, seconds) after each successful commit (metrics).
    """

    def __init__(
        self,
        database: Database,
        *,
        max_batch: int = DEFAULT_MAX_BATCH,
        retries: int = DEFAULT_RETRIES,
        retry_delay: float = 0.05,
        on_batch: BatchObserver | None = None,
    ) -> None:
        self.database = database
        self.max_batch = max_batch
        self.retries = retries
        self.retry_delay = retry_delay
        self.on_batch = on_batch
        self._queue: list[_Pending] = []
        self._wakeup = asyncio.Event()
        self._worker: asyncio.Task[None] | None = None
        self._closing = False
        self.batches = 0
        self.units = 0

    async def run(self, unit: Unit[T]) -> T:
        """Run ``unit`` in the next group transaction; return its result once committed.

        Raises:
            StorageUnavailableError: the database kept failing.
            Exception: whatever the unit itself raised (its writes were rolled back).
        """
        result: T = await self._enqueue(_Pending(unit, self._future()))
        return result

    async def insert(self, writer: RowWriter, rows: Sequence[Any]) -> list[Any] | None:
        """Write ``rows`` in the next group transaction; return once committed.

        The rows of every caller of the same ``writer`` in one batch go into one call of
        ``writer`` (one multi-row statement instead of one per caller), after the batch's
        other units, so rows may refer to what those units created. Should that combined
        write fail, each caller's rows are retried alone and only the faulty ones fail.

        Returns:
            This caller's part of what ``writer`` returned when it returns one result per
            row (a list as long as the rows), else None.
        """

        async def alone(session: AsyncSession) -> list[Any] | None:
            return _per_row(await writer(session, rows), len(rows))

        result: list[Any] | None = await self._enqueue(
            _Pending(alone, self._future(), writer, rows)
        )
        return result

    def _future(self) -> asyncio.Future[Any]:
        return asyncio.get_running_loop().create_future()

    async def _enqueue(self, pending: _Pending) -> Any:
        self._queue.append(pending)
        self._wakeup.set()
        if self._worker is None or self._worker.done():
            self._worker = asyncio.create_task(self._work(), name="group-commit")
        # Awaited as it is: a caller cancelled meanwhile (its station went away) cancels its
        # own future, which the worker then leaves alone (no result, no exception "never
        # retrieved"); its unit still runs with the batch. No shield, no done-callback: each
        # would cost every write another future or callback on the loop.
        return await pending.future

    async def close(self) -> None:
        """Finish every queued unit, then stop the worker."""
        self._closing = True
        self._wakeup.set()
        if self._worker is not None:
            await self._worker

    async def _work(self) -> None:
        while True:
            if not self._queue:
                if self._closing:
                    return
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            batch, self._queue = self._queue[: self.max_batch], self._queue[self.max_batch :]
            await self._commit(batch)

    async def _commit(self, batch: list[_Pending]) -> None:
        delay = self.retry_delay
        for attempt in range(self.retries + 1):
            started = time.perf_counter()
            try:
                results = await self._attempt(batch)
            except Exception as exc:
                if not _transient(exc):
                    # Not a unit's own error (those are handled inside the attempt) nor a
                    # transient one: fail this batch's callers rather than leave them waiting
                    # on a worker that died; the next unit starts a new worker.
                    _log.exception("group commit failed", units=len(batch))
                    for pending in batch:
                        if not pending.future.done():
                            pending.future.set_exception(exc)
                    return
                if attempt < self.retries:
                    _log.warning("group commit failed; retrying", error=str(exc).splitlines()[0])
                    await asyncio.sleep(delay)
                    delay *= 2
                    continue
                _log.error("group commit failed; giving up", error=str(exc).splitlines()[0])
                failure = StorageUnavailableError("storage unavailable")
                for pending in batch:
                    if not pending.future.done():
                        pending.future.set_exception(failure)
                return
            except BaseException as exc:  # cancelled, or a bug: never leave callers hanging
                for pending in batch:
                    if not pending.future.done():
                        pending.future.set_exception(
                            StorageUnavailableError(f"group commit aborted: {exc!r}")
                        )
                raise
            self.batches += 1
            self.units += len(batch)
            if self.on_batch is not None:
                self.on_batch(len(batch), time.perf_counter() - started)
            for pending, (ok, value) in zip(batch, results, strict=True):
                if pending.future.done():
                    continue
                if ok:
                    pending.future.set_result(value)
                else:
                    pending.future.set_exception(value)
            return

    async def _attempt(self, batch: list[_Pending]) -> list[tuple[bool, Any]]:
        """Run the batch in one transaction; fall back to a SAVEPOINT per unit on an error.

        The optimistic pass costs one statement round trip per unit; a SAVEPOINT around each
        would triple that, for an error that almost never happens (a unit's own error, such
        as a constraint). When one does, the whole pass is rolled back and the batch runs
        again with a SAVEPOINT per unit, so only the failing unit loses its writes.
        """
        if self.database.sqlite_file is not None and all(
            isinstance(pending.writer, InsertWriter) for pending in batch
        ):
            try:
                return await self._attempt_without_session(batch)
            except Exception as exc:
                if _transient(exc):
                    raise
                _warn_one_by_one(len(batch), exc)
                return await self._attempt_isolated(batch)
        async with self.database.write_session() as session:
            results: list[tuple[bool, Any]] = []
            # writer -> (its rows in batch order, (result index, first row, row count) per caller)
            combined: dict[RowWriter, tuple[list[Any], list[tuple[int, int, int]]]] = {}
            try:
                for pending in batch:
                    if pending.writer is None:
                        results.append((True, await pending.unit(session)))
                    else:
                        rows, callers = combined.setdefault(pending.writer, ([], []))
                        callers.append((len(results), len(rows), len(pending.rows)))
                        rows.extend(pending.rows)
                        results.append((True, None))
                for writer, (rows, callers) in combined.items():
                    per_row = _per_row(await writer(session, rows), len(rows))
                    if per_row is not None:
                        for index, first, count in callers:
                            results[index] = (True, per_row[first : first + count])
            except Exception as exc:
                if _transient(exc):
                    raise
                _warn_one_by_one(len(batch), exc)
                await session.rollback()
            else:
                await session.commit()
                return results
        return await self._attempt_isolated(batch)

    async def _attempt_without_session(self, batch: list[_Pending]) -> list[tuple[bool, Any]]:
        """A batch of inserts only, on SQLite: each writer's rows in one statement, all in one
        transaction, in one hop to a thread (:meth:`Database.insert_many`), no ORM session."""
        rows_by_writer: dict[InsertWriter, list[Any]] = {}
        for pending in batch:
            rows_by_writer.setdefault(cast(InsertWriter, pending.writer), []).extend(pending.rows)
        dialect = self.database.engine.dialect
        await self.database.insert_many(
            [writer.prepare(dialect, rows) for writer, rows in rows_by_writer.items() if rows]
        )
        return [(True, None)] * len(batch)

    async def _attempt_isolated(self, batch: list[_Pending]) -> list[tuple[bool, Any]]:
        results: list[tuple[bool, Any]] = []
        async with self.database.write_session() as session:
            for pending in batch:
                try:
                    async with session.begin_nested():
                        value = await pending.unit(session)
                except Exception as exc:
                    if _transient(exc):
                        raise  # the connection or database failed: retry the whole batch
                    results.append((False, exc))  # the unit's own error: only it rolls back
                else:
                    results.append((True, value))
            await session.commit()
        return results


def _warn_one_by_one(units: int, exc: Exception) -> None:
    """Log that a batch failed for a unit's own error and runs again one unit at a time."""
    error = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    _log.warning(
        "a unit of the group commit failed; running them one by one", units=units, error=error
    )


def _per_row(result: Any, rows: int) -> list[Any] | None:
    """``result`` when it is a list with one entry per row, else None."""
    return result if isinstance(result, list) and len(result) == rows else None


def _transient(exc: BaseException) -> bool:
    """Errors of the database or the connection, worth retrying (not a unit's own error)."""
    if isinstance(exc, OperationalError | InterfaceError | OSError):
        return True
    return isinstance(exc, DBAPIError) and exc.connection_invalidated
