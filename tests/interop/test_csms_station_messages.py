"""Every station-initiated message of OCPP 1.6 and 2.0.1, sent by an independent station (the
mobilityhouse ``ocpp`` ChargePoint) to our CSMS over a real socket, with what the CSMS must
answer and store (issue 3, "What the CSMS does with each message").

Anchors: 1.6 §4 (Core, FirmwareManagement), §6.15 DataTransfer (UnknownVendorId), the 1.6
Security whitepaper §4 (SecurityEventNotification, SignCertificate, LogStatusNotification,
SignedFirmwareStatusNotification); 2.0.1 B01, G01, C01, E01, J01, B07/B08, N07, A04, L01,
N01, P01, K17, H05; A04.FR.02 (security events are queued and resent: idempotent).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
import websockets
from ocpp.v16 import call as c16
from ocpp.v201 import call as c201
from sqlalchemy import func, select

from ocppkit.node import RunningCsms
from ocppkit.storage.models import (
    ConnectorStatus,
    DeviceModelEntry,
    MeterValue,
    SecurityEvent,
    Station,
    StationEvent,
    StatusHistory,
    Transaction,
)
from tests.helpers.mobilityhouse import Station16 as MhStation16
from tests.helpers.mobilityhouse import Station201 as MhStation201


def iso() -> str:
    return datetime.now(UTC).isoformat()


@pytest.fixture
async def station(running: RunningCsms) -> AsyncIterator[Any]:
    """A factory of booted mobilityhouse stations; closed at teardown."""
    opened: list[tuple[Any, asyncio.Task[None]]] = []

    async def open_station(station_id: str, version: str) -> Any:
        ws = await websockets.connect(
            f"ws://127.0.0.1:{running.port}/ocpp/{station_id}", subprotocols=[f"ocpp{version}"]
        )
        cp = (MhStation16 if version == "1.6" else MhStation201)(station_id, ws)
        opened.append((ws, asyncio.create_task(cp.start())))
        if version == "1.6":
            boot = await cp.call(
                c16.BootNotification(charge_point_model="M", charge_point_vendor="V")
            )
        else:
            boot = await cp.call(
                c201.BootNotification(
                    charging_station={"model": "M", "vendor_name": "V"}, reason="PowerUp"
                )
            )
        assert boot.status == "Accepted"
        return cp

    yield open_station
    for ws, task in opened:
        task.cancel()
        await ws.close()


async def _scalar(running: RunningCsms, query: Any) -> Any:
    async with running.service.db.session() as session:
        return await session.scalar(query)


async def _count(running: RunningCsms, model: Any, *where: Any) -> int:
    return int(await _scalar(running, select(func.count()).select_from(model).where(*where)))


async def test_ocpp16_every_station_initiated_message(running: RunningCsms, station: Any) -> None:
    """1.6 Core + FirmwareManagement + Security extension, each answered and stored."""
    cp = await station("CP16ALL", "1.6")
    assert (await cp.call(c16.Heartbeat())).current_time
    for connector in (0, 1, 2):
        await cp.call(
            c16.StatusNotification(
                connector_id=connector,
                error_code="NoError" if connector != 2 else "GroundFailure",
                status="Available" if connector != 2 else "Faulted",
                timestamp=iso(),
            )
        )
    assert await _count(running, ConnectorStatus, ConnectorStatus.station_id == "CP16ALL") == 3
    faulted = await _scalar(
        running,
        select(ConnectorStatus.error_code).where(
            ConnectorStatus.station_id == "CP16ALL", ConnectorStatus.connector_id == 2
        ),
    )
    assert faulted == "GroundFailure"
    assert (await cp.call(c16.Authorize(id_tag="TAG16"))).id_tag_info["status"] == "Accepted"
    started = await cp.call(
        c16.StartTransaction(connector_id=1, id_tag="TAG16", meter_start=100, timestamp=iso())
    )
    assert started.transaction_id > 0
    sampled = [
        {"value": "150", "measurand": "Energy.Active.Import.Register", "unit": "Wh"},
        {"value": "11000", "measurand": "Power.Active.Import", "unit": "W"},
        {"value": "16.1", "measurand": "Current.Import", "phase": "L1", "unit": "A"},
        {"value": "231.0", "measurand": "Voltage", "phase": "L1-N", "unit": "V"},
        {"value": "48", "measurand": "SoC", "unit": "Percent", "context": "Sample.Periodic"},
    ]
    await cp.call(
        c16.MeterValues(
            connector_id=1,
            transaction_id=started.transaction_id,
            meter_value=[{"timestamp": iso(), "sampled_value": sampled}],
        )
    )
    stop = await cp.call(
        c16.StopTransaction(
            meter_stop=2100,
            timestamp=iso(),
            transaction_id=started.transaction_id,
            reason="EVDisconnected",
            transaction_data=[{"timestamp": iso(), "sampled_value": sampled[:1]}],
        )
    )
    assert stop is not None
    transaction = await _scalar(
        running, select(Transaction).where(Transaction.id == started.transaction_id)
    )
    assert (transaction.meter_stop, transaction.stop_reason) == (2100, "EVDisconnected")
    async with running.service.db.session() as session:
        measurands = set(
            (
                await session.execute(
                    select(MeterValue.measurand, MeterValue.phase).where(
                        MeterValue.transaction_id == started.transaction_id
                    )
                )
            ).all()
        )
    assert ("Current.Import", "L1") in measurands and ("SoC", None) in measurands
    transfer = await cp.call(c16.DataTransfer(vendor_id="com.example", message_id="x", data="1"))
    assert transfer.status == "UnknownVendorId"
    await cp.call(c16.DiagnosticsStatusNotification(status="Uploading"))
    await cp.call(c16.FirmwareStatusNotification(status="Downloading"))
    await cp.call(c16.SignedFirmwareStatusNotification(status="Installed", request_id=7))
    await cp.call(c16.LogStatusNotification(status="Uploaded", request_id=8))
    row = await _scalar(running, select(Station).where(Station.id == "CP16ALL"))
    assert (row.firmware_status, row.log_status) == ("Installed", "Uploaded")
    event = c16.SecurityEventNotification(
        type="StartupOfTheDevice", timestamp=iso(), tech_info="boot"
    )
    await cp.call(event)
    await cp.call(event)  # resent (A04.FR.02): stored once
    assert await _count(running, SecurityEvent, SecurityEvent.station_id == "CP16ALL") == 1
    csr = await cp.call(c16.SignCertificate(csr="-----BEGIN CERTIFICATE REQUEST-----"))
    assert csr.status == "Rejected"  # no certificate authority is configured


async def test_ocpp201_every_station_initiated_message(running: RunningCsms, station: Any) -> None:
    """2.0.1: every station-initiated message the issue lists, each answered and stored."""
    cp = await station("CP201ALL", "2.0.1")
    assert (await cp.call(c201.Heartbeat())).current_time
    await cp.call(
        c201.StatusNotification(
            timestamp=iso(), connector_status="Occupied", evse_id=2, connector_id=1
        )
    )
    assert await _count(running, StatusHistory, StatusHistory.station_id == "CP201ALL") == 1
    token = {"id_token": "TOK201", "type": "ISO14443"}
    assert (await cp.call(c201.Authorize(id_token=token))).id_token_info["status"] == "Accepted"
    for seq_no, event_type in enumerate(("Started", "Ended")):
        await cp.call(
            c201.TransactionEvent(
                event_type=event_type,
                seq_no=seq_no,
                timestamp=iso(),
                trigger_reason="Authorized" if event_type == "Started" else "EVCommunicationLost",
                transaction_info={"transaction_id": "T201", "charging_state": "Charging"},
                id_token=token,
                evse={"id": 2, "connector_id": 1},
                offline=seq_no == 1,
            )
        )
    await cp.call(
        c201.MeterValues(
            evse_id=2, meter_value=[{"timestamp": iso(), "sampled_value": [{"value": 3.5}]}]
        )
    )
    assert await _count(running, MeterValue, MeterValue.station_id == "CP201ALL") == 1
    await cp.call(
        c201.NotifyReport(
            request_id=1,
            generated_at=iso(),
            seq_no=0,
            report_data=[
                {
                    "component": {"name": "OCPPCommCtrlr"},
                    "variable": {"name": "HeartbeatInterval"},
                    "variable_attribute": [{"type": "Actual", "value": "300"}],
                }
            ],
        )
    )
    assert await _count(running, DeviceModelEntry, DeviceModelEntry.station_id == "CP201ALL") == 1
    notify = c201.NotifyEvent(
        generated_at=iso(),
        seq_no=0,
        event_data=[
            {
                "event_id": 1,
                "timestamp": iso(),
                "trigger": "Alerting",
                "actual_value": "true",
                "component": {"name": "Connector", "evse": {"id": 2, "connector_id": 1}},
                "variable": {"name": "Problem"},
                "event_notification_type": "HardWiredNotification",
                "tech_code": "E42",
            }
        ],
    )
    await cp.call(notify)
    await cp.call(notify)  # resent: stored once
    stored = await _scalar(
        running, select(StationEvent).where(StationEvent.station_id == "CP201ALL")
    )
    assert (stored.component, stored.variable, stored.evse_id, stored.tech_code) == (
        "Connector",
        "Problem",
        2,
        "E42",
    )
    assert await _count(running, StationEvent) == 1
    await cp.call(c201.SecurityEventNotification(type="FirmwareUpdated", timestamp=iso()))
    assert await _count(running, SecurityEvent, SecurityEvent.station_id == "CP201ALL") == 1
    await cp.call(c201.FirmwareStatusNotification(status="Installing", request_id=3))
    await cp.call(c201.LogStatusNotification(status="Uploading", request_id=4))
    row = await _scalar(running, select(Station).where(Station.id == "CP201ALL"))
    assert (row.firmware_status, row.log_status) == ("Installing", "Uploading")
    transfer = await cp.call(c201.DataTransfer(vendor_id="com.example"))
    assert transfer.status == "UnknownVendorId"
    await cp.call(
        c201.NotifyChargingLimit(charging_limit={"charging_limit_source": "EMS"}, evse_id=2)
    )
    await cp.call(
        c201.ReservationStatusUpdate(reservation_id=5, reservation_update_status="Expired")
    )
    # Answers to the CSMS's GetMonitoringReport / GetDisplayMessages / CustomerInformation /
    # GetChargingProfiles (K09: the profiles come in ReportChargingProfiles).
    await cp.call(c201.NotifyMonitoringReport(request_id=6, seq_no=0, generated_at=iso()))
    await cp.call(c201.NotifyDisplayMessages(request_id=7))
    await cp.call(
        c201.ReportChargingProfiles(
            request_id=9,
            charging_limit_source="CSO",
            evse_id=1,
            charging_profile=[
                {
                    "id": 1,
                    "stack_level": 0,
                    "charging_profile_purpose": "TxDefaultProfile",
                    "charging_profile_kind": "Absolute",
                    "charging_schedule": [
                        {
                            "id": 1,
                            "charging_rate_unit": "W",
                            "charging_schedule_period": [{"start_period": 0, "limit": 11000}],
                        }
                    ],
                }
            ],
        )
    )
    await cp.call(
        c201.NotifyCustomerInformation(data="none", seq_no=0, generated_at=iso(), request_id=8)
    )
    heartbeat = await cp.call(c201.Heartbeat())  # the connection is still up after all of it
    assert heartbeat.current_time
