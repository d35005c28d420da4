"""The station store on real SQLite files: FIFO, exactly-once removal, group commit, restart,
quarantine of damaged files (1.6 §3.7 / 2.0.1 E11–E13 queueing; checklist F4, F7, F8)."""

from __future__ import annotations

import asyncio
import json
import random
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import msgspec
import pytest

from ocppkit.messages.v16 import requests as v16
from ocppkit.messages.v201 import datatypes as dt201
from ocppkit.messages.v201 import requests as v201
from ocppkit.messages.v201.enums import TransactionEventEnum, TriggerReasonEnum
from ocppkit.station.delivery import EventKind, ThinCandidate, thin_updates
from ocppkit.station.store import (
    IncidentKind,
    NewMessage,
    StationStore,
    StoreClosedError,
)

T = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def _msg(station: str, n: int, *, tx_key: str = "tx", kind: EventKind | None = None) -> NewMessage:
    return NewMessage(
        station_id=station,
        action="MeterValues",
        payload=json.dumps({"n": n}).encode(),
        tx_key=tx_key,
        kind=kind or EventKind.UPDATED,
    )


def _n(payload: bytes) -> int:
    return int(json.loads(payload)["n"])


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "fleet.db"


async def test_fifo_per_station_with_interleaved_stations(path: Path) -> None:
    """1.6 §3.7: transaction messages are delivered in chronological order per station."""
    async with await StationStore.open(path) as store:
        for n in range(6):
            await store.enqueue(_msg("A" if n % 2 == 0 else "B", n))
        assert [_n(m.payload) for m in await store.pending("A")] == [0, 2, 4]
        assert [_n(m.payload) for m in await store.pending("B")] == [1, 3, 5]
        assert [_n(m.payload) for m in await store.pending("A", limit=2)] == [0, 2]
        head = await store.head("A")
        assert head is not None and _n(head.payload) == 0
        assert await store.remove(head.id)
        head = await store.head("A")
        assert head is not None and _n(head.payload) == 2
        assert await store.head("nobody") is None
        assert await store.count() == 5 and await store.count("B") == 3
        assert await store.station_ids() == ["A", "B"]


async def test_removal_after_callresult_happens_exactly_once(path: Path) -> None:
    """Removed only after the CALLRESULT, and only once even when raced (at-least-once
    delivery, exactly-once removal; libocpp handle_call_result)."""
    async with await StationStore.open(path) as store:
        entry = await store.enqueue(_msg("A", 1))
        results = await asyncio.gather(*(store.remove(entry.id) for _ in range(20)))
        assert results.count(True) == 1
        assert not await store.remove(entry.id)
        assert await store.get(entry.id) is None
        assert await store.count("A") == 0


async def test_attempt_metadata_and_message_id_policies(path: Path) -> None:
    """The stored message id serves "same id on retry" (2.1); a fresh id per attempt is
    recorded. A message sent more often than it failed was in flight at a crash."""
    async with await StationStore.open(path) as store:
        entry = await store.enqueue(_msg("A", 1))
        assert len(entry.message_id) == 36 and entry.attempts == 0
        assert await store.mark_sent(entry.id, at=10.0)
        q = await store.get(entry.id)
        assert q is not None and q.last_message_id == entry.message_id and q.in_flight_at_crash
        assert await store.mark_failed(entry.id, failures=1, not_before=70.0, error="InternalError")
        assert await store.mark_sent(entry.id, message_id="fresh-id", at=70.0)
        q = await store.get(entry.id)
        assert q is not None
        assert (q.attempts, q.failures, q.not_before, q.last_error) == (2, 1, 70.0, "InternalError")
        assert q.last_message_id == "fresh-id" and q.last_attempt_at == 70.0
        assert not await store.mark_sent(999_999)
        assert not await store.mark_failed(999_999, failures=1, not_before=None)


async def test_drop_after_max_attempts_records_the_reason(path: Path) -> None:
    """1.6 §3.7.1: after the last failed attempt discard the message and continue with the
    next; the store keeps it with the reason (newest keep_dropped per station)."""
    async with await StationStore.open(path, keep_dropped=2) as store:
        entries = [await store.enqueue(_msg("A", n)) for n in range(4)]
        assert await store.drop(entries[0].id, "CALLERROR InternalError on attempt 3 of 3")
        assert not await store.drop(entries[0].id, "again")
        head = await store.head("A")
        assert head is not None and head.id == entries[1].id
        dropped = await store.dropped("A")
        assert [(d.id, d.reason) for d in dropped] == [
            (entries[0].id, "CALLERROR InternalError on attempt 3 of 3")
        ]
        assert dropped[0].payload == entries[0].payload and dropped[0].kind is EventKind.UPDATED
        assert await store.drop_many([entries[1].id, entries[2].id, 12345], "F8") == 2
        assert [d.id for d in await store.dropped("A")] == [entries[1].id, entries[2].id]


async def test_f8_thinning_drops_every_second_update_in_the_store(path: Path) -> None:
    """Checklist F8: Started and Ended stay; every second Updated goes."""
    async with await StationStore.open(path) as store:
        kinds = [EventKind.STARTED] + [EventKind.UPDATED] * 4 + [EventKind.ENDED]
        for n, kind in enumerate(kinds):
            await store.enqueue(_msg("A", n, kind=kind))
        queued = await store.pending("A")
        victims = thin_updates(ThinCandidate(q.id, q.tx_key, q.kind) for q in queued)
        assert await store.drop_many(victims, "queue above threshold (F8)") == 2
        left = [(q.kind, _n(q.payload)) for q in await store.pending("A")]
        assert left == [
            (EventKind.STARTED, 0),
            (EventKind.UPDATED, 1),
            (EventKind.UPDATED, 3),
            (EventKind.ENDED, 5),
        ]


async def test_state_blob_round_trip_and_atomic_with_removal(path: Path) -> None:
    """The state blob (configuration, transactions, seqNo, local list) is written in the same
    commit as the removal that depends on it (1.6 StartTransaction.conf -> transactionId)."""
    async with await StationStore.open(path) as store:
        assert await store.load_state("A") is None
        await store.save_state("A", {"config": {"HeartbeatInterval": "60"}, "tx": {}})
        start = await store.enqueue(_msg("A", 1, kind=EventKind.STARTED))
        assert await store.remove(start.id, state={"tx": {"c1-1": 4711}})
        assert await store.load_state("A") == {"tx": {"c1-1": 4711}}
        ended = await store.enqueue(_msg("A", 2, kind=EventKind.ENDED))
        assert await store.drop(ended.id, "gave up", state={"tx": {}})
        assert await store.load_state("A") == {"tx": {}}
        assert await store.delete_state("A") and await store.load_state("A") is None


async def test_a_failing_job_fails_alone_in_its_batch(path: Path) -> None:
    """A bad write (not JSON-serialisable) is rolled back alone; the batch still commits."""
    async with await StationStore.open(path, batch_window=0.05) as store:
        results = await asyncio.gather(
            store.enqueue(_msg("A", 1)),
            store.save_state("B", {"bad": object()}),
            store.enqueue(_msg("A", 2)),
            return_exceptions=True,
        )
        assert isinstance(results[1], TypeError)
        assert [_n(m.payload) for m in await store.pending("A")] == [1, 2]
        assert await store.load_state("B") is None


async def test_seqno_counters_commit_with_the_message_and_never_go_back(path: Path) -> None:
    """2.0.1 seqNo is persisted with the event that used it, so a restart cannot reuse one
    (E01.FR.07; checklist F4)."""
    event = v201.TransactionEventRequest(
        event_type=TransactionEventEnum.STARTED,
        timestamp=T,
        trigger_reason=TriggerReasonEnum.AUTHORIZED,
        seq_no=0,
        transaction_info=dt201.Transaction(transaction_id="tx-9"),
    )
    async with await StationStore.open(path) as store:
        first = NewMessage.from_struct("A", "TransactionEvent", event, tx_key="tx-9")
        assert first.kind is EventKind.STARTED and first.seq_no == 0
        await store.enqueue(first)
        later = msgspec.structs.replace(event, event_type=TransactionEventEnum.UPDATED, seq_no=5)
        await store.enqueue(NewMessage.from_struct("A", "TransactionEvent", later, tx_key="tx-9"))
        older = msgspec.structs.replace(event, event_type=TransactionEventEnum.UPDATED, seq_no=2)
        await store.enqueue(NewMessage.from_struct("A", "TransactionEvent", older, tx_key="tx-9"))
        assert await store.seq_counters("A") == {"tx-9": 6}
    async with await StationStore.open(path) as store:
        assert await store.seq_counters("A") == {"tx-9": 6}
        queued = await store.pending("A")
        assert [q.seq_no for q in queued] == [0, 5, 2]
        assert msgspec.json.decode(queued[0].payload, type=v201.TransactionEventRequest) == event
        await store.forget_seq("A", "tx-9")
        assert await store.seq_counters("A") == {}


async def test_from_struct_of_a_16_message() -> None:
    stop = v16.StopTransactionRequest(meter_stop=5, timestamp=T, transaction_id=-1)
    m = NewMessage.from_struct("A", "StopTransaction", stop, tx_key="c1-1", enqueued_at=3.0)
    assert (m.kind, m.seq_no, m.enqueued_at) == (EventKind.ENDED, None, 3.0)
    assert msgspec.json.decode(m.payload)["transactionId"] == -1


async def test_from_struct_a04_fr_02_security_event_is_queued_other_messages_refused() -> None:
    """A04.FR.02: a SecurityEventNotification is queued (no kind, no seqNo); a message that
    does not belong in the queue is local misuse."""
    event = v16.SecurityEventNotificationRequest(type="TamperDetectionActivated", timestamp=T)
    m = NewMessage.from_struct("A", "SecurityEventNotification", event, tx_key=None)
    assert (m.kind, m.seq_no, m.tx_key) == (None, None, None)
    status = v16.StatusNotificationRequest(
        connector_id=1,
        error_code=v16.ChargePointErrorCode.NO_ERROR,
        status=v16.ChargePointStatus.AVAILABLE,
    )
    with pytest.raises(ValueError, match="not a queued message"):
        NewMessage.from_struct("A", "StatusNotification", status, tx_key=None)


async def test_thousand_stations_enqueue_at_once_in_few_commits(path: Path) -> None:
    """Fleet scale: 1 000 stations' enqueues arriving together share a few commits (group
    commit), and every one is durable when its await returns."""
    async with await StationStore.open(path) as store:
        before = store.stats.commits
        entries = await asyncio.gather(*(store.enqueue(_msg(f"CS{i:04}", i)) for i in range(1000)))
        commits = store.stats.commits - before
        assert 1 <= commits <= 5, commits
        assert store.stats.largest_batch >= 200
        assert len({e.id for e in entries}) == 1000
    # Another connection sees all of them: they were committed.
    with sqlite3.connect(path) as raw:
        assert raw.execute("SELECT count(*) FROM queue").fetchone()[0] == 1000


async def test_database_work_runs_off_the_event_loop(path: Path) -> None:
    """Fleet scale: the store must not block the asyncio loop; while a big write commits on
    the writer thread, other coroutines keep running."""
    async with await StationStore.open(path, synchronous="FULL") as store:
        ticks, done = 0, False

        async def ticker() -> None:
            nonlocal ticks
            while not done:
                ticks += 1
                await asyncio.sleep(0)

        task = asyncio.create_task(ticker())
        await asyncio.sleep(0)
        before = ticks
        await store.enqueue_many(_msg("A", n) for n in range(5000))
        during = ticks - before
        done = True
        await task
        assert during > 10, during


async def test_lone_writer_commits_alone(path: Path) -> None:
    async with await StationStore.open(path) as store:
        await store.enqueue(_msg("A", 1))
        await store.enqueue(_msg("A", 2))
        assert store.stats.commits == 2
        await store.pending("A")
        assert store.stats.commits == 2 and store.stats.read_jobs == 1


async def test_restart_restores_queue_state_and_never_reuses_ids(path: Path) -> None:
    """Checklist F4: the queue, attempts, seqNo and state come back after a restart; an id
    removed before the restart is never given to a new message (exactly-once removal)."""
    async with await StationStore.open(path) as store:
        a = await store.enqueue(_msg("A", 1))
        b = await store.enqueue(_msg("A", 2))
        await store.mark_sent(a.id, at=5.0)
        await store.save_state("A", {"transactions": {"c1": {"meter": 10}}})
        assert await store.remove(b.id)
    async with await StationStore.open(path) as store:
        assert store.incidents == ()
        (q,) = await store.pending("A")
        assert q.id == a.id and q.attempts == 1 and q.in_flight_at_crash
        assert await store.load_state("A") == {"transactions": {"c1": {"meter": 10}}}
        c = await store.enqueue(_msg("A", 3))
        assert c.id > b.id


async def test_closed_store_refuses_work(path: Path) -> None:
    store = await StationStore.open(path)
    await store.close()
    await store.close()
    with pytest.raises(StoreClosedError):
        await store.enqueue(_msg("A", 1))


def test_bad_arguments_are_refused(path: Path) -> None:
    with pytest.raises(ValueError):
        StationStore(path, synchronous="OFF")
    with pytest.raises(ValueError):
        StationStore(path, max_batch=0)


async def test_wal_mode_and_synchronous_setting(path: Path) -> None:
    """The durability argument of the module docstring relies on WAL."""
    async with await StationStore.open(path, synchronous="full") as store:
        await store.enqueue(_msg("A", 1))
        with sqlite3.connect(path) as raw:
            assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert store.synchronous == "FULL"


# ----------------------------------------------------------------------------- quarantine (F7)


async def _filled(path: Path) -> None:
    async with await StationStore.open(path) as store:
        await store.enqueue_many(_msg(f"S{n % 7}", n) for n in range(300))
        for s in range(7):
            await store.save_state(f"S{s}", {"config": {"k": "v" * 200}, "n": s})


def _write(path: Path, data: bytes) -> None:
    path.write_bytes(data)


def _read(path: Path) -> bytes:
    return path.read_bytes()


def _truncate(path: Path, keep: float) -> int:
    """Cut the file to ``keep`` bytes (an int) or that fraction of its size; the new size."""
    size = int(keep) if keep >= 1 else int(path.stat().st_size * keep)
    with path.open("r+b") as f:
        f.truncate(size)
    return size


def _quarantined(path: Path) -> list[Path]:
    """The set-aside main files (their -wal / -shm travel along under the same name)."""
    return sorted(
        p
        for p in path.parent.iterdir()
        if ".corrupt-" in p.name and not p.name.endswith(("-wal", "-shm"))
    )


async def _assert_fresh_after(path: Path, kind: IncidentKind) -> None:
    async with await StationStore.open(path) as store:
        (incident,) = store.incidents
        assert incident.kind is kind
        assert incident.path == path and incident.quarantined_to.exists()
        assert incident.quarantined_to.name.startswith("fleet.db.corrupt-")
        assert not incident.salvaged
        assert await store.count() == 0 and await store.station_ids() == []
        await store.enqueue(_msg("A", 1))  # the fresh store works
    async with await StationStore.open(path) as store:
        assert store.incidents == () and await store.count() == 1


async def test_random_bytes_file_is_quarantined_not_fatal(path: Path) -> None:
    """Checklist F7: a state file that is not a database is set aside; the emulator boots."""
    _write(path, random.Random(7).randbytes(10_000))
    await _assert_fresh_after(path, IncidentKind.NOT_A_DATABASE)
    (aside,) = _quarantined(path)
    assert aside.read_bytes() == random.Random(7).randbytes(10_000)


@pytest.mark.parametrize("keep", [0.5, 0.2])
async def test_truncated_file_is_quarantined_not_fatal(path: Path, keep: float) -> None:
    """Checklist F7 / MicroOcpp recover(): a truncated store file is set aside, reported."""
    await _filled(path)
    size = _truncate(path, keep)
    await _assert_fresh_after(path, IncidentKind.INTEGRITY)
    (aside,) = _quarantined(path)
    assert aside.stat().st_size == size


async def test_file_truncated_inside_the_header_is_quarantined(path: Path) -> None:
    """The magic string survives, so SQLite calls it malformed rather than foreign."""
    await _filled(path)
    _truncate(path, 50)
    await _assert_fresh_after(path, IncidentKind.INTEGRITY)
    assert [p.stat().st_size for p in _quarantined(path)] == [50]


async def test_foreign_sqlite_database_is_quarantined(path: Path) -> None:
    with sqlite3.connect(path) as raw:
        raw.execute("CREATE TABLE queue (x)")
    await _assert_fresh_after(path, IncidentKind.UNKNOWN_SCHEMA)


async def test_empty_file_is_a_new_store(path: Path) -> None:
    _write(path, b"")
    async with await StationStore.open(path) as store:
        assert store.incidents == ()
        await store.enqueue(_msg("A", 1))


async def test_bad_state_row_is_quarantined_and_the_rest_salvaged(path: Path) -> None:
    """A valid database with an unparsable state row: the file is set aside and reported;
    the queue, seqNo counters and the other stations' state are kept (nothing else lost)."""
    await _filled(path)
    with sqlite3.connect(path) as raw:
        raw.execute("UPDATE state SET data = '{\"config\": {' WHERE station_id = 'S3'")
        raw.execute("UPDATE state SET data = '[1, 2]' WHERE station_id = 'S5'")
    async with await StationStore.open(path) as store:
        (incident,) = store.incidents
        assert incident.kind is IncidentKind.BAD_STATE_ROW
        assert incident.station_ids == ("S3", "S5") and incident.salvaged
        assert incident.quarantined_to.exists()
        assert await store.load_state("S3") is None and await store.load_state("S5") is None
        assert await store.load_state("S4") == {"config": {"k": "v" * 200}, "n": 4}
        assert await store.count() == 300
        assert [_n(m.payload) for m in await store.pending("S0")] == list(range(0, 300, 7))
        last = max(m.id for m in await store.pending("S6"))
        assert (await store.enqueue(_msg("S6", 999))).id > last
    with sqlite3.connect(incident.quarantined_to) as raw:  # the evidence is intact
        assert raw.execute("SELECT count(*) FROM state").fetchone()[0] == 7


async def test_quarantine_moves_wal_side_files_along(path: Path) -> None:
    _write(path, b"not a database at all" * 10)
    _write(Path(f"{path}-wal"), b"junk")
    async with await StationStore.open(path) as store:
        (incident,) = store.incidents
    assert _read(Path(f"{incident.quarantined_to}-wal")) == b"junk"
    assert _read(path)[:16] == b"SQLite format 3\x00"
