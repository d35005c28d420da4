"""The CSMS with independent stations (mobilityhouse ``ocpp`` ChargePoint) over real sockets,
storing to a real SQLite file: boot, authorize, a full transaction on 1.6 and 2.0.1, and
every record still there after a restart (issue acceptance criterion).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import websockets
from ocpp.v16 import call as c16
from ocpp.v201 import call as c201
from sqlalchemy import func, select

from ocppkit.storage import Database
from ocppkit.storage.models import (
    ConnectorStatus,
    MessageLog,
    MeterValue,
    Station,
    Transaction,
)
from tests.helpers.mobilityhouse import Station16 as MhStation16
from tests.helpers.mobilityhouse import Station201 as MhStation201


def iso(delta: float = 0) -> str:
    return (datetime.now(UTC) + timedelta(seconds=delta)).isoformat()


async def station(port: int, station_id: str, version: str) -> tuple[Any, Any, asyncio.Task[None]]:
    ws = await websockets.connect(
        f"ws://127.0.0.1:{port}/ocpp/{station_id}", subprotocols=[f"ocpp{version}"]
    )
    cp = (MhStation16 if version == "1.6" else MhStation201)(station_id, ws)
    return ws, cp, asyncio.create_task(cp.start())


async def count(db_url: str, model: Any, *where: Any) -> int:
    async with Database(db_url) as db, db.session() as session:
        return int(await session.scalar(select(func.count()).select_from(model).where(*where)))


async def test_ocpp16_full_session_and_restart(csms: Callable[..., Any], db_url: str) -> None:
    """1.6: Boot Accepted, StatusNotification, Authorize, Start (retry gets the same id),
    MeterValues, Stop; the data survives a CSMS restart."""
    running = await csms()
    ws, cp, task = await station(running.port, "CP16", "1.6")
    boot = await cp.call(c16.BootNotification(charge_point_model="M", charge_point_vendor="V"))
    assert boot.status == "Accepted" and boot.interval == 300
    await cp.call(c16.StatusNotification(connector_id=1, error_code="NoError", status="Preparing"))
    auth = await cp.call(c16.Authorize(id_tag="TAG1"))
    assert auth.id_tag_info["status"] == "Accepted"
    start_request = c16.StartTransaction(
        connector_id=1, id_tag="TAG1", meter_start=1000, timestamp=iso()
    )
    started = await cp.call(start_request)
    again = await cp.call(start_request)  # retried with a new message id: same transaction
    assert started.transaction_id == again.transaction_id > 0
    await cp.call(
        c16.MeterValues(
            connector_id=1,
            transaction_id=started.transaction_id,
            meter_value=[
                {
                    "timestamp": iso(),
                    "sampled_value": [
                        {
                            "value": "1500",
                            "measurand": "Energy.Active.Import.Register",
                            "unit": "Wh",
                        },
                        {"value": "7200.5", "measurand": "Power.Active.Import", "unit": "W"},
                    ],
                }
            ],
        )
    )
    stop = await cp.call(
        c16.StopTransaction(
            meter_stop=2500,
            timestamp=iso(1),
            transaction_id=started.transaction_id,
            reason="Local",
            id_tag="TAG1",
        )
    )
    assert stop.id_tag_info["status"] == "Accepted"
    task.cancel()
    await ws.close()
    await running.stop()

    await csms()  # restart on the same file: every record is still there
    async with Database(db_url) as db, db.session() as session:
        tx = await session.get(Transaction, started.transaction_id)
        assert tx is not None
        assert (tx.meter_start, tx.meter_stop, tx.state, tx.stop_reason) == (
            1000,
            2500,
            "Ended",
            "Local",
        )
        station_row = await session.get(Station, "CP16")
        assert station_row is not None and station_row.registration_status == "Accepted"
        assert station_row.vendor == "V" and station_row.online is False
    assert await count(db_url, Transaction) == 1
    assert await count(db_url, MeterValue, MeterValue.transaction_id == tx.id) == 2
    assert await count(db_url, ConnectorStatus, ConnectorStatus.station_id == "CP16") == 1
    assert await count(db_url, MessageLog, MessageLog.station_id == "CP16") >= 14


async def test_ocpp201_transaction_events(csms: Callable[..., Any], db_url: str) -> None:
    """2.0.1: TransactionEvent Started/Updated/Ended; a resent seqNo is answered the same and
    stored once; an out-of-order event is accepted, never a CALLERROR."""
    running = await csms()
    ws, cp, task = await station(running.port, "CP201", "2.0.1")
    boot = await cp.call(
        c201.BootNotification(charging_station={"model": "M", "vendor_name": "V"}, reason="PowerUp")
    )
    assert boot.status == "Accepted"
    token = {"id_token": "TOKEN1", "type": "ISO14443"}
    common = {"transaction_info": {"transaction_id": "tx-1"}, "evse": {"id": 1, "connector_id": 1}}
    events = [
        dict(event_type="Started", seq_no=0, trigger_reason="Authorized", id_token=token),
        dict(
            event_type="Updated",
            seq_no=2,
            trigger_reason="MeterValuePeriodic",
            meter_value=[{"timestamp": iso(), "sampled_value": [{"value": 1500.0}]}],
        ),
        dict(event_type="Updated", seq_no=1, trigger_reason="ChargingStateChanged"),
        dict(event_type="Updated", seq_no=1, trigger_reason="ChargingStateChanged"),
        dict(
            event_type="Ended",
            seq_no=3,
            trigger_reason="StopAuthorized",
            meter_value=[
                {
                    "timestamp": iso(1),
                    "sampled_value": [{"value": 2.5, "unit_of_measure": {"unit": "kWh"}}],
                }
            ],
        ),
    ]
    for event in events:
        reply = await cp.call(c201.TransactionEvent(timestamp=iso(), **common, **event))
        if "id_token" in event:
            assert reply.id_token_info["status"] == "Accepted"
    task.cancel()
    await ws.close()
    async with Database(db_url) as db, db.session() as session:
        tx = await session.scalar(select(Transaction).where(Transaction.transaction_uid == "tx-1"))
        assert tx is not None and tx.state == "Ended" and tx.last_seq_no == 3
        assert tx.id_tag == "TOKEN1"
    assert await count(db_url, MeterValue, MeterValue.transaction_id == tx.id) == 2


async def test_calls_before_accepted_get_security_error(
    csms: Callable[..., Any], db_url: str
) -> None:
    """1.6J errata 3.8 / 2.0.1 B02.FR.09: before Accepted, CALLs other than Boot ->
    SecurityError; policy 'pending' answers Boot Pending."""
    running = await csms(unknown_stations="pending")
    ws, cp, task = await station(running.port, "NEW1", "1.6")
    with pytest.raises(Exception) as info:  # mobilityhouse raises its SecurityError
        await cp.call(c16.Heartbeat(), suppress=False)
    assert type(info.value).__name__ == "SecurityError"
    boot = await cp.call(c16.BootNotification(charge_point_model="M", charge_point_vendor="V"))
    assert boot.status == "Pending"
    with pytest.raises(Exception) as info:
        await cp.call(
            c16.StartTransaction(connector_id=1, id_tag="T", meter_start=0, timestamp=iso()),
            suppress=False,
        )
    assert type(info.value).__name__ == "SecurityError"
    task.cancel()
    await ws.close()
    assert await count(db_url, Transaction) == 0


async def test_unknown_tags_rejected_by_policy(csms: Callable[..., Any]) -> None:
    """unknown_id_tags=reject: an unknown tag is Invalid."""
    running = await csms(unknown_id_tags="reject")
    ws, cp, task = await station(running.port, "CP2", "1.6")
    await cp.call(c16.BootNotification(charge_point_model="M", charge_point_vendor="V"))
    auth = await cp.call(c16.Authorize(id_tag="NOBODY"))
    assert auth.id_tag_info["status"] == "Invalid"
    task.cancel()
    await ws.close()


async def test_duplicate_station_id_does_not_displace_first(csms: Callable[..., Any]) -> None:
    """A11: an unauthenticated second connection with the same id is closed 1008; the first
    keeps working."""
    running = await csms()
    ws1, cp1, task1 = await station(running.port, "DUP", "1.6")
    await cp1.call(c16.BootNotification(charge_point_model="M", charge_point_vendor="V"))
    ws2 = await websockets.connect(f"ws://127.0.0.1:{running.port}/DUP", subprotocols=["ocpp1.6"])
    with pytest.raises(websockets.ConnectionClosed):
        await ws2.recv()
    assert ws2.close_code == 1008
    heartbeat = await cp1.call(c16.Heartbeat())
    assert heartbeat.current_time
    task1.cancel()
    await ws1.close()


async def test_message_log_retention(csms: Callable[..., Any], db_url: str) -> None:
    """message_log_retention_days: rows older than the retention are pruned, newer kept."""
    running = await csms(message_log_retention_days=7)
    service = running.service
    old = datetime.now(UTC) - timedelta(days=8)
    async with service.db.session() as session:
        session.add_all(
            [
                MessageLog(time=old, station_id="X", direction="in", message_type=2, raw="[]"),
                MessageLog(
                    time=datetime.now(UTC), station_id="X", direction="in", message_type=2, raw="[]"
                ),
            ]
        )
        await session.commit()
    assert await service.prune_message_log() == 1
    assert await count(db_url, MessageLog, MessageLog.station_id == "X") == 1


async def test_reconnect_without_reboot_needs_no_new_boot(csms: Callable[..., Any]) -> None:
    """1.6 §4.2 / 2.0.1 B01: BootNotification follows a (re)boot, not every reconnect. A
    station Accepted at an earlier boot that only reconnects is served at once; one that was
    answered Pending still gets SecurityError until it boots Accepted."""
    running = await csms()
    ws, cp, task = await station(running.port, "RECON", "1.6")
    await cp.call(c16.BootNotification(charge_point_model="M", charge_point_vendor="V"))
    task.cancel()
    await ws.close()
    ws, cp, task = await station(running.port, "RECON", "1.6")
    heartbeat = await cp.call(c16.Heartbeat(), suppress=False)
    assert heartbeat.current_time
    task.cancel()
    await ws.close()
    await running.stop()

    pending = await csms(unknown_stations="pending")
    ws, cp, task = await station(pending.port, "RECON-P", "1.6")
    boot = await cp.call(c16.BootNotification(charge_point_model="M", charge_point_vendor="V"))
    assert boot.status == "Pending"
    task.cancel()
    await ws.close()
    ws, cp, task = await station(pending.port, "RECON-P", "1.6")
    with pytest.raises(Exception) as info:
        await cp.call(c16.Heartbeat(), suppress=False)
    assert type(info.value).__name__ == "SecurityError"
    task.cancel()
    await ws.close()
