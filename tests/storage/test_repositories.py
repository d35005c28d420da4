"""Repositories on both backends: idempotency of retried messages, bulk writes, retention."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, cast

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from ocppkit.storage import Database
from ocppkit.storage import repositories as repo
from ocppkit.storage.models import (
    ConnectorStatus,
    DeviceModelEntry,
    IdTag,
    MessageLog,
    MeterValue,
    SecurityEvent,
    Station,
    StatusHistory,
    Transaction,
    TransactionEvent,
)

from .conftest import OpenDatabase

T0 = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)


def _boot_row(station_id: str = "CP1", now: datetime = T0, **fields: Any) -> repo.BootRow:
    row: repo.BootRow = {
        "station_id": station_id,
        "now": now,
        "ocpp_version": "1.6",
        "vendor": "Acme",
        "model": "X1",
        "serial_number": None,
        "firmware_version": None,
        "default_status": "Accepted",
    }
    return cast(repo.BootRow, {**row, **fields})


def _presence(station_id: str, now: datetime, online: bool, version: str | None = None) -> Any:
    return {"station_id": station_id, "now": now, "online": online, "ocpp_version": version}


async def _boot(db: Database, station_id: str = "CP1") -> None:
    async with db.session() as s:
        assert await repo.register_boots(s, [_boot_row(station_id)]) == ["Accepted"]
        await s.commit()


async def test_boot_upserts_station_and_keeps_credentials(db: Database) -> None:
    await _boot(db)
    async with db.session() as s:
        station = await s.get(Station, "CP1")
        assert station is not None
        station.password_hash = "hash"
        station.security_profile = 2
        await s.commit()
    async with db.session() as s:
        later = T0 + timedelta(hours=1)
        await repo.register_boots(s, [_boot_row(now=later, firmware_version="2.0")])
        await repo.record_presence(s, [_presence("CP1", T0 + timedelta(hours=2), False)])
        await s.commit()
        station = await s.get(Station, "CP1", populate_existing=True)
        assert station is not None
        assert station.firmware_version == "2.0"
        assert (station.password_hash, station.security_profile) == ("hash", 2)
        assert station.online is False
        assert station.last_boot == T0 + timedelta(hours=1)
        assert station.last_seen == T0 + timedelta(hours=2)
        assert station.created_at == T0


async def test_register_boots_statuses_in_one_batch(db: Database) -> None:
    """The registry decides a known station's status, the policy a new one's; a status an
    operator set before the first boot wins (registered, Pending by policy: CSMS B02)."""
    async with db.session() as s:
        await repo.register_boots(s, [_boot_row("KNOWN-REJECTED", default_status="Rejected")])
        await repo.record_presence(s, [_presence("BARE", T0, True)])  # connected, no boot
        await s.commit()
    async with db.session() as s:
        statuses = await repo.register_boots(
            s,
            [
                _boot_row("KNOWN-REJECTED", default_status="Accepted"),
                _boot_row("BARE", default_status="Pending"),
                _boot_row("NEW", default_status="Pending"),
                _boot_row("NEW", default_status="Accepted"),  # booted twice in one batch
            ],
        )
        await s.commit()
    assert statuses == ["Rejected", "Pending", "Pending", "Pending"]


async def test_record_presence_keeps_order_and_reports_earlier_acceptance(db: Database) -> None:
    """A station that left and came back within one batch ends online; only a station
    Accepted at an earlier boot counts as restored (1.6 §4.2 / 2.0.1 B01)."""
    await _boot(db, "BOOTED")
    async with db.session() as s:
        result = await repo.record_presence(
            s,
            [
                _presence("BOOTED", T0 + timedelta(seconds=1), False),
                _presence("BOOTED", T0 + timedelta(seconds=2), True, "1.6"),
                _presence("FRESH", T0 + timedelta(seconds=2), True, "2.0.1"),
            ],
        )
        await s.commit()
        booted = await s.get(Station, "BOOTED", populate_existing=True)
        fresh = await s.get(Station, "FRESH", populate_existing=True)
    assert result == [False, True, False]
    assert booted is not None and booted.online is True
    assert booted.last_seen == T0 + timedelta(seconds=2)
    assert fresh is not None and (fresh.online, fresh.ocpp_version) == (True, "2.0.1")
    # A station first seen by its connection gets the model's defaults.
    assert (fresh.registration_status, fresh.security_profile) == ("Pending", 0)


async def test_mark_online_creates_bare_station_and_touch_bumps_last_seen(db: Database) -> None:
    async with db.session() as s:
        await repo.record_presence(s, [_presence("CP9", T0, True, "2.0.1")])
        await repo.touch_stations(s, ["CP9", "unknown"], now=T0 + timedelta(seconds=30))
        await s.commit()
        station = await s.get(Station, "CP9", populate_existing=True)
        assert station is not None
        assert (station.online, station.registration_status, station.ocpp_version) == (
            True,
            "Pending",
            "2.0.1",
        )
        assert station.last_seen == T0 + timedelta(seconds=30)


async def test_naive_datetimes_are_refused(db: Database) -> None:
    async with db.session() as s:
        with pytest.raises(Exception, match="naive datetime"):
            await repo.record_presence(s, [_presence("CP1", datetime(2026, 1, 1), True)])


async def test_connector_status_keeps_newest_and_full_history(db: Database) -> None:
    """Out-of-order StatusNotifications (offline queue) must not regress the current status."""
    await _boot(db)
    async with db.session() as s:
        for status, at in [("Charging", 10), ("Available", 0), ("Finishing", 20), ("Faulted", 5)]:
            await repo.set_connector_status(
                s,
                "CP1",
                evse_id=1,
                connector_id=1,
                status=status,
                timestamp=T0 + timedelta(seconds=at),
            )
        await s.commit()
        current = (await s.execute(select(ConnectorStatus))).scalars().all()
        assert [(c.evse_id, c.connector_id, c.status) for c in current] == [(1, 1, "Finishing")]
        history = await s.scalar(select(func.count()).select_from(StatusHistory))
        assert history == 4


async def test_get_id_tag(db: Database) -> None:
    async with db.session() as s:
        await repo.upsert_id_tag(s, "TAG1", status="Blocked")
        await repo.upsert_id_tag(s, "A" * 255, token_type="ISO14443")
        await s.commit()
        tag = await repo.get_id_tag(s, "TAG1")
        assert tag is not None and tag.status == "Blocked"
        assert await repo.get_id_tag(s, "missing") is None
        long_tag = await repo.get_id_tag(s, "A" * 255)
        assert long_tag is not None and long_tag.status == "Accepted"


async def test_v16_start_retry_returns_same_transaction_id(db: Database) -> None:
    """A StartTransaction resent after a lost reply gets the same transactionId (OCPP 1.6 §4.8)."""
    await _boot(db)

    async def start(s: AsyncSession) -> tuple[int, bool]:
        return await repo.start_transaction_v16(
            s, "CP1", connector_id=1, id_tag="TAG1", meter_start=1000, timestamp=T0
        )

    async with db.session() as s:
        first, created = await start(s)
        await s.commit()
        assert created
    async with db.session() as s:
        again, created_again = await start(s)
        await s.commit()
        assert (again, created_again) == (first, False)
        count = await s.scalar(select(func.count()).select_from(Transaction))
        assert count == 1
        tx = await s.get(Transaction, first)
        assert tx is not None
        assert (tx.evse_id, tx.connector_id, tx.state) == (1, 1, "Active")


async def test_v16_transaction_ids_are_positive_and_unique(db: Database) -> None:
    await _boot(db)
    ids = []
    async with db.session() as s:
        for n in range(20):
            tx_id, created = await repo.start_transaction_v16(
                s,
                "CP1",
                connector_id=1 + n % 2,
                id_tag="TAG1",
                meter_start=n,
                timestamp=T0 + timedelta(minutes=n),
            )
            assert created
            ids.append(tx_id)
        await s.commit()
    assert all(isinstance(i, int) and 0 < i < 2**31 for i in ids)
    assert len(set(ids)) == len(ids)


async def test_stop_twice_is_harmless(db: Database) -> None:
    await _boot(db)
    async with db.session() as s:
        tx_id, _ = await repo.start_transaction_v16(
            s, "CP1", connector_id=1, id_tag="TAG1", meter_start=1000, timestamp=T0
        )
        other = await repo.stop_transaction(
            s, tx_id, station_id="CP-OTHER", meter_stop=1, timestamp=T0, reason="Local"
        )
        assert other is None  # a station cannot stop another station's transaction
        stopped = await repo.stop_transaction(
            s,
            tx_id,
            station_id="CP1",
            meter_stop=3500,
            timestamp=T0 + timedelta(hours=1),
            reason="Local",
        )
        await s.commit()
        assert stopped is not None
        assert (stopped.state, stopped.energy_wh, stopped.stop_reason) == ("Ended", 2500, "Local")
    async with db.session() as s:
        again = await repo.stop_transaction(
            s,
            tx_id,
            station_id="CP1",
            meter_stop=9999,
            timestamp=T0 + timedelta(hours=2),
            reason="Other",
        )
        await s.commit()
        assert again is not None
        assert (again.meter_stop, again.energy_wh, again.stop_reason) == (3500, 2500, "Local")
        assert again.stop_time == T0 + timedelta(hours=1)
        unknown = await repo.stop_transaction(
            s, 424242, station_id="CP1", meter_stop=1, timestamp=T0
        )
        assert unknown is None


async def test_v2_events_duplicates_ignored_out_of_order_and_gaps_accepted(db: Database) -> None:
    """TransactionEvents are idempotent by (transactionId, seqNo) (OCPP 2.0.1 E07/E08)."""
    await _boot(db, "CP2")

    async def event(
        seq_no: int,
        event_type: str,
        at: int,
        *,
        offline: bool = False,
        evse_id: int | None = None,
        connector_id: int | None = None,
        id_tag: str | None = None,
        meter_wh: int | None = None,
        stopped_reason: str | None = None,
    ) -> bool:
        async with db.session() as s:
            _, applied = await repo.record_transaction_event(
                s,
                "CP2",
                transaction_uid="uid-1",
                seq_no=seq_no,
                event_type=event_type,
                trigger_reason="Trigger",
                timestamp=T0 + timedelta(seconds=at),
                offline=offline,
                evse_id=evse_id,
                connector_id=connector_id,
                id_tag=id_tag,
                meter_wh=meter_wh,
                stopped_reason=stopped_reason,
            )
            await s.commit()
            return applied

    # The Updated (seq 1) arrives first, then Ended (seq 4, gap), then Started (seq 0, late).
    assert await event(1, "Updated", 60, offline=True)
    assert await event(4, "Ended", 600, meter_wh=5000, stopped_reason="EVDisconnected")
    assert not await event(4, "Ended", 600, meter_wh=5000)
    assert await event(0, "Started", 0, evse_id=2, connector_id=1, id_tag="TOK", meter_wh=1000)
    assert not await event(1, "Updated", 60)
    assert await event(3, "Updated", 300)

    async with db.session() as s:
        tx = (await s.execute(select(Transaction))).scalar_one()
        assert tx.transaction_uid == "uid-1" and tx.id > 0
        assert (tx.state, tx.stop_reason, tx.last_seq_no) == ("Ended", "EVDisconnected", 4)
        assert (tx.evse_id, tx.connector_id, tx.id_tag) == (2, 1, "TOK")
        assert (tx.start_time, tx.stop_time) == (T0, T0 + timedelta(seconds=600))
        assert (tx.meter_start, tx.meter_stop, tx.energy_wh) == (1000, 5000, 4000)
        seqs = (await s.execute(select(TransactionEvent.seq_no).order_by("seq_no"))).scalars()
        assert list(seqs) == [0, 1, 3, 4]


async def test_v2_same_uid_on_two_stations_are_two_transactions(db: Database) -> None:
    await _boot(db, "A")
    await _boot(db, "B")
    async with db.session() as s:
        a, _ = await repo.record_transaction_event(
            s,
            "A",
            transaction_uid="u",
            seq_no=0,
            event_type="Started",
            trigger_reason="T",
            timestamp=T0,
        )
        b, _ = await repo.record_transaction_event(
            s,
            "B",
            transaction_uid="u",
            seq_no=0,
            event_type="Started",
            trigger_reason="T",
            timestamp=T0,
        )
        await s.commit()
        assert a.id != b.id


async def test_meter_values_bulk_insert_linked_to_transaction(db: Database) -> None:
    await _boot(db)
    async with db.session() as s:
        tx_id, _ = await repo.start_transaction_v16(
            s, "CP1", connector_id=1, id_tag="TAG1", meter_start=0, timestamp=T0
        )
        rows: list[repo.MeterValueRow] = [
            {
                "station_id": "CP1",
                "transaction_id": tx_id,
                "evse_id": 1,
                "timestamp": T0 + timedelta(minutes=n),
                "measurand": "Energy.Active.Import.Register",
                "unit": "Wh",
                "raw_value": str(n * 100),
            }
            for n in range(300)
        ]
        rows.append({"station_id": "CP1", "timestamp": T0, "raw_value": "not-a-number"})
        rows.append({"station_id": "CP1", "timestamp": T0, "value": 230.5, "unit": "V"})
        assert await repo.add_meter_values(s, rows) == 302
        assert await repo.add_meter_values(s, []) == 0
        await s.commit()
        linked = (
            await s.execute(
                select(MeterValue.value).where(MeterValue.transaction_id == tx_id).order_by("id")
            )
        ).scalars()
        assert list(linked) == [n * 100.0 for n in range(300)]
        loose = (
            await s.execute(
                select(MeterValue.value, MeterValue.raw_value).where(
                    MeterValue.transaction_id.is_(None)
                )
            )
        ).all()
        assert sorted(loose, key=str) == sorted([(None, "not-a-number"), (230.5, None)], key=str)


async def test_meter_values_with_unknown_or_foreign_transaction_are_kept_unlinked(
    db: Database,
) -> None:
    """1.6 §6.46 MeterValues.transactionId names the station's own transaction; an id the CSMS
    does not know, or another station's, is stored as none: the sample is kept, nothing of
    another station's transaction is touched, and the other rows of the batch go in."""
    await _boot(db, "CP1")
    await _boot(db, "CP2")
    async with db.session() as s:
        own, _ = await repo.start_transaction_v16(
            s, "CP1", connector_id=1, id_tag="TAG1", meter_start=0, timestamp=T0
        )
        other, _ = await repo.start_transaction_v16(
            s, "CP2", connector_id=1, id_tag="TAG2", meter_start=0, timestamp=T0
        )
        rows: list[repo.MeterValueRow] = [
            {
                "station_id": "CP1",
                "transaction_id": tx,
                "timestamp": T0 + timedelta(seconds=value),
                "value": value,
            }
            for tx, value in ((own, 1.0), (other, 2.0), (987654, 3.0))
        ]
        assert await repo.add_meter_values(s, rows) == 3
        assert await repo.add_meter_values(s, rows) == 3  # resent: stored once (E2)
        await s.commit()
        stored = (
            await s.execute(select(MeterValue.value, MeterValue.transaction_id).order_by("value"))
        ).all()
    assert [tuple(row) for row in stored] == [(1.0, own), (2.0, None), (3.0, None)]


async def test_message_log_prune_by_retention(db: Database) -> None:
    now = T0 + timedelta(days=30)
    rows: list[repo.MessageLogRow] = [
        {
            "time": now - timedelta(days=age),
            "station_id": "CP1",
            "direction": "in" if age % 2 else "out",
            "message_type": 2,
            "action": "Heartbeat",
            "message_id": f"m{age}",
            "raw": f'[2,"m{age}","Heartbeat",{{}}]',
        }
        for age in range(10)
    ]
    rows.append(
        {
            "time": now,
            "station_id": "??",
            "direction": "in",
            "message_type": 4,
            "raw": "x",
            "message_id": "x" * 1000,
            "action": "y" * 1000,
        }
    )
    async with db.session() as s:
        assert await repo.add_message_log(s, rows) == 11
        await s.commit()
        deleted = await repo.prune_message_log(s, retention=timedelta(days=7), now=now)
        await s.commit()
        assert deleted == 2  # ages 8 and 9; age 7 is exactly at the limit and stays
        left = (await s.execute(select(MessageLog.message_id).order_by("id"))).scalars().all()
        assert left[:-1] == [f"m{age}" for age in range(8)]
        assert left[-1] == "x" * 255


async def test_device_model_upsert(db: Database) -> None:
    await _boot(db)
    async with db.session() as s:
        await repo.upsert_device_model(
            s,
            "CP1",
            [
                {"component": "Configuration", "variable": "HeartbeatInterval", "value": "300"},
                {"component": "EVSE", "evse_id": 1, "variable": "Power", "value": "22000"},
                {
                    "component": "EVSE",
                    "evse_id": 1,
                    "variable": "Power",
                    "value": "11000",
                    "attribute_type": "MaxSet",
                },
            ],
        )
        await s.commit()
        await repo.upsert_device_model(
            s,
            "CP1",
            [
                {"component": "Configuration", "variable": "HeartbeatInterval", "value": "60"},
                {"component": "Configuration", "variable": "HeartbeatInterval", "value": "90"},
            ],
        )
        await s.commit()
        rows = (
            await s.execute(
                select(
                    DeviceModelEntry.component,
                    DeviceModelEntry.evse_id,
                    DeviceModelEntry.attribute_type,
                    DeviceModelEntry.value,
                ).order_by("component", "attribute_type")
            )
        ).all()
        assert [tuple(r) for r in rows] == [
            ("Configuration", 0, "Actual", "90"),
            ("EVSE", 1, "Actual", "22000"),
            ("EVSE", 1, "MaxSet", "11000"),
        ]


async def test_security_event(db: Database) -> None:
    await _boot(db)
    async with db.session() as s:
        await repo.add_security_event(
            s, "CP1", type="FirmwareUpdated", timestamp=T0, tech_info="v2"
        )
        await s.commit()
        event = (await s.execute(select(SecurityEvent))).scalar_one()
        assert (event.type, event.timestamp, event.tech_info) == ("FirmwareUpdated", T0, "v2")


async def test_foreign_keys_are_enforced(db: Database) -> None:
    """SQLite ignores foreign keys unless the connection enables them."""
    async with db.session() as s:
        with pytest.raises(IntegrityError):
            await repo.add_security_event(s, "nobody", type="X", timestamp=T0)
            await s.flush()


async def test_data_survives_close_and_reopen(open_database: OpenDatabase) -> None:
    db = open_database()
    await db.migrate()
    await _boot(db)
    async with db.session() as s:
        tx_id, _ = await repo.start_transaction_v16(
            s, "CP1", connector_id=1, id_tag="TAG1", meter_start=7, timestamp=T0
        )
        await s.commit()
    await db.close()

    reopened = open_database()
    await reopened.migrate()
    async with reopened.session() as s:
        tx = await s.get(Transaction, tx_id)
        assert tx is not None and (tx.meter_start, tx.start_time) == (7, T0)
        again, created = await repo.start_transaction_v16(
            s, "CP1", connector_id=1, id_tag="TAG1", meter_start=7, timestamp=T0
        )
        assert (again, created) == (tx_id, False)
        if reopened.dialect_name == "sqlite":
            assert await s.scalar(text("PRAGMA journal_mode")) == "wal"
            assert await s.scalar(text("PRAGMA foreign_keys")) == 1


async def test_station_history_counts_every_table_whose_foreign_key_refuses_the_delete(
    db: Database,
) -> None:
    """station_history names what would block delete_station; the foreign keys are the
    backstop (the API checks history first without the write lock, then deletes)."""
    await _boot(db, "EVENTS")
    await _boot(db, "BARE")
    event: repo.StationEventRow = {
        "event_id": 1,
        "timestamp": T0,
        "trigger": "Delta",
        "component": "Connector",
        "component_instance": None,
        "evse_id": 1,
        "variable": "Problem",
        "variable_instance": None,
        "actual_value": "true",
        "event_notification_type": "HardWiredNotification",
        "cleared": None,
        "tech_code": None,
        "tech_info": None,
    }
    async with db.write_session() as s:
        await repo.add_station_events(s, "EVENTS", [event], now=T0)
        await s.commit()
    async with db.session() as s:
        assert (await repo.station_history(s, "EVENTS"))["station_events"] == 1
        assert not any((await repo.station_history(s, "BARE")).values())
    async with db.write_session() as s:
        with pytest.raises(IntegrityError):
            await repo.delete_station(s, "EVENTS")
    async with db.write_session() as s:
        assert await repo.delete_station(s, "BARE") is True
        await s.commit()


async def test_nul_in_a_string_is_stored_not_a_failure(db: Database) -> None:
    """JSON, and so any OCPP string, may carry U+0000; PostgreSQL's text cannot. The write
    succeeds on both backends (before, PostgreSQL failed it, and the station got
    InternalError on every retry): SQLite keeps the character, PostgreSQL stores U+FFFD.
    Reads with such a string (an id-tag lookup) match what was stored."""
    row = _boot_row("NUL", vendor="V\x00X", serial_number="\x00\x00")
    async with db.write_session() as s:
        await repo.register_boots(s, [row])
        s.add(IdTag(id_tag="T\x00", status="Blocked"))
        await s.commit()
    expected = "\x00" if db.dialect_name == "sqlite" else "\ufffd"
    async with db.session() as s:
        station = await s.get(Station, "NUL")
        assert station is not None
        assert (station.vendor, station.serial_number) == (f"V{expected}X", expected * 2)
        tag = await repo.get_id_tag(s, "T\x00")
        assert tag is not None and (tag.id_tag, tag.status) == (f"T{expected}", "Blocked")


async def test_meter_values_keep_a_2x_unit_of_20_characters_and_a_64_bit_evse(
    db: Database,
) -> None:
    """2.x unitOfMeasure.unit may be 20 characters and evseId any integer the decoder takes
    (found by sending schema-valid payloads: PostgreSQL failed the write, 16 characters and
    32 bits). Migration 0005 widened both."""
    await _boot(db, "CP1")
    unit = "U" * 20
    row: repo.MeterValueRow = {
        "station_id": "CP1",
        "transaction_id": 2**40,  # no transaction of ours: stored as none
        "evse_id": 2**40,
        "timestamp": T0,
        "value": 1.0,
        "unit": unit,
    }
    async with db.write_session() as s:
        assert await repo.add_meter_values(s, [row]) == 1
        await s.commit()
        stored = (
            await s.execute(select(MeterValue.unit, MeterValue.evse_id, MeterValue.transaction_id))
        ).one()
    assert tuple(stored) == (unit, 2**40, None)
