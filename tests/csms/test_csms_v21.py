"""OCPP 2.1 stations on the same endpoint, served with the 2.0.1 behaviour where the messages
match (issue 3), with the mobilityhouse ``ocpp`` 2.1 ChargePoint as the independent station.

Anchors: 2.0.1/2.1 Part 4 §3.1.3 (subprotocol in the client's order), B01 (boot), E01-E07
(TransactionEvent), 2.1 Part 4 §4.1.4 (a CALL retried with the same message id is answered
from the cache), 2.0.1 Part 4 §4.3 (a known action the CSMS does not implement: NotSupported).
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from typing import Any

import pytest
import websockets
from ocpp.exceptions import NotSupportedError
from ocpp.v21 import call as c21
from sqlalchemy import func, select

from ocppkit.node import RunningCsms
from ocppkit.storage.models import MeterValue, Station, Transaction
from tests.helpers.mobilityhouse import Station21 as MhStation21


def iso() -> str:
    return datetime.now(UTC).isoformat()


async def _station(running: RunningCsms, station_id: str) -> tuple[Any, Any, asyncio.Task[None]]:
    ws = await websockets.connect(
        f"ws://127.0.0.1:{running.port}/ocpp/{station_id}", subprotocols=["ocpp2.1", "ocpp2.0.1"]
    )
    assert ws.subprotocol == "ocpp2.1"  # the client's first choice
    cp = MhStation21(station_id, ws)
    return ws, cp, asyncio.create_task(cp.start())


async def _scalar(running: RunningCsms, query: Any) -> Any:
    async with running.service.db.session() as session:
        return await session.scalar(query)


async def test_21_station_boots_and_runs_a_transaction(running: RunningCsms) -> None:
    """A 2.1 station: Boot Accepted, Authorize, TransactionEvent Started/Updated/Ended with
    meter values (2.1-only fields such as ``evseSleep`` accepted), all stored."""
    ws, cp, task = await _station(running, "CP21")
    boot = await cp.call(
        c21.BootNotification(
            charging_station={"model": "M21", "vendor_name": "V"}, reason="PowerUp"
        )
    )
    assert boot.status == "Accepted"
    auth = await cp.call(c21.Authorize(id_token={"id_token": "TAG21", "type": "ISO14443"}))
    assert auth.id_token_info["status"] == "Accepted"
    meter = [
        {
            "timestamp": iso(),
            "sampled_value": [{"value": 1200.0, "measurand": "Energy.Active.Import.Register"}],
        }
    ]
    for seq_no, event in enumerate(("Started", "Updated", "Ended")):
        reply = await cp.call(
            c21.TransactionEvent(
                event_type=event,
                seq_no=seq_no,
                timestamp=iso(),
                transaction_info={"transaction_id": "tx-21", "stopped_reason": "Local"}
                if event == "Ended"
                else {"transaction_id": "tx-21"},
                trigger_reason="Authorized" if event == "Started" else "MeterValuePeriodic",
                evse={"id": 1, "connector_id": 1},
                id_token={"id_token": "TAG21", "type": "ISO14443"} if event == "Started" else None,
                meter_value=[{**meter[0], "timestamp": iso()}],
                evse_sleep=False,
            )
        )
        if event == "Started":
            assert reply.id_token_info["status"] == "Accepted"
    task.cancel()
    await ws.close()
    state = await _scalar(
        running, select(Transaction.state).where(Transaction.transaction_uid == "tx-21")
    )
    assert state == "Ended"
    assert await _scalar(running, select(func.count()).select_from(MeterValue)) == 3
    station = await _scalar(running, select(Station).where(Station.id == "CP21"))
    assert station.ocpp_version == "2.1"


async def test_21_only_action_is_not_supported(running: RunningCsms) -> None:
    """A 2.1-only station message the CSMS has no behaviour for (NotifySettlement) gets
    CALLERROR NotSupported, and the connection goes on."""
    ws, cp, task = await _station(running, "CP21b")
    await cp.call(
        c21.BootNotification(charging_station={"model": "M", "vendor_name": "V"}, reason="PowerUp")
    )
    with pytest.raises(NotSupportedError):
        await cp.call(
            c21.NotifySettlement(
                psp_ref="p1", settlement_amount=1.0, settlement_time=iso(), status="Settled"
            ),
            suppress=False,
        )
    heartbeat = await cp.call(c21.Heartbeat())
    assert heartbeat.current_time
    task.cancel()
    await ws.close()


async def test_21_retry_with_the_same_message_id_is_answered_from_the_cache(
    running: RunningCsms,
) -> None:
    """2.1 Part 4 §4.1.4 (checklist C4): the station resends a TransactionEvent with the same
    message id; the CSMS answers byte-identically without handling it twice."""
    async with websockets.connect(
        f"ws://127.0.0.1:{running.port}/ocpp/CP21c", subprotocols=["ocpp2.1"]
    ) as ws:
        boot = {"reason": "PowerUp", "chargingStation": {"model": "M", "vendorName": "V"}}
        await ws.send(json.dumps([2, "b1", "BootNotification", boot]))
        assert json.loads(await ws.recv())[2]["status"] == "Accepted"
        event = {
            "eventType": "Started",
            "seqNo": 0,
            "timestamp": iso(),
            "transactionInfo": {"transactionId": "tx-retry"},
            "triggerReason": "CablePluggedIn",
        }
        frame = json.dumps([2, "te-1", "TransactionEvent", event])
        await ws.send(frame)
        first = await ws.recv()
        await ws.send(frame)
        assert await ws.recv() == first
    count = await _scalar(
        running,
        select(func.count())
        .select_from(Transaction)
        .where(Transaction.transaction_uid == "tx-retry"),
    )
    assert count == 1
