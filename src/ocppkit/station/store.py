"""The station store: a persistent message queue and per-station state (SQLite).

One database file serves a whole fleet (or one station); every row is keyed by station id.

Why SQLite in WAL mode with ``synchronous=NORMAL``
---------------------------------------------------
A commit in WAL mode appends the transaction's pages to the ``-wal`` file with ``write()``
before ``COMMIT`` returns; with ``synchronous=NORMAL`` SQLite skips the ``fsync`` of that
append (it syncs at checkpoints). A ``write()`` that returned is in the kernel's page cache,
which belongs to the OS, not the process: ``kill -9`` of the emulator cannot undo it, and
the next open replays the WAL. So every commit that returned survives a process kill; only
an OS crash or power loss can lose the last few commits (never corrupt the file: WAL frames
carry checksums and a torn tail is ignored). Pass ``synchronous="FULL"`` to also survive
power loss, at one ``fsync`` per group commit. ``tests/station/test_store_kill9.py`` kills a
real writer process with SIGKILL and checks every acknowledged message is there once.

Theory of operation
-------------------
All database work runs on **one writer thread** that owns the only connection, so the
asyncio loop never blocks on SQLite. Each call of the async API becomes a *job*; the thread
takes the first waiting job, collects more for up to ``batch_window`` seconds (at most
``max_batch``), runs each job inside its own SAVEPOINT of one transaction — a job that fails
is rolled back alone and its caller gets the exception — and then **commits once** for the
whole batch (group commit: thousands of stations' enqueues in a few commits). Results are
handed back to the loop only after that commit, so "``await enqueue(...)`` returned" means
"durable". Reads run on the same thread, so they see every write that was acknowledged.
Cancelling an awaiting caller does not withdraw its job: it may still commit. Use a store
from one event loop.

Tables: ``queue`` (messages waiting for their CALLRESULT: the transaction messages and the
security events, which A04.FR.02 also wants delivered however long the station is offline —
:func:`ocppkit.station.delivery.is_queued_message`; the integer ``id`` is the global FIFO
order and is never reused), ``dropped`` (messages given up on, with the
reason, the newest ``keep_dropped`` per station), ``state`` (one JSON object per station:
configuration snapshot, transactions in progress, seqNo counters, local list / cache — what
the other station modules' ``to_dict()`` give) and ``seq`` (the next 2.0.1 ``seqNo`` per
transaction, raised in the same commit as the message that used one).

Interface for the runtime
-------------------------
* ``store = await StationStore.open(path)``; ``store.incidents`` lists what was quarantined
  on open (report each with a queued SecurityEventNotification); ``await store.close()``.
* ``await store.enqueue(NewMessage.from_struct(station_id, action, request, tx_key=...))``
  returns the :class:`QueuedMessage` after commit (``enqueue_many`` for several).
* ``await store.head(station_id)`` is the oldest queued message ("peek next", FIFO per
  station); ``await store.pending(station_id)`` all of them in order; ``get(entry_id)``,
  ``count(station_id)``. After a restart, a head with ``in_flight_at_crash`` was sent and
  never answered: send it again (at least once).
* Before each transmission ``await store.mark_sent(entry_id, message_id=..., at=...)``;
  ``QueuedMessage.message_id`` is a uuid4 fixed at enqueue for runtimes that keep the id
  across retries (2.1), and a runtime that uses a fresh id per attempt records it here.
* After a failure to process: ``await store.mark_failed(entry_id, failures=..., not_before=...,
  error=...)`` with the values from :func:`ocppkit.station.delivery.after_outcome`.
* After the CALLRESULT: ``await store.remove(entry_id, state=...)`` — ``True`` exactly once;
  the optional state blob is written in the same commit (e.g. the 1.6 transactionId the
  StartTransaction.conf brought), so a kill cannot separate the two.
* After the last failed attempt: ``await store.drop(entry_id, reason, state=...)``;
  ``await store.dropped(station_id)`` lists them. F8 thinning: ``await store.drop_many(ids,
  reason)`` with the ids from :func:`ocppkit.station.delivery.thin_updates`.
* ``await store.save_state(station_id, blob)`` / ``await store.load_state(station_id)``;
  ``await store.seq_counters(station_id)`` for :meth:`ocppkit.station.delivery.SeqNos.merge`
  (``forget_seq`` when a transaction is over); ``delete_state``;
  ``await store.station_ids()`` every station with state or queued messages (fleet restart).

Corrupt files are never fatal: a file that is not an SQLite database, fails
``PRAGMA integrity_check``, has an unknown schema, or holds a state row that is not a JSON
object is renamed aside to ``<name>.corrupt-<UTC timestamp>`` (its ``-wal``/``-shm`` along,
so it can still be opened for analysis), a fresh store is created and a
:class:`StoreIncident` is recorded. When only state rows are bad the file is otherwise sound,
so its queue, counters and good state rows are copied into the fresh store and only the bad
stations' state is lost (they are named in the incident).
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import json
import os
import queue
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Generic, TypeVar

import msgspec
import structlog

from ocppkit.station.delivery import EventKind, event_kind, is_queued_message

__all__ = [
    "DEFAULT_BATCH_WINDOW",
    "DEFAULT_KEEP_DROPPED",
    "DEFAULT_MAX_BATCH",
    "SCHEMA_VERSION",
    "DroppedMessage",
    "IncidentKind",
    "NewMessage",
    "QueuedMessage",
    "StationStore",
    "StoreClosedError",
    "StoreIncident",
    "StoreStats",
]

#: Seconds the writer waits after the first job of a batch for more to join it.
DEFAULT_BATCH_WINDOW: Final = 0.002
#: Jobs in one transaction at most.
DEFAULT_MAX_BATCH: Final = 2_000
#: Dropped messages kept per station (the newest).
DEFAULT_KEEP_DROPPED: Final = 1_000
SCHEMA_VERSION: Final = 1

_SQLITE_MAGIC: Final = b"SQLite format 3\x00"
_log = structlog.get_logger("ocppkit.station")

T = TypeVar("T")

_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS queue (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    station_id TEXT NOT NULL,
    message_id TEXT NOT NULL,
    action TEXT NOT NULL,
    payload BLOB NOT NULL,
    tx_key TEXT,
    kind TEXT,
    seq_no INTEGER,
    enqueued_at REAL NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    failures INTEGER NOT NULL DEFAULT 0,
    last_attempt_at REAL,
    last_message_id TEXT,
    last_error TEXT,
    not_before REAL
);
CREATE INDEX IF NOT EXISTS queue_station ON queue (station_id, id);
CREATE TABLE IF NOT EXISTS dropped (
    id INTEGER PRIMARY KEY,
    station_id TEXT NOT NULL,
    message_id TEXT NOT NULL,
    action TEXT NOT NULL,
    payload BLOB NOT NULL,
    tx_key TEXT,
    kind TEXT,
    seq_no INTEGER,
    enqueued_at REAL NOT NULL,
    attempts INTEGER NOT NULL,
    failures INTEGER NOT NULL,
    dropped_at REAL NOT NULL,
    reason TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS dropped_station ON dropped (station_id, id);
CREATE TABLE IF NOT EXISTS state (
    station_id TEXT PRIMARY KEY,
    data TEXT NOT NULL,
    updated_at REAL NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS seq (
    station_id TEXT NOT NULL,
    tx_key TEXT NOT NULL,
    next_seq INTEGER NOT NULL,
    PRIMARY KEY (station_id, tx_key)
) WITHOUT ROWID;
"""
_TABLES: Final = ("queue", "dropped", "state", "seq")
_QUEUE_COLUMNS: Final = (
    "id, station_id, message_id, action, payload, tx_key, kind, seq_no, enqueued_at, "
    "attempts, failures, last_attempt_at, last_message_id, last_error, not_before"
)


class StoreClosedError(RuntimeError):
    """Local misuse: the store was used after :meth:`StationStore.close`."""


class IncidentKind(enum.StrEnum):
    NOT_A_DATABASE = "not_a_database"
    INTEGRITY = "integrity_check_failed"
    UNKNOWN_SCHEMA = "unknown_schema"
    BAD_STATE_ROW = "bad_state_row"


@dataclass(frozen=True, slots=True)
class StoreIncident:
    """A damaged store file found on open and set aside (checklist F7)."""

    kind: IncidentKind
    path: Path
    quarantined_to: Path
    detail: str
    at: float
    #: Stations whose state was lost (``BAD_STATE_ROW``); empty when the whole file was lost.
    station_ids: tuple[str, ...] = ()
    #: Whether the queue and the good state rows were copied into the fresh store.
    salvaged: bool = False


@dataclass(slots=True)
class StoreStats:
    """Counters of the writer thread (read them from any thread; they only grow)."""

    commits: int = 0
    batches: int = 0
    write_jobs: int = 0
    read_jobs: int = 0
    largest_batch: int = 0


@dataclass(frozen=True, slots=True)
class NewMessage:
    """A message to enqueue; ``payload`` is ``msgspec.json.encode(request)``."""

    station_id: str
    action: str
    payload: bytes
    tx_key: str | None = None
    kind: EventKind | None = None
    seq_no: int | None = None
    message_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    enqueued_at: float | None = None

    @classmethod
    def from_struct(
        cls,
        station_id: str,
        action: str,
        request: msgspec.Struct,
        *,
        tx_key: str | None,
        enqueued_at: float | None = None,
    ) -> NewMessage:
        """Encode a typed request; its kind, and a TransactionEvent's ``seqNo``, are read
        from it. :class:`ValueError` (local misuse) for a message that does not belong in
        the queue (:func:`~ocppkit.station.delivery.is_queued_message`)."""
        if not is_queued_message(action, request):
            raise ValueError(f"{action} is not a queued message")
        seq_no = getattr(request, "seq_no", None) if action == "TransactionEvent" else None
        return cls(
            station_id=station_id,
            action=action,
            payload=msgspec.json.encode(request),
            tx_key=tx_key,
            kind=event_kind(action, request),
            seq_no=seq_no if isinstance(seq_no, int) else None,
            enqueued_at=enqueued_at,
        )


@dataclass(frozen=True, slots=True)
class _Message:
    """The columns the ``queue`` and ``dropped`` tables share, first and in this order."""

    id: int
    station_id: str
    message_id: str
    action: str
    payload: bytes
    tx_key: str | None
    kind: EventKind | None
    seq_no: int | None
    enqueued_at: float


@dataclass(frozen=True, slots=True)
class QueuedMessage(_Message):
    """A row of the queue. ``id`` orders the queue and names the entry in later calls."""

    attempts: int = 0
    failures: int = 0
    last_attempt_at: float | None = None
    last_message_id: str | None = None
    last_error: str | None = None
    not_before: float | None = None

    @property
    def in_flight_at_crash(self) -> bool:
        """Sent more often than it failed: its answer never came (resend it)."""
        return self.attempts > self.failures


@dataclass(frozen=True, slots=True)
class DroppedMessage(_Message):
    """A message given up on (the ``dropped`` table keeps the newest per station)."""

    attempts: int
    failures: int
    dropped_at: float
    reason: str


def _fields(row: Sequence[Any]) -> list[Any]:
    """A ``queue`` or ``dropped`` row, selected in the field order of its dataclass, as that
    dataclass's arguments."""
    values = list(row)
    values[4] = bytes(values[4])  # payload
    values[6] = EventKind(values[6]) if values[6] is not None else None  # kind
    return values


def _queued(row: Sequence[Any]) -> QueuedMessage:
    return QueuedMessage(*_fields(row))


class _Job(Generic[T]):
    __slots__ = ("fn", "future", "loop", "write")

    def __init__(
        self,
        fn: Callable[[sqlite3.Connection], T],
        write: bool,
        loop: asyncio.AbstractEventLoop,
        future: asyncio.Future[T],
    ) -> None:
        self.fn = fn
        self.write = write
        self.loop = loop
        self.future = future


def _deliver(future: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
    if future.done():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)


class StationStore:
    """The persistent queue and state store; see the module docstring.

    Create with :meth:`open`. Args (keyword): ``batch_window`` seconds a batch stays open
    after its first job; ``max_batch`` jobs per transaction; ``synchronous`` ``"NORMAL"``
    (survives process kill) or ``"FULL"`` (also power loss); ``keep_dropped`` dropped
    messages kept per station; ``clock`` wall-clock seconds for timestamps.
    """

    def __init__(
        self,
        path: Path,
        *,
        batch_window: float = DEFAULT_BATCH_WINDOW,
        max_batch: int = DEFAULT_MAX_BATCH,
        synchronous: str = "NORMAL",
        keep_dropped: int = DEFAULT_KEEP_DROPPED,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if synchronous.upper() not in ("NORMAL", "FULL", "EXTRA"):
            raise ValueError(f"synchronous must be NORMAL, FULL or EXTRA, not {synchronous!r}")
        if batch_window < 0 or max_batch < 1 or keep_dropped < 0:
            raise ValueError("batch_window >= 0, max_batch >= 1 and keep_dropped >= 0 needed")
        self.path = Path(path)
        self.batch_window = batch_window
        self.max_batch = max_batch
        self.synchronous = synchronous.upper()
        self.keep_dropped = keep_dropped
        self._clock = clock
        self.stats = StoreStats()
        self.incidents: tuple[StoreIncident, ...] = ()
        self._jobs: queue.SimpleQueue[_Job[Any] | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._closed = False

    # ------------------------------------------------------------------ lifecycle

    @classmethod
    async def open(
        cls,
        path: str | os.PathLike[str],
        *,
        batch_window: float = DEFAULT_BATCH_WINDOW,
        max_batch: int = DEFAULT_MAX_BATCH,
        synchronous: str = "NORMAL",
        keep_dropped: int = DEFAULT_KEEP_DROPPED,
        clock: Callable[[], float] = time.time,
    ) -> StationStore:
        """Open (or create) the store at ``path``, quarantining a damaged file."""
        store = cls(
            Path(path),
            batch_window=batch_window,
            max_batch=max_batch,
            synchronous=synchronous,
            keep_dropped=keep_dropped,
            clock=clock,
        )
        loop = asyncio.get_running_loop()
        ready: asyncio.Future[tuple[StoreIncident, ...]] = loop.create_future()
        store._thread = threading.Thread(
            target=store._run, args=(loop, ready), name=f"station-store:{store.path.name}"
        )
        store._thread.daemon = True
        store._thread.start()
        store.incidents = await ready
        for incident in store.incidents:
            _log.warning(
                "station store quarantined",
                kind=str(incident.kind),
                path=str(incident.path),
                quarantined_to=str(incident.quarantined_to),
                detail=incident.detail,
                station_ids=list(incident.station_ids),
                salvaged=incident.salvaged,
            )
        return store

    async def close(self) -> None:
        """Finish the jobs already submitted, checkpoint and close. Idempotent."""
        if self._closed:
            return
        self._closed = True
        self._jobs.put(None)
        if self._thread is not None:
            await asyncio.to_thread(self._thread.join)

    async def __aenter__(self) -> StationStore:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # ------------------------------------------------------------------ the queue

    async def enqueue(
        self, message: NewMessage, *, state: Mapping[str, Any] | None = None
    ) -> QueuedMessage:
        """Append a transaction message; returns after the commit (durable).

        ``state``, when given, replaces the station's state blob in the same commit (e.g.
        "a transaction is running" with its StartTransaction), so a kill cannot separate them.
        """
        (queued,) = await self.enqueue_many([message], state=state)
        return queued

    async def enqueue_many(
        self, messages: Iterable[NewMessage], *, state: Mapping[str, Any] | None = None
    ) -> list[QueuedMessage]:
        """Append several messages, in this order, in one commit (with ``state``, as
        :meth:`enqueue`; the state goes to the first message's station)."""
        items = list(messages)
        now = self._clock()

        def job(db: sqlite3.Connection) -> list[QueuedMessage]:
            if state is not None and items:
                self._write_state(db, items[0].station_id, state, now)
            out: list[QueuedMessage] = []
            for m in items:
                at = m.enqueued_at if m.enqueued_at is not None else now
                kind = str(m.kind) if m.kind is not None else None
                cursor = db.execute(
                    "INSERT INTO queue (station_id, message_id, action, payload, tx_key, kind,"
                    " seq_no, enqueued_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (m.station_id, m.message_id, m.action, m.payload, m.tx_key, kind, m.seq_no, at),
                )
                if m.seq_no is not None and m.tx_key is not None:
                    db.execute(
                        "INSERT INTO seq (station_id, tx_key, next_seq) VALUES (?, ?, ?)"
                        " ON CONFLICT (station_id, tx_key)"
                        " DO UPDATE SET next_seq = max(next_seq, excluded.next_seq)",
                        (m.station_id, m.tx_key, m.seq_no + 1),
                    )
                row_id = cursor.lastrowid
                assert row_id is not None
                out.append(
                    QueuedMessage(
                        id=row_id,
                        station_id=m.station_id,
                        message_id=m.message_id,
                        action=m.action,
                        payload=m.payload,
                        tx_key=m.tx_key,
                        kind=m.kind,
                        seq_no=m.seq_no,
                        enqueued_at=at,
                    )
                )
            return out

        return await self._submit(job, write=True)

    async def head(self, station_id: str) -> QueuedMessage | None:
        """The station's oldest queued message, or ``None``."""

        def job(db: sqlite3.Connection) -> QueuedMessage | None:
            row = db.execute(
                f"SELECT {_QUEUE_COLUMNS} FROM queue WHERE station_id = ? ORDER BY id LIMIT 1",
                (station_id,),
            ).fetchone()
            return _queued(row) if row is not None else None

        return await self._submit(job, write=False)

    async def pending(self, station_id: str, *, limit: int | None = None) -> list[QueuedMessage]:
        """The station's queued messages, oldest first."""

        def job(db: sqlite3.Connection) -> list[QueuedMessage]:
            rows = db.execute(
                f"SELECT {_QUEUE_COLUMNS} FROM queue WHERE station_id = ? ORDER BY id LIMIT ?",
                (station_id, -1 if limit is None else limit),
            ).fetchall()
            return [_queued(row) for row in rows]

        return await self._submit(job, write=False)

    async def get(self, entry_id: int) -> QueuedMessage | None:
        def job(db: sqlite3.Connection) -> QueuedMessage | None:
            row = db.execute(
                f"SELECT {_QUEUE_COLUMNS} FROM queue WHERE id = ?", (entry_id,)
            ).fetchone()
            return _queued(row) if row is not None else None

        return await self._submit(job, write=False)

    async def count(self, station_id: str | None = None) -> int:
        """Queued messages of one station, or of all."""

        def job(db: sqlite3.Connection) -> int:
            if station_id is None:
                row = db.execute("SELECT count(*) FROM queue").fetchone()
            else:
                row = db.execute(
                    "SELECT count(*) FROM queue WHERE station_id = ?", (station_id,)
                ).fetchone()
            return int(row[0])

        return await self._submit(job, write=False)

    async def mark_sent(
        self, entry_id: int, *, message_id: str | None = None, at: float | None = None
    ) -> bool:
        """Record a transmission (before it goes out): ``attempts`` + 1, the message id used.

        ``False`` when the entry is no longer queued.
        """
        when = self._clock() if at is None else at

        def job(db: sqlite3.Connection) -> bool:
            cursor = db.execute(
                "UPDATE queue SET attempts = attempts + 1, last_attempt_at = ?,"
                " last_message_id = coalesce(?, message_id) WHERE id = ?",
                (when, message_id, entry_id),
            )
            return cursor.rowcount == 1

        return await self._submit(job, write=True)

    async def mark_failed(
        self,
        entry_id: int,
        *,
        failures: int,
        not_before: float | None,
        error: str | None = None,
    ) -> bool:
        """Record a failure to process (CALLERROR or timeout) and the earliest retry time."""

        def job(db: sqlite3.Connection) -> bool:
            cursor = db.execute(
                "UPDATE queue SET failures = ?, not_before = ?, last_error = ? WHERE id = ?",
                (failures, not_before, error, entry_id),
            )
            return cursor.rowcount == 1

        return await self._submit(job, write=True)

    async def remove(self, entry_id: int, *, state: Mapping[str, Any] | None = None) -> bool:
        """Remove a delivered message (after its CALLRESULT). ``True`` exactly once.

        ``state``, when given, replaces the station's state blob in the same commit.
        """
        now = self._clock()

        def job(db: sqlite3.Connection) -> bool:
            row = db.execute("SELECT station_id FROM queue WHERE id = ?", (entry_id,)).fetchone()
            if row is None:
                return False
            db.execute("DELETE FROM queue WHERE id = ?", (entry_id,))
            if state is not None:
                self._write_state(db, row[0], state, now)
            return True

        return await self._submit(job, write=True)

    async def drop(
        self, entry_id: int, reason: str, *, state: Mapping[str, Any] | None = None
    ) -> bool:
        """Give up on a message: move it to ``dropped`` with ``reason``. ``True`` once."""
        now = self._clock()

        def job(db: sqlite3.Connection) -> bool:
            return self._drop(db, entry_id, reason, now, state)

        return await self._submit(job, write=True)

    async def drop_many(self, entry_ids: Iterable[int], reason: str) -> int:
        """Drop several messages in one commit (F8 thinning); returns how many were queued."""
        ids = list(entry_ids)
        now = self._clock()

        def job(db: sqlite3.Connection) -> int:
            return sum(self._drop(db, entry_id, reason, now, None) for entry_id in ids)

        return await self._submit(job, write=True)

    async def dropped(self, station_id: str) -> list[DroppedMessage]:
        """The station's dropped messages, oldest first."""

        def job(db: sqlite3.Connection) -> list[DroppedMessage]:
            rows = db.execute(
                "SELECT id, station_id, message_id, action, payload, tx_key, kind, seq_no,"
                " enqueued_at, attempts, failures, dropped_at, reason FROM dropped"
                " WHERE station_id = ? ORDER BY id",
                (station_id,),
            ).fetchall()
            return [DroppedMessage(*_fields(r)) for r in rows]

        return await self._submit(job, write=False)

    # ------------------------------------------------------------------ state

    async def save_state(self, station_id: str, state: Mapping[str, Any]) -> None:
        """Replace the station's state blob (a JSON object); returns after the commit."""
        now = self._clock()

        def job(db: sqlite3.Connection) -> None:
            self._write_state(db, station_id, state, now)

        await self._submit(job, write=True)

    async def load_state(self, station_id: str) -> dict[str, Any] | None:
        """The station's state blob, or ``None`` when it has none."""

        def job(db: sqlite3.Connection) -> str | None:
            row = db.execute(
                "SELECT data FROM state WHERE station_id = ?", (station_id,)
            ).fetchone()
            return None if row is None else str(row[0])

        data = await self._submit(job, write=False)
        if data is None:
            return None
        value = json.loads(data)
        assert isinstance(value, dict)  # checked on open, written only by _write_state
        return value

    async def delete_state(self, station_id: str) -> bool:
        def job(db: sqlite3.Connection) -> bool:
            return db.execute("DELETE FROM state WHERE station_id = ?", (station_id,)).rowcount == 1

        return await self._submit(job, write=True)

    async def seq_counters(self, station_id: str) -> dict[str, int]:
        """The next 2.0.1 seqNo per transaction key, as committed with the messages."""

        def job(db: sqlite3.Connection) -> dict[str, int]:
            rows = db.execute(
                "SELECT tx_key, next_seq FROM seq WHERE station_id = ?", (station_id,)
            ).fetchall()
            return {str(k): int(v) for k, v in rows}

        return await self._submit(job, write=False)

    async def forget_seq(self, station_id: str, tx_key: str) -> None:
        """Drop a finished transaction's seqNo counter."""

        def job(db: sqlite3.Connection) -> None:
            db.execute("DELETE FROM seq WHERE station_id = ? AND tx_key = ?", (station_id, tx_key))

        await self._submit(job, write=True)

    async def station_ids(self) -> list[str]:
        """Every station with a state blob or a queued message, sorted."""

        def job(db: sqlite3.Connection) -> list[str]:
            rows = db.execute(
                "SELECT station_id FROM state UNION SELECT DISTINCT station_id FROM queue"
                " ORDER BY 1"
            ).fetchall()
            return [str(r[0]) for r in rows]

        return await self._submit(job, write=False)

    # ------------------------------------------------------------------ internals

    @staticmethod
    def _write_state(
        db: sqlite3.Connection, station_id: str, state: Mapping[str, Any], now: float
    ) -> None:
        data = json.dumps(dict(state), separators=(",", ":"), allow_nan=False)
        db.execute(
            "INSERT INTO state (station_id, data, updated_at) VALUES (?, ?, ?)"
            " ON CONFLICT (station_id) DO UPDATE SET data = excluded.data,"
            " updated_at = excluded.updated_at",
            (station_id, data, now),
        )

    def _drop(
        self,
        db: sqlite3.Connection,
        entry_id: int,
        reason: str,
        now: float,
        state: Mapping[str, Any] | None,
    ) -> bool:
        row = db.execute(f"SELECT {_QUEUE_COLUMNS} FROM queue WHERE id = ?", (entry_id,)).fetchone()
        if row is None:
            return False
        q = _queued(row)
        db.execute(
            "INSERT INTO dropped (id, station_id, message_id, action, payload, tx_key, kind,"
            " seq_no, enqueued_at, attempts, failures, dropped_at, reason)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                q.id,
                q.station_id,
                q.message_id,
                q.action,
                q.payload,
                q.tx_key,
                str(q.kind) if q.kind is not None else None,
                q.seq_no,
                q.enqueued_at,
                q.attempts,
                q.failures,
                now,
                reason,
            ),
        )
        db.execute("DELETE FROM queue WHERE id = ?", (entry_id,))
        db.execute(
            "DELETE FROM dropped WHERE station_id = ? AND id NOT IN"
            " (SELECT id FROM dropped WHERE station_id = ? ORDER BY id DESC LIMIT ?)",
            (q.station_id, q.station_id, self.keep_dropped),
        )
        if state is not None:
            self._write_state(db, q.station_id, state, now)
        _log.info(
            "transaction message dropped",
            station_id=q.station_id,
            message_id=q.last_message_id or q.message_id,
            action=q.action,
            reason=reason,
        )
        return True

    async def _submit(self, fn: Callable[[sqlite3.Connection], T], *, write: bool) -> T:
        if self._closed:
            raise StoreClosedError("the station store is closed")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._jobs.put(_Job(fn, write, loop, future))
        return await future

    def _run(
        self, loop: asyncio.AbstractEventLoop, ready: asyncio.Future[tuple[StoreIncident, ...]]
    ) -> None:
        """The writer thread: open, then batches until the close sentinel."""
        try:
            db, incidents = _open_database(self.path, self.synchronous, self._clock)
        except BaseException as exc:  # pragma: no cover - e.g. a directory that cannot be written
            loop.call_soon_threadsafe(_deliver, ready, None, exc)
            return
        loop.call_soon_threadsafe(_deliver, ready, tuple(incidents), None)
        try:
            stop = False
            while not stop:
                first = self._jobs.get()
                if first is None:
                    break
                batch: list[_Job[Any]] = [first]
                deadline = time.monotonic() + self.batch_window
                while len(batch) < self.max_batch:
                    remaining = deadline - time.monotonic()
                    try:
                        if remaining > 0:
                            job = self._jobs.get(timeout=remaining)
                        else:
                            job = self._jobs.get_nowait()
                    except queue.Empty:
                        break
                    if job is None:
                        stop = True
                        break
                    batch.append(job)
                self._run_batch(db, batch)
        finally:
            db.close()

    def _run_batch(self, db: sqlite3.Connection, batch: list[_Job[Any]]) -> None:
        writes = any(job.write for job in batch)
        results: list[tuple[Any, BaseException | None]] = []
        try:
            if writes:
                db.execute("BEGIN IMMEDIATE")
            for job in batch:
                if writes:
                    db.execute("SAVEPOINT job")
                try:
                    results.append((job.fn(db), None))
                except Exception as exc:
                    if writes:
                        db.execute("ROLLBACK TO job")
                    results.append((None, exc))
                if writes:
                    db.execute("RELEASE job")
            if writes:
                db.execute("COMMIT")
        except Exception as exc:  # the commit failed (disk full, I/O error): all of them did
            with contextlib.suppress(sqlite3.Error):
                if db.in_transaction:
                    db.execute("ROLLBACK")
            results = [(None, exc)] * len(batch)
        else:
            if writes:
                self.stats.commits += 1
        self.stats.batches += 1
        self.stats.largest_batch = max(self.stats.largest_batch, len(batch))
        for job, (result, error) in zip(batch, results, strict=True):
            if job.write:
                self.stats.write_jobs += 1
            else:
                self.stats.read_jobs += 1
            with contextlib.suppress(RuntimeError):  # the loop is gone
                job.loop.call_soon_threadsafe(_deliver, job.future, result, error)


# ---------------------------------------------------------------------- opening / quarantine


class _Damaged(Exception):
    def __init__(self, kind: IncidentKind, detail: str, station_ids: tuple[str, ...] = ()):
        super().__init__(detail)
        self.kind = kind
        self.detail = detail
        self.station_ids = station_ids


def _connect(path: Path, synchronous: str) -> sqlite3.Connection:
    db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    db.execute("PRAGMA journal_mode = WAL")
    db.execute(f"PRAGMA synchronous = {synchronous}")
    db.execute("PRAGMA busy_timeout = 5000")
    return db


def _damage_of(exc: sqlite3.DatabaseError) -> _Damaged:
    text = str(exc)
    kind = IncidentKind.NOT_A_DATABASE if "not a database" in text else IncidentKind.INTEGRITY
    return _Damaged(kind, text)


def _check(db: sqlite3.Connection) -> None:
    """Raise :class:`_Damaged` when the open database cannot be trusted."""
    rows = db.execute("PRAGMA integrity_check").fetchall()
    if rows != [("ok",)]:
        raise _Damaged(IncidentKind.INTEGRITY, "; ".join(str(r[0]) for r in rows[:5]))
    version = db.execute("PRAGMA user_version").fetchone()[0]
    tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    tables.discard("sqlite_sequence")
    if version == 0 and not tables:
        return  # a new, empty database
    if version != SCHEMA_VERSION or not set(_TABLES) <= tables:
        raise _Damaged(
            IncidentKind.UNKNOWN_SCHEMA,
            f"user_version {version}, tables {sorted(tables)}; expected {SCHEMA_VERSION}",
        )
    bad: list[str] = []
    for station_id, data in db.execute("SELECT station_id, data FROM state"):
        try:
            ok = isinstance(json.loads(data), dict)
        except (TypeError, ValueError, RecursionError):
            ok = False
        if not ok:
            bad.append(str(station_id))
    if bad:
        raise _Damaged(
            IncidentKind.BAD_STATE_ROW,
            f"{len(bad)} state row(s) are not JSON objects",
            tuple(bad),
        )


def _side_files(path: Path) -> list[Path]:
    return [path.with_name(path.name + suffix) for suffix in ("-wal", "-shm", "-journal")]


def _quarantine(path: Path, now: float) -> Path:
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(now))
    target = path.with_name(f"{path.name}.corrupt-{stamp}")
    n = 1
    while target.exists():
        n += 1
        target = path.with_name(f"{path.name}.corrupt-{stamp}-{n}")
    os.replace(path, target)
    for side in _side_files(path):
        if side.exists():
            os.replace(side, target.with_name(target.name + side.name[len(path.name) :]))
    return target


def _create(path: Path, synchronous: str) -> sqlite3.Connection:
    db = _connect(path, synchronous)
    db.executescript(_SCHEMA)
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
    return db


def _salvage(db: sqlite3.Connection, source: Path, bad_station_ids: tuple[str, ...]) -> None:
    """Copy the queue, counters and good state rows of a sound file into ``db``."""
    db.execute("ATTACH DATABASE ? AS old", (str(source),))
    try:
        db.execute("BEGIN IMMEDIATE")
        db.execute("INSERT INTO queue SELECT * FROM old.queue")
        db.execute("INSERT INTO dropped SELECT * FROM old.dropped")
        db.execute("INSERT INTO seq SELECT * FROM old.seq")
        marks = ",".join("?" * len(bad_station_ids))
        db.execute(
            f"INSERT INTO state SELECT * FROM old.state WHERE station_id NOT IN ({marks})",
            bad_station_ids,
        )
        db.execute("COMMIT")
    finally:
        db.execute("DETACH DATABASE old")


def _open_database(
    path: Path, synchronous: str, clock: Callable[[], float]
) -> tuple[sqlite3.Connection, list[StoreIncident]]:
    """Open ``path``; a damaged file is set aside and replaced by a fresh database."""
    path.parent.mkdir(parents=True, exist_ok=True)
    damage: _Damaged | None = None
    if path.exists() and path.stat().st_size > 0:
        with path.open("rb") as f:
            header = f.read(len(_SQLITE_MAGIC))
        if header != _SQLITE_MAGIC:
            damage = _Damaged(IncidentKind.NOT_A_DATABASE, "no SQLite header")
    if damage is None:
        db = None
        try:
            db = _connect(path, synchronous)
            _check(db)
        except _Damaged as exc:
            damage = exc
        except sqlite3.DatabaseError as exc:
            damage = _damage_of(exc)
        if damage is None:
            assert db is not None
            db.executescript(_SCHEMA)
            db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            return db, []
        if db is not None:
            with contextlib.suppress(sqlite3.Error):
                db.close()
    now = clock()
    target = _quarantine(path, now)
    db = _create(path, synchronous)
    salvaged = False
    if damage.kind is IncidentKind.BAD_STATE_ROW:
        _salvage(db, target, damage.station_ids)
        salvaged = True
    incident = StoreIncident(
        kind=damage.kind,
        path=path,
        quarantined_to=target,
        detail=damage.detail,
        at=now,
        station_ids=damage.station_ids,
        salvaged=salvaged,
    )
    return db, [incident]
