"""OCPP 2.0.1 station runtime against an independent CSMS (mobilityhouse ``ocpp``), over
real sockets: TransactionEvents and every CSMS-initiated message with its side effect.
Test names cite the 2.0.1 requirement they check.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from ocpp.exceptions import NotSupportedError
from ocpp.v201 import call as c201

from ocppkit.station.station import Station, StationConfig
from ocppkit.station.store import StationStore
from tests.station.peers import Recorder, online, running, their_csms, with_their_csms

SID = "EMU201"
TOKEN = {"id_token": "RFID-1", "type": "ISO14443"}


@pytest.fixture
async def peer(store: StationStore) -> AsyncIterator[tuple[Station, Recorder, Any]]:
    async with with_their_csms(store, SID, "2.0.1", statuses=2) as peer:
        yield peer


async def call(point: Any, payload: Any) -> Any:
    return await point.call(payload, suppress=False)


def events(rec: Recorder) -> list[dict[str, Any]]:
    return rec.of("TransactionEvent")


def statuses(rec: Recorder, evse: int) -> list[str]:
    return [k["connector_status"] for k in rec.of("StatusNotification") if k["evse_id"] == evse]


async def test_boot_and_a_full_transaction_e01_e06(peer: tuple[Station, Recorder, Any]) -> None:
    """B01 boot (PowerUp) and a status per connector; C01 Authorize; E01 Started (seqNo 0,
    idToken, evse, Transaction.Begin value), E02 Updated MeterValuePeriodic, E06 Ended with
    stoppedReason Local; seqNo continuous (E01.FR.07)."""
    station, rec, _ = peer
    assert rec.of("BootNotification")[0]["reason"] == "PowerUp"
    assert statuses(rec, 1) == ["Available"] and statuses(rec, 2) == ["Available"]
    await station.plug(1)
    assert await station.present_token("RFID-1", 1) == "Accepted"
    assert rec.of("Authorize")[0]["id_token"] == TOKEN
    await rec.wait_for(lambda r: len(events(r)) >= 3)
    started = events(rec)[0]
    assert started["event_type"] == "Started" and started["seq_no"] == 0
    assert started["trigger_reason"] == "Authorized"
    assert started["id_token"] == TOKEN and started["evse"] == {"id": 1, "connector_id": 1}
    assert started["meter_value"][0]["sampled_value"][0]["context"] == "Transaction.Begin"
    assert events(rec)[1]["trigger_reason"] == "MeterValuePeriodic"
    await station.present_token("RFID-1", 1)
    await rec.wait_for(lambda r: events(r)[-1]["event_type"] == "Ended")
    ended = events(rec)[-1]
    assert ended["transaction_info"]["stopped_reason"] == "Local"
    assert ended["trigger_reason"] == "StopAuthorized"
    assert [e["seq_no"] for e in events(rec)] == list(range(len(events(rec))))
    assert all("offline" not in e for e in events(rec))
    assert statuses(rec, 1)[-1] == "Occupied"
    await station.unplug(1)
    await rec.wait_for(lambda r: statuses(r, 1)[-1] == "Available")


async def test_request_start_and_stop_f01_f03(peer: tuple[Station, Recorder, Any]) -> None:
    """F01 RequestStartTransaction: Accepted, Started with triggerReason RemoteStart and the
    remoteStartId; F03 RequestStopTransaction: Ended with stoppedReason Remote; an unknown
    transaction is Rejected."""
    _station, rec, point = peer
    reply = await call(
        point, c201.RequestStartTransaction(id_token=TOKEN, remote_start_id=42, evse_id=2)
    )
    assert reply.status == "Accepted"
    await rec.wait_for(lambda r: len(events(r)) >= 1)
    started = events(rec)[0]
    assert started["trigger_reason"] == "RemoteStart"
    assert started["transaction_info"]["remote_start_id"] == 42
    tx_id = started["transaction_info"]["transaction_id"]
    assert (await call(point, c201.RequestStopTransaction(transaction_id="nope"))).status == (
        "Rejected"
    )
    stop = await call(point, c201.RequestStopTransaction(transaction_id=tx_id))
    assert stop.status == "Accepted"
    await rec.wait_for(lambda r: events(r)[-1]["event_type"] == "Ended")
    assert events(rec)[-1]["transaction_info"]["stopped_reason"] == "Remote"
    assert events(rec)[-1]["trigger_reason"] == "RemoteStop"


async def test_device_model_get_set_variables_and_base_report_b05_b07(
    peer: tuple[Station, Recorder, Any],
) -> None:
    """B06 GetVariables (UnknownComponent for an unknown one), B05 SetVariables (applied:
    heartbeats follow), B07 GetBaseReport -> NotifyReport messages numbered from seqNo 0,
    tbc on all but the last."""
    _station, rec, point = peer
    got = await call(
        point,
        c201.GetVariables(
            get_variable_data=[
                {"component": {"name": "OCPPCommCtrlr"}, "variable": {"name": "HeartbeatInterval"}},
                {"component": {"name": "Nothing"}, "variable": {"name": "X"}},
            ]
        ),
    )
    results = got.get_variable_result
    assert results[0]["attribute_status"] == "Accepted"
    assert results[1]["attribute_status"] == "UnknownComponent"
    set_ = await call(
        point,
        c201.SetVariables(
            set_variable_data=[
                {
                    "component": {"name": "OCPPCommCtrlr"},
                    "variable": {"name": "HeartbeatInterval"},
                    "attribute_value": "1",
                }
            ]
        ),
    )
    assert set_.set_variable_result[0]["attribute_status"] == "Accepted"
    await rec.wait_count("Heartbeat", 2, timeout=5)
    report = await call(point, c201.GetBaseReport(request_id=5, report_base="FullInventory"))
    assert report.status == "Accepted"
    await rec.wait_for(lambda r: any(not k.get("tbc") for k in r.of("NotifyReport")))
    reports = rec.of("NotifyReport")
    assert [k["seq_no"] for k in reports] == list(range(len(reports)))
    assert all(k["request_id"] == 5 for k in reports)
    assert all(k.get("tbc") for k in reports[:-1])


async def test_reset_immediate_and_on_idle_b11_b12(peer: tuple[Station, Recorder, Any]) -> None:
    """B12 Reset OnIdle during a transaction: Scheduled; B11 Immediate: Ended with
    ImmediateReset, then a new BootNotification with reason RemoteReset."""
    station, rec, point = peer
    await station.start_transaction(1, "RFID-R")
    await rec.wait_for(lambda r: len(events(r)) >= 1)
    assert (await call(point, c201.Reset(type="OnIdle"))).status == "Scheduled"
    assert (await call(point, c201.Reset(type="Immediate", evse_id=9))).status == "Rejected"
    assert (await call(point, c201.Reset(type="Immediate"))).status == "Accepted"
    await rec.wait_for(lambda r: events(r)[-1]["event_type"] == "Ended")
    assert events(rec)[-1]["transaction_info"]["stopped_reason"] == "ImmediateReset"
    await rec.wait_count("BootNotification", 2)
    assert rec.of("BootNotification")[1]["reason"] == "RemoteReset"


async def test_availability_unlock_and_transaction_status(
    peer: tuple[Station, Recorder, Any],
) -> None:
    """G03 ChangeAvailability (Scheduled while a transaction runs), F05 UnlockConnector
    (OngoingAuthorizedTransaction, UnknownConnector), E14 GetTransactionStatus."""
    station, rec, point = peer
    await station.start_transaction(1, "RFID-G")
    await rec.wait_for(lambda r: len(events(r)) >= 1)
    tx_id = events(rec)[0]["transaction_info"]["transaction_id"]
    status = await call(point, c201.GetTransactionStatus(transaction_id=tx_id))
    assert status.ongoing_indicator is True and status.messages_in_queue is False
    unlock = await call(point, c201.UnlockConnector(evse_id=1, connector_id=1))
    assert unlock.status == "OngoingAuthorizedTransaction"
    assert (await call(point, c201.UnlockConnector(evse_id=9, connector_id=1))).status == (
        "UnknownConnector"
    )
    assert (await call(point, c201.UnlockConnector(evse_id=2, connector_id=1))).status == "Unlocked"
    change = await call(
        point, c201.ChangeAvailability(operational_status="Inoperative", evse={"id": 1})
    )
    assert change.status == "Scheduled"
    idle = await call(
        point, c201.ChangeAvailability(operational_status="Inoperative", evse={"id": 2})
    )
    assert idle.status == "Accepted"
    await rec.wait_for(lambda r: statuses(r, 2)[-1] == "Unavailable")
    await station.stop_transaction(1)
    await station.unplug(1)
    await rec.wait_for(lambda r: statuses(r, 1)[-1] == "Unavailable")
    done = await call(point, c201.GetTransactionStatus(transaction_id=tx_id))
    assert done.ongoing_indicator is False


async def test_trigger_messages_f06(peer: tuple[Station, Recorder, Any]) -> None:
    """F06 TriggerMessage: Accepted then the message; TransactionEvent without a
    transaction is Rejected; an unsupported one NotImplemented."""
    station, rec, point = peer
    for message, action in [
        ("StatusNotification", "StatusNotification"),
        ("Heartbeat", "Heartbeat"),
        ("MeterValues", "MeterValues"),
        ("FirmwareStatusNotification", "FirmwareStatusNotification"),
        ("LogStatusNotification", "LogStatusNotification"),
        ("BootNotification", "BootNotification"),
    ]:
        before = len(rec.of(action))
        reply = await call(point, c201.TriggerMessage(requested_message=message, evse={"id": 1}))
        assert reply.status == "Accepted", message
        await rec.wait_count(action, before + 1)
    assert rec.of("BootNotification")[-1]["reason"] == "Triggered"
    none = await call(point, c201.TriggerMessage(requested_message="TransactionEvent"))
    assert none.status == "Rejected"
    sign = await call(point, c201.TriggerMessage(requested_message="SignCombinedCertificate"))
    assert sign.status == "NotImplemented"
    await station.start_transaction(2, "RFID-T")
    await rec.wait_for(lambda r: len(events(r)) >= 1)
    reply = await call(
        point, c201.TriggerMessage(requested_message="TransactionEvent", evse={"id": 2})
    )
    assert reply.status == "Accepted"
    await rec.wait_for(lambda r: events(r)[-1]["trigger_reason"] == "Trigger")


async def test_reservation_h01_h02_and_expiry(peer: tuple[Station, Recorder, Any]) -> None:
    """H01 ReserveNow (Reserved; another token refused), H02 CancelReservation, and an
    expired reservation reported by ReservationStatusUpdate (Expired)."""
    station, rec, point = peer
    later = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    no_evse = await call(point, c201.ReserveNow(id=1, expiry_date_time=later, id_token=TOKEN))
    assert no_evse.status == "Accepted"  # NonEvseSpecific: an unspecified EVSE (H01 S1)
    reply = await call(
        point, c201.ReserveNow(id=2, expiry_date_time=later, id_token=TOKEN, evse_id=1)
    )
    assert reply.status == "Accepted"
    await rec.wait_for(lambda r: statuses(r, 1)[-1] == "Reserved")
    assert await station.present_token("OTHER", 1) == "Invalid"
    assert (await call(point, c201.CancelReservation(reservation_id=2))).status == "Accepted"
    await rec.wait_for(lambda r: statuses(r, 1)[-1] == "Available")
    soon = (datetime.now(UTC) + timedelta(seconds=1)).isoformat()
    await call(point, c201.ReserveNow(id=3, expiry_date_time=soon, id_token=TOKEN, evse_id=2))
    await rec.wait_count("ReservationStatusUpdate", 1, timeout=5)
    update = rec.of("ReservationStatusUpdate")[0]
    assert update == {"reservation_id": 3, "reservation_update_status": "Expired"}


async def test_charging_profile_k01_limits_power_and_composite_schedule_k08(
    peer: tuple[Station, Recorder, Any],
) -> None:
    """K01 SetChargingProfile (TxProfile of the running transaction, 6 A) caps the power;
    K08 GetCompositeSchedule reports the limit; K10 ClearChargingProfile."""
    station, rec, point = peer
    await station.start_transaction(1, "RFID-K")
    await rec.wait_for(lambda r: len(events(r)) >= 2)
    tx_id = events(rec)[0]["transaction_info"]["transaction_id"]
    profile = {
        "id": 11,
        "stack_level": 0,
        "charging_profile_purpose": "TxProfile",
        "charging_profile_kind": "Relative",
        "transaction_id": tx_id,
        "charging_schedule": [
            {
                "id": 1,
                "charging_rate_unit": "A",
                "charging_schedule_period": [{"start_period": 0, "limit": 6}],
            }
        ],
    }
    wrong = dict(profile, transaction_id="other")
    assert (
        await call(point, c201.SetChargingProfile(evse_id=1, charging_profile=wrong))
    ).status == "Rejected"
    reply = await call(point, c201.SetChargingProfile(evse_id=1, charging_profile=profile))
    assert reply.status == "Accepted"
    await station.wait_for_state(
        lambda s: 0 < s["connectors"][0]["power_w"] <= 6 * 230 * 3 * 1.02, 5
    )
    schedule = await call(point, c201.GetCompositeSchedule(duration=300, evse_id=1))
    assert schedule.status == "Accepted"
    assert schedule.schedule["charging_schedule_period"][0]["limit"] == 6
    cleared = await call(point, c201.ClearChargingProfile(charging_profile_id=11))
    assert cleared.status == "Accepted"


async def test_firmware_log_local_list_cache_data_transfer(
    peer: tuple[Station, Recorder, Any],
) -> None:
    """L01 UpdateFirmware walks its statuses and reboots (reason FirmwareUpdate); N01
    GetLog uploads; D01/D02 local list; C11 ClearCache; P01 DataTransfer UnknownVendorId;
    an action we do not implement answers NotSupported."""
    _station, rec, point = peer
    log = await call(
        point,
        c201.GetLog(
            log={"remote_location": "https://example.com/up"},
            log_type="DiagnosticsLog",
            request_id=3,
        ),
    )
    assert log.status == "Accepted" and log.filename
    await rec.wait_count("LogStatusNotification", 2)
    assert [k["status"] for k in rec.of("LogStatusNotification")] == ["Uploading", "Uploaded"]
    sent = await call(
        point,
        c201.SendLocalList(
            version_number=4,
            update_type="Full",
            local_authorization_list=[{"id_token": TOKEN, "id_token_info": {"status": "Accepted"}}],
        ),
    )
    assert sent.status == "Accepted"
    assert (await call(point, c201.GetLocalListVersion())).version_number == 4
    assert (await call(point, c201.ClearCache())).status == "Accepted"
    assert (await call(point, c201.DataTransfer(vendor_id="acme"))).status == "UnknownVendorId"
    with pytest.raises(NotSupportedError):  # a Local Controller's message (L03)
        await call(point, c201.UnpublishFirmware(checksum="0" * 32))
    fw = await call(
        point,
        c201.UpdateFirmware(
            request_id=8,
            firmware={
                "location": "https://example.com/fw",
                "retrieve_date_time": datetime.now(UTC).isoformat(),
            },
        ),
    )
    assert fw.status == "Accepted"
    await rec.wait_count("FirmwareStatusNotification", 4)
    assert [k["status"] for k in rec.of("FirmwareStatusNotification")] == [
        "Downloading",
        "Downloaded",
        "Installing",
        "Installed",
    ]
    assert all(k["request_id"] == 8 for k in rec.of("FirmwareStatusNotification"))
    await rec.wait_count("BootNotification", 2)
    assert rec.of("BootNotification")[1]["reason"] == "FirmwareUpdate"


async def test_charging_state_changes_are_updated_events_e02(
    peer: tuple[Station, Recorder, Any],
) -> None:
    """E02: the EV stopping and resuming drawing sends Updated (ChargingStateChanged) with
    chargingState SuspendedEV, then Charging."""
    station, rec, _ = peer
    await station.start_transaction(1, "RFID-E")
    await rec.wait_for(lambda r: len(events(r)) >= 1)
    assert events(rec)[0]["transaction_info"]["charging_state"] == "Charging"
    await station.ev_suspend(1)
    await station.ev_resume(1)

    def changes(r: Recorder) -> list[str]:
        return [
            e["transaction_info"]["charging_state"]
            for e in events(r)
            if e["trigger_reason"] == "ChargingStateChanged"
        ]

    await rec.wait_for(lambda r: len(changes(r)) >= 2)
    assert changes(rec) == ["SuspendedEV", "Charging"]
    assert [e["seq_no"] for e in events(rec)] == list(range(len(events(rec))))


async def test_transaction_event_retried_until_success_e13_f3(store: StationStore) -> None:
    """E13.FR.01-03 (F3): a TransactionEvent answered CALLERROR is sent again after
    MessageAttemptInterval x n; success on the second attempt stops the retries, nothing is
    dropped, and the later events follow in order."""
    async with their_csms() as (port, rec):
        rec.fail_actions["TransactionEvent"] = 1
        cfg = StationConfig(
            station_id="EMU201-RETRY",
            csms_url=f"ws://127.0.0.1:{port}",
            ocpp_version="2.0.1",
            meter_values_interval=0,
            transaction_attempts=3,
            transaction_retry_interval=1,
        )
        async with running(cfg, store) as station:
            await online(station)
            await station.start_transaction(1, "RFID-E13")
            await station.stop_transaction(1)
            await station.wait_for_state(lambda s: s["queued"] == 0, 10)
            sent = events(rec)
            assert [e["event_type"] for e in sent] == ["Started", "Started", "Ended"]
            assert sent[0] == sent[1], "the same event, resent"
            times = rec.times_of("TransactionEvent")
            assert times[1] - times[0] >= 0.95
            assert await store.dropped(station.station_id) == []


async def test_cost_updated_i02_kept_with_the_transaction(
    peer: tuple[Station, Recorder, Any], store: StationStore
) -> None:
    """I02 CostUpdated: answered (the response is empty) and the running total kept with the
    transaction it names, persisted with the station's state; an id that is not running here
    is answered all the same and changes nothing."""
    station, rec, point = peer
    await station.start_transaction(1, "RFID-I")
    await rec.wait_for(lambda r: len(events(r)) >= 1)
    tx_id = events(rec)[0]["transaction_info"]["transaction_id"]
    await call(point, c201.CostUpdated(total_cost=3.27, transaction_id=tx_id))
    await call(point, c201.CostUpdated(total_cost=9.99, transaction_id="not-here"))
    port = station.behaviour.find_tx(tx_id)
    assert port is not None and port.tx is not None and port.tx.total_cost == 3.27
    saved = await store.load_state(SID)
    assert saved is not None and "3.27" in str(saved)
    assert "9.99" not in str(saved)
