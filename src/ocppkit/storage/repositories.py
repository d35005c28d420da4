"""What the CSMS reads and writes, as small async functions over an :class:`AsyncSession`.

None of them commits: the caller decides the transaction boundary, so writes a reply
announces (a transaction id, a stop) can be committed before the reply is sent, in group
commits across stations, and batched writes (meter values, the message log) can share one.

Idempotency is enforced by unique keys and ``INSERT ... ON CONFLICT`` rather than by
read-then-write, so a retried message is harmless even when two copies race. That needs
an upsert dialect: SQLite and PostgreSQL are supported, others raise
:class:`NotImplementedError`.

Times are timezone-aware datetimes (see :mod:`ocppkit.storage.models`); EVSE / connector
numbering follows the scheme documented there (1.6 connectorId N -> evse N, connector N).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, NotRequired, TypedDict, cast

from sqlalchemy import (
    CursorResult,
    Dialect,
    Table,
    bindparam,
    case,
    delete,
    func,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from .bulk_insert import InsertWriter, PreparedInsert, execute_prepared, prepare_insert
from .models import (
    MAX_METER_WH,
    MAX_TRANSACTION_ID,
    ConnectorStatus,
    DeviceModelEntry,
    IdTag,
    MessageLog,
    MeterValue,
    SecurityEvent,
    Station,
    StationEvent,
    StatusHistory,
    Transaction,
    TransactionEvent,
)

__all__ = [
    "BootRow",
    "DeviceModelRow",
    "MessageLogRow",
    "MeterValueRow",
    "PresenceRow",
    "StationEventRow",
    "add_message_log",
    "add_meter_values",
    "add_security_event",
    "add_station_events",
    "connector_statuses",
    "count_stations",
    "delete_id_tag",
    "delete_station",
    "ensure_station",
    "find_id_tag_ci",
    "get_id_tag",
    "list_id_tags",
    "list_message_log",
    "list_stations",
    "list_transactions",
    "prune_message_log",
    "record_presence",
    "record_transaction_event",
    "record_unconfirmed_stop",
    "register_boots",
    "register_station",
    "sample_key",
    "set_connector_status",
    "set_station_progress",
    "start_transaction_v16",
    "station_history",
    "stop_transaction",
    "touch_stations",
    "transaction_meter_values",
    "transaction_seq_nos",
    "upsert_device_model",
    "upsert_id_tag",
]

_STATIONS = cast(Table, Station.__table__)
_MESSAGE_LOG = cast(Table, MessageLog.__table__)
_MESSAGE_LOG_COLUMNS = (
    "time",
    "station_id",
    "direction",
    "message_type",
    "action",
    "message_id",
    "raw",
)
_METER_VALUES = cast(Table, MeterValue.__table__)
_METER_VALUE_COLUMNS = (
    "station_id",
    "transaction_id",
    "evse_id",
    "timestamp",
    "measurand",
    "phase",
    "unit",
    "context",
    "location",
    "value",
    "raw_value",
    "sample_key",
)

#: Rows per multi-row INSERT: well under SQLite's and asyncpg's bound-parameter limits.
CHUNK = 500


class MeterValueRow(TypedDict):
    station_id: str
    timestamp: datetime
    transaction_id: NotRequired[int | None]
    evse_id: NotRequired[int | None]
    measurand: NotRequired[str | None]
    phase: NotRequired[str | None]
    unit: NotRequired[str | None]
    context: NotRequired[str | None]
    location: NotRequired[str | None]
    value: NotRequired[float | None]
    raw_value: NotRequired[str | None]


class MessageLogRow(TypedDict):
    time: datetime
    station_id: str
    direction: str
    message_type: int
    raw: str
    action: NotRequired[str | None]
    message_id: NotRequired[str | None]


class DeviceModelRow(TypedDict):
    component: str
    variable: str
    value: str | None
    component_instance: NotRequired[str]
    evse_id: NotRequired[int]
    variable_instance: NotRequired[str]
    attribute_type: NotRequired[str]


def _insert(session: AsyncSession, model: Any) -> sqlite.Insert | postgresql.Insert:
    """An INSERT with ``on_conflict_*`` for the session's dialect."""
    name = session.get_bind().dialect.name
    if name == "sqlite":
        return sqlite.insert(model)
    if name == "postgresql":
        return postgresql.insert(model)
    raise NotImplementedError(f"storage supports SQLite and PostgreSQL, not {name}")


def _rowcount(result: Any) -> int:
    return cast(CursorResult[Any], result).rowcount


# --- stations ---------------------------------------------------------------------------


async def ensure_station(session: AsyncSession, station_id: str, *, now: datetime) -> None:
    """Create a bare station row if missing, so rows referencing it can be written before
    (or without) a BootNotification."""
    stmt = _insert(session, Station).values(id=station_id, created_at=now)
    await session.execute(stmt.on_conflict_do_nothing(index_elements=["id"]))


class BootRow(TypedDict):
    """A BootNotification to record (:func:`register_boots`)."""

    station_id: str
    now: datetime
    ocpp_version: str
    vendor: str
    model: str
    serial_number: str | None
    firmware_version: str | None
    #: The status for a station no operator has decided on yet (the CSMS's policy).
    default_status: str


class PresenceRow(TypedDict):
    """A station's socket opened (``online``) or closed (:func:`record_presence`)."""

    station_id: str
    now: datetime
    online: bool
    ocpp_version: str | None


async def register_boots(session: AsyncSession, rows: Sequence[BootRow]) -> list[str]:
    """Record BootNotifications of many stations in one statement; their statuses, in order.

    A station keeps the status it has once it booted, or one an operator set before its
    first boot (any status but the Pending of a row created at connection time); otherwise
    it gets its row's ``default_status``. Identity fields are overwritten (firmware updates
    change them); credentials and the security profile are left alone.

    Why batched: in a reconnect storm thousands of stations boot within a second; one read
    and one executemany for all of a group commit's boots cost a fraction of a statement
    pair per station.
    """
    known = await _registrations(session, {row["station_id"] for row in rows})
    statuses: list[str] = []
    prepared: list[tuple[Any, ...]] = []
    for row in rows:
        station_id = row["station_id"]
        current = known.get(station_id)
        if current is not None and (current[1] or current[0] != "Pending"):
            status = current[0]
        else:
            status = row["default_status"]
        known[station_id] = (status, True)  # a second boot in the same batch keeps it
        statuses.append(status)
        now = row["now"]
        prepared.append(
            (
                station_id,
                now,
                row["ocpp_version"],
                row["vendor"],
                row["model"],
                row["serial_number"],
                row["firmware_version"],
                status,
                True,
                now,
                now,
                _NEW_STATION["security_profile"],
            )
        )
    connection = await session.connection()
    await execute_prepared(connection, _boots_upsert(connection.dialect, prepared))
    return statuses


#: The model's Python-side defaults of a new station row, which a prepared INSERT (no ORM to
#: fill them in) must give itself.
_NEW_STATION: dict[str, Any] = {
    name: cast(Any, _STATIONS.c[name].default).arg
    for name in ("registration_status", "security_profile")
}

_BOOT_COLUMNS = (
    "id",
    "created_at",
    "ocpp_version",
    "vendor",
    "model",
    "serial_number",
    "firmware_version",
    "registration_status",
    "online",
    "last_seen",
    "last_boot",
    "security_profile",
)


def _boots_upsert(dialect: Dialect, rows: Sequence[tuple[Any, ...]]) -> PreparedInsert:
    """The write of :func:`register_boots`: identity, status and presence overwritten;
    credentials and the security profile (a new row's default) left alone."""
    return prepare_insert(
        dialect,
        _STATIONS,
        _BOOT_COLUMNS,
        rows,
        on_conflict=("id",),
        update={name: f"excluded.{name}" for name in _BOOT_COLUMNS[2:11]},
    )


async def record_presence(session: AsyncSession, rows: Sequence[PresenceRow]) -> list[bool]:
    """Mark stations online or offline, in the rows' order (a station that left and came
    back within one batch ends online); creates the row of a station's first connection.

    Returns, per row, whether the station is online and was Accepted at an earlier boot (a
    station that only reconnected need not boot again, 1.6 §4.2 / 2.0.1 B01).
    """
    if not rows:
        return []
    connection = await session.connection()
    await execute_prepared(
        connection,
        prepare_insert(
            connection.dialect,
            _STATIONS,
            ("id", "created_at", "online", "last_seen", "ocpp_version", "registration_status",
             "security_profile"),
            [
                (row["station_id"], row["now"], row["online"], row["now"], row["ocpp_version"],
                 _NEW_STATION["registration_status"], _NEW_STATION["security_profile"])
                for row in rows
            ],
            on_conflict=("id",),
            update={
                "online": "excluded.online",
                "last_seen": "excluded.last_seen",
                "ocpp_version": "coalesce(excluded.ocpp_version, stations.ocpp_version)",
            },
        ),
    )  # fmt: skip
    known = await _registrations(session, {row["station_id"] for row in rows if row["online"]})
    return [row["online"] and known.get(row["station_id"]) == ("Accepted", True) for row in rows]


# Statements run with every group commit are built once: one built per call leaves reference
# cycles behind for the garbage collector, whose pauses then show in reply latency.
_REGISTRATIONS = select(Station.id, Station.registration_status, Station.last_boot).where(
    Station.id.in_(bindparam("ids", expanding=True))
)
_TOUCH = (
    update(Station)
    .where(Station.id.in_(bindparam("ids", expanding=True)))
    .values(last_seen=bindparam("now"))
)


async def _registrations(
    session: AsyncSession, station_ids: Collection[str]
) -> dict[str, tuple[str, bool]]:
    """station id -> (registration status, booted at least once), for those that exist."""
    ids = list(station_ids)
    found: dict[str, tuple[str, bool]] = {}
    for start in range(0, len(ids), CHUNK):
        result = await session.execute(_REGISTRATIONS, {"ids": ids[start : start + CHUNK]})
        for station_id, status, last_boot in result:
            found[station_id] = (status, last_boot is not None)
    return found


async def touch_stations(
    session: AsyncSession, station_ids: Iterable[str], *, now: datetime
) -> None:
    """Bump ``last_seen`` for many stations in one statement (heartbeats are batched)."""
    ids = list(station_ids)
    for start in range(0, len(ids), CHUNK):
        await session.execute(_TOUCH, {"ids": ids[start : start + CHUNK], "now": now})


# --- connectors -------------------------------------------------------------------------


async def set_connector_status(
    session: AsyncSession,
    station_id: str,
    *,
    evse_id: int,
    connector_id: int,
    status: str,
    timestamp: datetime,
    error_code: str | None = None,
    info: str | None = None,
) -> None:
    """Append to the history, and update the current status unless a newer one is already
    stored (notifications queued offline can arrive out of order)."""
    fields = {
        "status": status,
        "error_code": error_code,
        "info": info,
        "timestamp": timestamp,
    }
    key = {"station_id": station_id, "evse_id": evse_id, "connector_id": connector_id}
    await session.execute(  # a resent notification is one history entry (E10)
        _insert(session, StatusHistory)
        .values(**key, **fields)
        .on_conflict_do_nothing(
            index_elements=["station_id", "evse_id", "connector_id", "timestamp", "status"]
        )
    )
    stmt = _insert(session, ConnectorStatus).values(**key, **fields)
    await session.execute(
        stmt.on_conflict_do_update(
            index_elements=list(key),
            set_=fields,
            where=ConnectorStatus.timestamp <= stmt.excluded.timestamp,
        )
    )


# --- authorization ----------------------------------------------------------------------


async def get_id_tag(session: AsyncSession, id_tag: str) -> IdTag | None:
    """The stored authorization for an idTag / idToken, or None if unknown."""
    return await session.get(IdTag, id_tag)


async def upsert_id_tag(
    session: AsyncSession,
    id_tag: str,
    *,
    status: str = "Accepted",
    token_type: str | None = None,
    expiry_date: datetime | None = None,
    parent_id_tag: str | None = None,
) -> None:
    """Create or replace an authorization entry (operator action, local list sync)."""
    fields = {
        "status": status,
        "token_type": token_type,
        "expiry_date": expiry_date,
        "parent_id_tag": parent_id_tag,
    }
    stmt = _insert(session, IdTag).values(id_tag=id_tag, **fields)
    await session.execute(stmt.on_conflict_do_update(index_elements=["id_tag"], set_=fields))


# --- transactions -----------------------------------------------------------------------


async def start_transaction_v16(
    session: AsyncSession,
    station_id: str,
    *,
    connector_id: int,
    id_tag: str,
    meter_start: int,
    timestamp: datetime,
) -> tuple[int, bool]:
    """Record a 1.6 StartTransaction; returns ``(transactionId, created)``.

    A station that lost our reply resends the same request; the dedupe key
    (station, connector, idTag, timestamp, meterStart) maps it to the same row, so the
    station gets the same transactionId again instead of a second transaction.
    """
    key = {
        "station_id": station_id,
        "connector_id": connector_id,
        "id_tag": id_tag,
        "start_time": timestamp,
        "meter_start": meter_start,
    }
    stmt = (
        _insert(session, Transaction)
        .values(**key, evse_id=connector_id, state="Active")
        .on_conflict_do_nothing(index_elements=list(key))
        .returning(Transaction.id)
    )
    new_id = (await session.execute(stmt)).scalar_one_or_none()
    if new_id is not None:
        return new_id, True
    existing = select(Transaction.id).filter_by(**key)
    return (await session.execute(existing)).scalar_one(), False


async def stop_transaction(
    session: AsyncSession,
    transaction_id: int,
    *,
    station_id: str,
    meter_stop: int,
    timestamp: datetime,
    reason: str | None = None,
) -> Transaction | None:
    """End a transaction (1.6 StopTransaction); a repeat leaves the first stop in place.

    Returns the row, or None when the id is unknown or another station's (the caller still
    answers the station: 1.6 requires accepting a StopTransaction). A station can never stop
    another station's transaction.
    """
    if not 0 < transaction_id <= MAX_TRANSACTION_ID:
        return None  # not an id the CSMS gives (nor one the column could hold)
    # Energy only from readings a meter could give: past them the difference may not fit.
    start = Transaction.meter_start
    energy = case((func.abs(start) <= MAX_METER_WH, meter_stop - start))
    await session.execute(
        update(Transaction)
        .where(
            Transaction.id == transaction_id,
            Transaction.station_id == station_id,
            Transaction.state == "Active",
        )
        .values(
            state="Ended",
            meter_stop=meter_stop,
            stop_time=timestamp,
            stop_reason=reason,
            energy_wh=energy if abs(meter_stop) <= MAX_METER_WH else None,
        )
    )
    transaction = await session.get(Transaction, transaction_id, populate_existing=True)
    return transaction if transaction is not None and transaction.station_id == station_id else None


async def record_unconfirmed_stop(
    session: AsyncSession,
    station_id: str,
    *,
    transaction_id: int,
    meter_stop: int,
    timestamp: datetime,
    reason: str | None,
    id_tag: str | None,
) -> Transaction:
    """Keep a 1.6 StopTransaction for a transaction the CSMS never confirmed (id -1, errata
    3.18) or does not know, as an ended placeholder transaction to reconcile later.

    A resend finds the same placeholder (its ``transaction_uid`` is made of the stop's
    content), so it is stored once.
    """
    await ensure_station(session, station_id, now=timestamp)
    uid = f"stop:{transaction_id}:{meter_stop}:{timestamp.astimezone(UTC):%Y%m%d%H%M%S}"[:36]
    await session.execute(
        _insert(session, Transaction)
        .values(
            station_id=station_id,
            transaction_uid=uid,
            id_tag=id_tag,
            meter_stop=meter_stop,
            start_time=timestamp,
            stop_time=timestamp,
            stop_reason=reason,
            state="Ended",
        )
        .on_conflict_do_nothing(index_elements=["station_id", "transaction_uid"])
    )
    placeholder = await session.scalar(
        select(Transaction).where(
            Transaction.station_id == station_id, Transaction.transaction_uid == uid
        )
    )
    assert placeholder is not None
    return placeholder


async def record_transaction_event(
    session: AsyncSession,
    station_id: str,
    *,
    transaction_uid: str,
    seq_no: int,
    event_type: str,
    trigger_reason: str,
    timestamp: datetime,
    offline: bool = False,
    evse_id: int | None = None,
    connector_id: int | None = None,
    id_tag: str | None = None,
    meter_wh: int | None = None,
    stopped_reason: str | None = None,
) -> tuple[Transaction, bool]:
    """Apply a 2.x TransactionEvent; returns ``(transaction, applied)``.

    A (transactionId, seqNo) already seen is ignored (``applied`` is False): stations resend
    when a reply is lost. Events may arrive out of order or with gaps (offline queues), so
    the first event seen creates the transaction, ``start_time`` is the earliest event
    time, and an ``Ended`` event is final whatever arrives after it.
    """
    create = _insert(session, Transaction).values(
        station_id=station_id,
        transaction_uid=transaction_uid,
        start_time=timestamp,
        state="Active",
    )
    await session.execute(
        create.on_conflict_do_nothing(index_elements=["station_id", "transaction_uid"])
    )
    tx = (
        await session.execute(
            select(Transaction)
            .filter_by(station_id=station_id, transaction_uid=transaction_uid)
            .execution_options(populate_existing=True)
        )
    ).scalar_one()
    event = (
        _insert(session, TransactionEvent)
        .values(
            transaction_id=tx.id,
            seq_no=seq_no,
            event_type=event_type,
            trigger_reason=trigger_reason,
            timestamp=timestamp,
            offline=offline,
        )
        .on_conflict_do_nothing(index_elements=["transaction_id", "seq_no"])
        .returning(TransactionEvent.seq_no)
    )
    if (await session.execute(event)).scalar_one_or_none() is None:
        return tx, False

    tx.last_seq_no = seq_no if tx.last_seq_no is None else max(tx.last_seq_no, seq_no)
    tx.start_time = min(tx.start_time, timestamp)
    if evse_id is not None:
        tx.evse_id = evse_id
    if connector_id is not None:
        tx.connector_id = connector_id
    if id_tag is not None:
        tx.id_tag = id_tag
    if event_type == "Started" and meter_wh is not None:
        tx.meter_start = meter_wh
    if event_type == "Ended":
        tx.state = "Ended"
        tx.stop_time = timestamp
        tx.stop_reason = stopped_reason
        if meter_wh is not None:
            tx.meter_stop = meter_wh
    if tx.meter_start is not None and tx.meter_stop is not None:
        tx.energy_wh = tx.meter_stop - tx.meter_start
    await session.flush()
    return tx, True


# --- bulk writes ------------------------------------------------------------------------


def _float_or_none(raw: str | None) -> float | None:
    if raw is None:
        return None
    try:
        return float(raw)
    except ValueError:
        return None


def _meter_values_insert(dialect: Dialect, rows: Sequence[MeterValueRow]) -> PreparedInsert:
    """Sampled values in bulk (one executemany). A 1.6 value given only as
    ``raw_value`` text gets ``value`` parsed from it when it is a number.

    A sample names its transaction only if that transaction is the station's own: an id
    the CSMS does not know (a station's stale or invented transactionId) or another
    station's is stored as NULL rather than failing the insert, and with it every other
    station's samples in the same batch. The sample itself is never lost.
    """
    # One tuple per row in _METER_VALUE_COLUMNS order, built in one pass: this runs for
    # every sample the CSMS receives, and merging each row into a dict of defaults first
    # cost as much as SQLite's insert of it.
    instants: dict[datetime, str] = {}  # the samples of one meterValue share their time
    parameters = []
    for row in rows:
        get = row.get
        timestamp = row["timestamp"]
        instant = instants.get(timestamp)
        if instant is None:
            instant = instants[timestamp] = _instant(timestamp)
        raw_value = row.get("raw_value")
        value = row["value"] if "value" in row else _float_or_none(raw_value)
        parameters.append(
            (
                row["station_id"],
                get("transaction_id"),
                get("evse_id"),
                timestamp,
                get("measurand"),
                get("phase"),
                get("unit"),
                get("context"),
                get("location"),
                value,
                raw_value,
                _sample_key(row, instant),
            )
        )
    # A sample already stored (a resent message, E2) is skipped.
    return prepare_insert(
        dialect,
        _METER_VALUES,
        _METER_VALUE_COLUMNS,
        parameters,
        on_conflict=("timestamp", "station_id", "sample_key"),
        expressions={"transaction_id": _OWN_TRANSACTION},
    )


#: ``await add_meter_values(session, rows)`` inserts, returning how many rows.
add_meter_values = InsertWriter(_meter_values_insert)


#: A sample's transaction, if it is one of the sample's station (else NULL): looked up by
#: the database row by row, inside the one INSERT.
_OWN_TRANSACTION = (
    "(SELECT id FROM transactions WHERE id = CAST({transaction_id} AS BIGINT)"
    " AND station_id = CAST({station_id} AS VARCHAR))"  # casts: one type per parameter (PG)
)


def sample_key(row: Mapping[str, Any]) -> str:
    """What makes a sampled value the same sample: where, when and what was measured.

    A meter reports one value per measurand, phase, location, context and unit at a time, so
    two rows that agree on these (and on the transaction and EVSE) are one sample sent twice.
    """
    return _sample_key(row, _instant(row["timestamp"]))


def _instant(timestamp: datetime) -> str:
    """A sample's time in :func:`sample_key`: the instant, whatever its UTC offset."""
    return f"{timestamp.timestamp():.6f}"


def _sample_key(row: Mapping[str, Any], instant: str) -> str:
    get = row.get
    parts = (
        get("transaction_id"),
        get("evse_id"),
        instant,
        get("measurand"),
        get("phase"),
        get("location"),
        get("context"),
        get("unit"),
    )
    return "|".join(["" if part is None else str(part) for part in parts])[:255]


def _message_log_insert(dialect: Dialect, rows: Sequence[MessageLogRow]) -> PreparedInsert:
    """Frames appended to the message log in bulk. Peer-controlled ``action`` and
    ``message_id`` are truncated to their columns rather than failing the batch."""
    prepared = [
        (
            row["time"],
            row["station_id"],
            row["direction"],
            row["message_type"],
            None if (action := row.get("action")) is None else action[:64],
            None if (message_id := row.get("message_id")) is None else message_id[:255],
            row["raw"],
        )
        for row in rows
    ]
    return prepare_insert(dialect, _MESSAGE_LOG, _MESSAGE_LOG_COLUMNS, prepared)


#: ``await add_message_log(session, rows)`` inserts, returning how many rows.
add_message_log = InsertWriter(_message_log_insert)


async def prune_message_log(session: AsyncSession, *, retention: timedelta, now: datetime) -> int:
    """Delete message-log rows older than ``now - retention``; returns how many."""
    result = await session.execute(delete(MessageLog).where(MessageLog.time < now - retention))
    return _rowcount(result)


async def upsert_device_model(
    session: AsyncSession, station_id: str, rows: Iterable[DeviceModelRow]
) -> int:
    """Store reported variables (GetVariables / NotifyReport, 1.6 GetConfiguration),
    replacing the value of a variable already known."""
    # One statement may not touch a row twice (PostgreSQL refuses): the last report wins.
    by_key = {
        (
            row["component"],
            row.get("component_instance", ""),
            row.get("evse_id", 0),
            row["variable"],
            row.get("variable_instance", ""),
            row.get("attribute_type", "Actual"),
        ): row["value"]
        for row in rows
    }
    prepared = [
        {
            "station_id": station_id,
            "component": component,
            "component_instance": component_instance,
            "evse_id": evse_id,
            "variable": variable,
            "variable_instance": variable_instance,
            "attribute_type": attribute_type,
            "value": value,
        }
        for (
            component,
            component_instance,
            evse_id,
            variable,
            variable_instance,
            attribute_type,
        ), value in by_key.items()
    ]
    keys = [
        "station_id",
        "component",
        "component_instance",
        "evse_id",
        "variable",
        "variable_instance",
        "attribute_type",
    ]
    for start in range(0, len(prepared), CHUNK):
        stmt = _insert(session, DeviceModelEntry).values(prepared[start : start + CHUNK])
        await session.execute(
            stmt.on_conflict_do_update(index_elements=keys, set_={"value": stmt.excluded.value})
        )
    return len(prepared)


async def set_station_progress(
    session: AsyncSession,
    station_id: str,
    *,
    firmware_status: str | None = None,
    log_status: str | None = None,
    now: datetime,
) -> None:
    """Record the latest firmware-update or log-upload status a station reported."""
    await ensure_station(session, station_id, now=now)
    values: dict[str, Any] = {}
    if firmware_status is not None:
        values |= {"firmware_status": firmware_status, "firmware_status_at": now}
    if log_status is not None:
        values |= {"log_status": log_status, "log_status_at": now}
    if values:
        await session.execute(update(Station).where(Station.id == station_id).values(**values))


class StationEventRow(TypedDict):
    event_id: int
    timestamp: datetime
    trigger: str
    component: str
    component_instance: str | None
    evse_id: int | None
    variable: str
    variable_instance: str | None
    actual_value: str
    event_notification_type: str
    cleared: bool | None
    tech_code: str | None
    tech_info: str | None


async def add_station_events(
    session: AsyncSession, station_id: str, rows: Sequence[StationEventRow], *, now: datetime
) -> int:
    """Store NotifyEvent entries; a resent entry (same event id and time) is stored once."""
    if not rows:
        return 0
    await ensure_station(session, station_id, now=now)
    prepared = [{"station_id": station_id, **row} for row in rows]
    inserted = 0
    for start in range(0, len(prepared), CHUNK):
        stmt = _insert(session, StationEvent).values(prepared[start : start + CHUNK])
        result = await session.execute(
            stmt.on_conflict_do_nothing(index_elements=["station_id", "event_id", "timestamp"])
        )
        inserted += _rowcount(result)
    return inserted


async def add_security_event(
    session: AsyncSession,
    station_id: str,
    *,
    type: str,
    timestamp: datetime,
    tech_info: str | None = None,
) -> None:
    """Record a SecurityEventNotification; a resent one (same type and time) is stored once."""
    await session.execute(
        _insert(session, SecurityEvent)
        .values(station_id=station_id, type=type, timestamp=timestamp, tech_info=tech_info)
        .on_conflict_do_nothing(index_elements=["station_id", "type", "timestamp"])
    )


# --- queries for the HTTP API -----------------------------------------------------------
# Listings are paged with limit/offset (small, operator-sized tables) except the message
# log, which is paged by keyset on ``id`` (it grows by thousands of rows a minute, and an
# offset would rescan everything before the page and shift as rows arrive).


async def count_stations(session: AsyncSession) -> int:
    """How many stations are known (registered or seen)."""
    return int(await session.scalar(select(func.count()).select_from(Station)) or 0)


async def list_stations(
    session: AsyncSession,
    *,
    include: Collection[str] | None = None,
    exclude: Collection[str] | None = None,
    ocpp_version: str | None = None,
    registration_status: str | None = None,
    vendor: str | None = None,
    id_prefix: str | None = None,
    limit: int = 100,
    offset: int = 0,
) -> list[Station]:
    """Stations by id, filtered; ``include`` / ``exclude`` restrict to (or leave out) a set
    of ids, e.g. those connected now. ``id_prefix`` is matched literally (``%`` and ``_``
    are not wildcards)."""
    query = select(Station).order_by(Station.id).limit(limit).offset(offset)
    if include is not None:
        query = query.where(Station.id.in_(list(include)))
    if exclude:
        query = query.where(Station.id.not_in(list(exclude)))
    if ocpp_version is not None:
        query = query.where(Station.ocpp_version == ocpp_version)
    if registration_status is not None:
        query = query.where(Station.registration_status == registration_status)
    if vendor is not None:
        query = query.where(Station.vendor == vendor)
    if id_prefix:
        query = query.where(Station.id.startswith(id_prefix, autoescape=True))
    return list(await session.scalars(query))


async def connector_statuses(
    session: AsyncSession, station_ids: Collection[str]
) -> dict[str, list[ConnectorStatus]]:
    """The current connector statuses of each station, by (evse, connector)."""
    by_station: dict[str, list[ConnectorStatus]] = {station_id: [] for station_id in station_ids}
    ids = list(by_station)
    for start in range(0, len(ids), CHUNK):
        rows = await session.scalars(
            select(ConnectorStatus)
            .where(ConnectorStatus.station_id.in_(ids[start : start + CHUNK]))
            .order_by(ConnectorStatus.evse_id, ConnectorStatus.connector_id)
        )
        for row in rows:
            by_station[row.station_id].append(row)
    return by_station


async def register_station(
    session: AsyncSession,
    station_id: str,
    *,
    now: datetime,
    registration_status: str = "Accepted",
    security_profile: int = 0,
    password_hash: str | None = None,
) -> bool:
    """Register a station ahead of its first connection; False if the id already exists
    (nothing is changed then)."""
    stmt = (
        _insert(session, Station)
        .values(
            id=station_id,
            created_at=now,
            registration_status=registration_status,
            security_profile=security_profile,
            password_hash=password_hash,
        )
        .on_conflict_do_nothing(index_elements=["id"])
        .returning(Station.id)
    )
    return (await session.execute(stmt)).scalar_one_or_none() is not None


async def station_history(session: AsyncSession, station_id: str) -> dict[str, int]:
    """How many history rows reference a station: transactions, meter values, status
    history, security events, reported events (NotifyEvent): the rows a delete would have
    to destroy."""
    counts: dict[str, int] = {}
    for name, model in (
        ("transactions", Transaction),
        ("meter_values", MeterValue),
        ("status_history", StatusHistory),
        ("security_events", SecurityEvent),
        ("station_events", StationEvent),
    ):
        query = select(func.count()).select_from(model).where(model.station_id == station_id)
        counts[name] = int(await session.scalar(query) or 0)
    return counts


async def delete_station(session: AsyncSession, station_id: str) -> bool:
    """Delete a station with its current state (connector statuses, device model).

    History (:func:`station_history`) references the station by foreign key, so a station
    that has any cannot be deleted (IntegrityError): check :func:`station_history` first.
    The message log has no foreign key and is kept. Returns False when the id is unknown.
    """
    await session.execute(delete(ConnectorStatus).where(ConnectorStatus.station_id == station_id))
    await session.execute(delete(DeviceModelEntry).where(DeviceModelEntry.station_id == station_id))
    result = await session.execute(delete(Station).where(Station.id == station_id))
    return _rowcount(result) > 0


async def find_id_tag_ci(session: AsyncSession, id_tag: str) -> IdTag | None:
    """The stored entry equal to ``id_tag`` ignoring case (1.6 idTag is a CiString)."""
    query = select(IdTag).where(func.lower(IdTag.id_tag) == id_tag.lower()).limit(1)
    return (await session.scalars(query)).first()


async def list_id_tags(
    session: AsyncSession,
    *,
    status: str | None = None,
    id_prefix: str | None = None,
    parent_id_tag: str | None = None,
    limit: int = 100,
    offset: int = 0,
) -> list[IdTag]:
    """Authorization entries by id tag, filtered (``id_prefix`` matched literally)."""
    query = select(IdTag).order_by(IdTag.id_tag).limit(limit).offset(offset)
    if status is not None:
        query = query.where(IdTag.status == status)
    if id_prefix:
        query = query.where(IdTag.id_tag.startswith(id_prefix, autoescape=True))
    if parent_id_tag is not None:
        query = query.where(IdTag.parent_id_tag == parent_id_tag)
    return list(await session.scalars(query))


async def delete_id_tag(session: AsyncSession, id_tag: str) -> bool:
    """Delete an authorization entry; False when it does not exist. Transactions keep the
    id tag they were started with (a copied string, not a reference)."""
    result = await session.execute(delete(IdTag).where(IdTag.id_tag == id_tag))
    return _rowcount(result) > 0


async def list_transactions(
    session: AsyncSession,
    *,
    station_id: str | None = None,
    id_tag: str | None = None,
    state: str | None = None,
    started_after: datetime | None = None,
    started_before: datetime | None = None,
    limit: int = 100,
    offset: int = 0,
) -> list[Transaction]:
    """Transactions, newest (highest id) first, filtered; start bounds are inclusive."""
    query = select(Transaction).order_by(Transaction.id.desc()).limit(limit).offset(offset)
    if station_id is not None:
        query = query.where(Transaction.station_id == station_id)
    if id_tag is not None:
        query = query.where(Transaction.id_tag == id_tag)
    if state is not None:
        query = query.where(Transaction.state == state)
    if started_after is not None:
        query = query.where(Transaction.start_time >= started_after)
    if started_before is not None:
        query = query.where(Transaction.start_time <= started_before)
    return list(await session.scalars(query))


async def transaction_seq_nos(session: AsyncSession, transaction_id: int) -> list[tuple[int, str]]:
    """The (seqNo, eventType) of a 2.x transaction's stored events, in seqNo order."""
    rows = await session.execute(
        select(TransactionEvent.seq_no, TransactionEvent.event_type)
        .where(TransactionEvent.transaction_id == transaction_id)
        .order_by(TransactionEvent.seq_no)
    )
    return [(seq_no, event_type) for seq_no, event_type in rows.all()]


async def transaction_meter_values(session: AsyncSession, transaction_id: int) -> list[MeterValue]:
    """The sampled values of a transaction, oldest first."""
    query = (
        select(MeterValue)
        .where(MeterValue.transaction_id == transaction_id)
        .order_by(MeterValue.timestamp, MeterValue.id)
    )
    return list(await session.scalars(query))


async def list_message_log(
    session: AsyncSession,
    *,
    station_id: str | None = None,
    action: str | None = None,
    direction: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    after_id: int | None = None,
    before_id: int | None = None,
    newest_first: bool = True,
    limit: int = 100,
) -> list[MessageLog]:
    """Message-log rows in ``id`` order (newest or oldest first), filtered.

    Keyset paging: pass the last row's id as ``before_id`` (newest first) or ``after_id``
    (oldest first) for the next page. ``since`` is inclusive, ``until`` exclusive.
    """
    order = MessageLog.id.desc() if newest_first else MessageLog.id.asc()
    query = select(MessageLog).order_by(order).limit(limit)
    if station_id is not None:
        query = query.where(MessageLog.station_id == station_id)
    if action is not None:
        query = query.where(MessageLog.action == action)
    if direction is not None:
        query = query.where(MessageLog.direction == direction)
    if since is not None:
        query = query.where(MessageLog.time >= since)
    if until is not None:
        query = query.where(MessageLog.time < until)
    if after_id is not None:
        query = query.where(MessageLog.id > after_id)
    if before_id is not None:
        query = query.where(MessageLog.id < before_id)
    return list(await session.scalars(query))
