"""The CSMS's tables: typed SQLAlchemy 2 declarative models on one :class:`Base`.

Theory of operation
-------------------
* Every timestamp is a timezone-aware UTC :class:`~datetime.datetime` (:class:`UTCDateTime`):
  PostgreSQL stores ``timestamptz``; SQLite stores the UTC wall time and it comes back with
  ``tzinfo=UTC``. A naive datetime is refused (local misuse), never guessed.
* EVSE / connector numbering, one scheme for every version:

  - OCPP 2.0.1 / 2.1: ``evse_id`` = evseId, ``connector_id`` = connectorId.
  - OCPP 1.6: connectorId *N* is stored as ``evse_id = N`` and ``connector_id = N``
    (a 1.6 connector is an EVSE with one connector); connectorId 0, the charge point
    itself, is ``(0, 0)``.
* ``transactions.id`` is the 1.6 ``transactionId``: a 32-bit positive integer from the
  database (SQLite ``AUTOINCREMENT``, so ids are never reused after a delete; PostgreSQL
  ``SERIAL``). 2.x transactions get a row id too; their string ``transactionId`` is
  ``transaction_uid``, unique per station.
* Idempotency lives in the schema, not in the caller: a retried 1.6 StartTransaction hits
  ``uq_transactions_start_dedupe``; a repeated 2.x TransactionEvent hits the primary key
  ``(transaction_id, seq_no)`` of ``transaction_events``.
* ``device_model`` also holds 1.6 configuration keys: ``component = "Configuration"``,
  ``variable`` = key. Identity columns that a key lacks are ``""`` (instances), ``0``
  (EVSE: the station as a whole) and ``"Actual"`` (attribute type), never NULL, because
  they form the primary key.
* ``message_log.station_id`` has no foreign key: frames from stations that never booted
  (or were rejected) are logged too.

Migrations (``migrations/versions``) must match this module exactly; a test compares them.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    SmallInteger,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

__all__ = [
    "Base",
    "ConnectorStatus",
    "DeviceModelEntry",
    "IdTag",
    "MessageLog",
    "MeterValue",
    "SecurityEvent",
    "Station",
    "StationEvent",
    "StatusHistory",
    "Transaction",
    "TransactionEvent",
    "UTCDateTime",
]

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

#: A 64-bit surrogate key that is still SQLite's auto-incrementing ``INTEGER PRIMARY KEY``.
BigIntPK = BigInteger().with_variant(Integer(), "sqlite")

#: An integer a station sends (connector and EVSE ids, seqNo, event ids). The OCPP schemas
#: bound none of them, and the decoder takes any 64-bit value (a larger one is refused as
#: PropertyConstraintViolation), so the column holds 64 bits: BIGINT on PostgreSQL, where a
#: 32-bit INTEGER failed the write and the station was answered InternalError on every
#: retry; SQLite's INTEGER is 64-bit already.
StationInt = BigInteger().with_variant(Integer(), "sqlite")

#: The largest energy register reading (Wh) kept as a transaction's meter start or stop
#: (2.3e18 Wh: no meter reads that). Bounded so that stop minus start fits in 64 bits; a
#: reading past it is not taken as one (1.6 meterStart/meterStop are still stored as sent,
#: with no energy computed).
MAX_METER_WH = 2**61

#: The largest transaction id (``transactions.id`` is a 32-bit INTEGER: a 1.6 transactionId
#: is an integer, 32-bit by the spec's datatypes). A station's id above it is none of ours.
MAX_TRANSACTION_ID = 2**31 - 1


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """``DateTime(timezone=True)`` that only accepts aware datetimes and returns them in UTC."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: storage needs timezone-aware datetimes")
        return value.astimezone(UTC)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, datetime)
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: UTCDateTime()}  # noqa: RUF012 (SQLAlchemy reads it)


class Station(Base):
    """A charging station, created at its first connection or BootNotification."""

    __tablename__ = "stations"
    __table_args__ = (
        CheckConstraint(
            "registration_status IN ('Accepted', 'Pending', 'Rejected')",
            name="registration_status",
        ),
    )

    id: Mapped[str] = mapped_column(String(48), primary_key=True)
    ocpp_version: Mapped[str | None] = mapped_column(String(16))
    vendor: Mapped[str | None] = mapped_column(String(50))
    model: Mapped[str | None] = mapped_column(String(50))
    serial_number: Mapped[str | None] = mapped_column(String(50))
    firmware_version: Mapped[str | None] = mapped_column(String(50))
    registration_status: Mapped[str] = mapped_column(String(16), default="Pending")
    password_hash: Mapped[str | None] = mapped_column(String(255))
    security_profile: Mapped[int] = mapped_column(Integer, default=0)
    online: Mapped[bool] = mapped_column(Boolean, default=False)
    last_seen: Mapped[datetime | None]
    last_boot: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Progress of the last firmware update and the last diagnostics / log upload, as the
    # station reported it (1.6 Firmware/DiagnosticsStatusNotification, Signed..., 2.x
    # FirmwareStatusNotification, LogStatusNotification).
    firmware_status: Mapped[str | None] = mapped_column(String(40))
    firmware_status_at: Mapped[datetime | None]
    log_status: Mapped[str | None] = mapped_column(String(40))
    log_status_at: Mapped[datetime | None]


class ConnectorStatus(Base):
    """The current status of one connector (numbering: see the module docstring)."""

    __tablename__ = "connector_status"

    station_id: Mapped[str] = mapped_column(ForeignKey("stations.id"), primary_key=True)
    evse_id: Mapped[int] = mapped_column(StationInt, primary_key=True)
    connector_id: Mapped[int] = mapped_column(StationInt, primary_key=True)
    status: Mapped[str] = mapped_column(String(32))
    error_code: Mapped[str | None] = mapped_column(String(50))
    info: Mapped[str | None] = mapped_column(String(255))
    timestamp: Mapped[datetime]


class StatusHistory(Base):
    """Every status notification, append-only, for timelines and availability reports."""

    __tablename__ = "status_history"
    __table_args__ = (
        Index("ix_status_history_station_id_timestamp", "station_id", "timestamp"),
        # A resent StatusNotification is one entry (reliability.md E10).
        Index(
            "uq_status_history_event",
            "station_id",
            "evse_id",
            "connector_id",
            "timestamp",
            "status",
            unique=True,
        ),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    station_id: Mapped[str] = mapped_column(ForeignKey("stations.id"))
    evse_id: Mapped[int] = mapped_column(StationInt)
    connector_id: Mapped[int] = mapped_column(StationInt)
    status: Mapped[str] = mapped_column(String(32))
    error_code: Mapped[str | None] = mapped_column(String(50))
    info: Mapped[str | None] = mapped_column(String(255))
    timestamp: Mapped[datetime]


class IdTag(Base):
    """An authorization identifier: a 1.6 idTag (≤ 20) or a 2.x idToken (≤ 255 in 2.1)."""

    __tablename__ = "id_tags"
    __table_args__ = (
        CheckConstraint(
            "status IN ('Accepted', 'Blocked', 'Expired', 'Invalid')",
            name="status",
        ),
    )

    id_tag: Mapped[str] = mapped_column(String(255), primary_key=True)
    token_type: Mapped[str | None] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16), default="Accepted")
    expiry_date: Mapped[datetime | None]
    parent_id_tag: Mapped[str | None] = mapped_column(String(255))


class Transaction(Base):
    """A charging transaction of either version (see the module docstring for ids)."""

    __tablename__ = "transactions"
    __table_args__ = (
        UniqueConstraint(
            "station_id",
            "connector_id",
            "id_tag",
            "start_time",
            "meter_start",
            name="uq_transactions_start_dedupe",
        ),
        UniqueConstraint("station_id", "transaction_uid", name="uq_transactions_station_uid"),
        CheckConstraint("state IN ('Active', 'Ended')", name="state"),
        Index("ix_transactions_station_id_state", "station_id", "state"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    station_id: Mapped[str] = mapped_column(ForeignKey("stations.id"))
    transaction_uid: Mapped[str | None] = mapped_column(String(36))
    evse_id: Mapped[int | None] = mapped_column(StationInt)
    connector_id: Mapped[int | None] = mapped_column(StationInt)
    id_tag: Mapped[str | None] = mapped_column(String(255))
    meter_start: Mapped[int | None] = mapped_column(BigInteger)
    meter_stop: Mapped[int | None] = mapped_column(BigInteger)
    start_time: Mapped[datetime]
    stop_time: Mapped[datetime | None]
    stop_reason: Mapped[str | None] = mapped_column(String(32))
    state: Mapped[str] = mapped_column(String(8), default="Active")
    last_seq_no: Mapped[int | None] = mapped_column(StationInt)
    energy_wh: Mapped[int | None] = mapped_column(BigInteger)


class TransactionEvent(Base):
    """One 2.x TransactionEvent; the primary key makes a resent seqNo a no-op."""

    __tablename__ = "transaction_events"

    transaction_id: Mapped[int] = mapped_column(
        ForeignKey("transactions.id", ondelete="CASCADE"), primary_key=True
    )
    seq_no: Mapped[int] = mapped_column(StationInt, primary_key=True, autoincrement=False)
    event_type: Mapped[str] = mapped_column(String(16))
    trigger_reason: Mapped[str] = mapped_column(String(32))
    timestamp: Mapped[datetime]
    offline: Mapped[bool] = mapped_column(Boolean, default=False)


class MeterValue(Base):
    """One sampled value; 1.6 sends strings, so the raw text is kept next to the float."""

    __tablename__ = "meter_values"
    __table_args__ = (
        Index("ix_meter_values_transaction_id", "transaction_id"),
        # A resent MeterValues / StopTransaction carries the same samples (reliability.md
        # E2): one row per (station, sample_key), see repositories.sample_key. The key leads
        # with the sample's time (which sample_key already fixes, so uniqueness is the same)
        # because samples arrive in time order: the index grows at its right edge and a
        # commit dirties a few of its pages, where one led by the station dirtied a page per
        # station in the batch (measured on SQLite, 100 stations x 6 samples per commit:
        # 17.9 us per row with the station first and a (station, time) index, 7.6 us now).
        # No index leads with the station any more: the one station-scoped read, the history
        # count before a station is deleted (and that delete's foreign-key check), scans.
        Index("uq_meter_values_sample", "timestamp", "station_id", "sample_key", unique=True),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    station_id: Mapped[str] = mapped_column(ForeignKey("stations.id"))
    transaction_id: Mapped[int | None] = mapped_column(
        ForeignKey("transactions.id", ondelete="SET NULL")
    )
    evse_id: Mapped[int | None] = mapped_column(StationInt)
    timestamp: Mapped[datetime]
    measurand: Mapped[str | None] = mapped_column(String(64))
    phase: Mapped[str | None] = mapped_column(String(8))
    unit: Mapped[str | None] = mapped_column(String(20))  # 2.x unitOfMeasure.unit: <= 20
    context: Mapped[str | None] = mapped_column(String(32))
    location: Mapped[str | None] = mapped_column(String(16))
    value: Mapped[float | None] = mapped_column(Float)
    raw_value: Mapped[str | None] = mapped_column(Text)
    sample_key: Mapped[str | None] = mapped_column(String(255))


class DeviceModelEntry(Base):
    """One variable attribute of the 2.x device model, or one 1.6 configuration key."""

    __tablename__ = "device_model"

    station_id: Mapped[str] = mapped_column(ForeignKey("stations.id"), primary_key=True)
    component: Mapped[str] = mapped_column(String(50), primary_key=True)
    component_instance: Mapped[str] = mapped_column(String(50), primary_key=True, default="")
    evse_id: Mapped[int] = mapped_column(
        StationInt, primary_key=True, default=0, autoincrement=False
    )
    variable: Mapped[str] = mapped_column(String(50), primary_key=True)
    variable_instance: Mapped[str] = mapped_column(String(50), primary_key=True, default="")
    attribute_type: Mapped[str] = mapped_column(String(8), primary_key=True, default="Actual")
    value: Mapped[str | None] = mapped_column(Text)


class SecurityEvent(Base):
    """A SecurityEventNotification (1.6 security extension or 2.x)."""

    __tablename__ = "security_events"
    __table_args__ = (
        Index("ix_security_events_station_id_timestamp", "station_id", "timestamp"),
        # Security events are queued and resent by stations (A04.FR.02): stored once.
        UniqueConstraint("station_id", "type", "timestamp", name="uq_security_events_event"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    station_id: Mapped[str] = mapped_column(ForeignKey("stations.id"))
    type: Mapped[str] = mapped_column(String(50))
    timestamp: Mapped[datetime]
    tech_info: Mapped[str | None] = mapped_column(String(255))


class StationEvent(Base):
    """A 2.x NotifyEvent entry: a component variable's event (faults, alerts, changes)."""

    __tablename__ = "station_events"
    __table_args__ = (
        Index("ix_station_events_station_id_timestamp", "station_id", "timestamp"),
        UniqueConstraint("station_id", "event_id", "timestamp", name="uq_station_events_event"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    station_id: Mapped[str] = mapped_column(ForeignKey("stations.id"))
    event_id: Mapped[int] = mapped_column(StationInt)
    timestamp: Mapped[datetime]
    trigger: Mapped[str] = mapped_column(String(20))
    component: Mapped[str] = mapped_column(String(50))
    component_instance: Mapped[str | None] = mapped_column(String(50))
    evse_id: Mapped[int | None] = mapped_column(StationInt)
    variable: Mapped[str] = mapped_column(String(50))
    variable_instance: Mapped[str | None] = mapped_column(String(50))
    actual_value: Mapped[str] = mapped_column(String(2500))
    event_notification_type: Mapped[str] = mapped_column(String(40))
    cleared: Mapped[bool | None] = mapped_column(Boolean)
    tech_code: Mapped[str | None] = mapped_column(String(50))
    tech_info: Mapped[str | None] = mapped_column(String(500))


class MessageLog(Base):
    """Every frame in or out, raw, for debugging; pruned by retention."""

    __tablename__ = "message_log"
    __table_args__ = (
        CheckConstraint("direction IN ('in', 'out')", name="direction"),
        Index("ix_message_log_time", "time"),
        Index("ix_message_log_station_id_time", "station_id", "time"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    time: Mapped[datetime]
    station_id: Mapped[str] = mapped_column(String(48))
    direction: Mapped[str] = mapped_column(String(3))
    message_type: Mapped[int] = mapped_column(SmallInteger)
    action: Mapped[str | None] = mapped_column(String(64))
    message_id: Mapped[str | None] = mapped_column(String(255))
    raw: Mapped[str] = mapped_column(Text)
