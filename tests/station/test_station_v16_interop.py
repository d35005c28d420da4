"""OCPP 1.6 station runtime against an independent central system (mobilityhouse ``ocpp``),
over real sockets: the station's own messages and every CSMS-initiated message with its
side effect. Test names cite the 1.6 section they check.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from ocpp.v16 import call as c16

from ocppkit.station.authorization import AuthInfo
from ocppkit.station.station import Station, StationConfig
from ocppkit.station.store import StationStore
from tests.station.peers import Recorder, drained, online, running, their_csms, with_their_csms

SID = "EMU16"


@pytest.fixture
async def peer(store: StationStore) -> AsyncIterator[tuple[Station, Recorder, Any]]:
    """Their CSMS, our station online; (station, recorder, their ChargePoint for calls)."""
    async with with_their_csms(store, SID, "1.6", statuses=3) as peer:
        yield peer


def statuses(rec: Recorder, connector: int) -> list[str]:
    return [kw["status"] for kw in rec.of("StatusNotification") if kw["connector_id"] == connector]


async def call(point: Any, payload: Any) -> Any:
    return await point.call(payload, suppress=False)


async def test_boot_statuses_authorize_and_a_full_transaction(
    peer: tuple[Station, Recorder, Any],
) -> None:
    """§4.2 boot, errata 4.0 a status per connector incl. 0, §4.1 Authorize, §4.8 / §4.10
    start and stop (reason Local, transactionData), §4.7 sampled MeterValues."""
    station, rec, _ = peer
    (boot,) = rec.of("BootNotification")
    assert boot["charge_point_vendor"] == "ocppkit" and boot["charge_point_model"] == "Emulator"
    assert statuses(rec, 0) == ["Available"] and statuses(rec, 1) == ["Available"]
    assert await station.present_token("TAG-A") == "Accepted"
    assert rec.of("Authorize")[0]["id_tag"] == "TAG-A"
    await station.plug(1)
    await rec.wait_count("StartTransaction", 1)
    await rec.wait_for(lambda r: "Charging" in statuses(r, 1))
    order = [a for _, a, kw in rec.calls if a in ("StartTransaction", "StatusNotification")]
    assert order.index("StartTransaction") < len(order) - 1, "Charging follows the Start"
    await rec.wait_count("MeterValues", 2)
    mv = rec.of("MeterValues")[0]
    assert mv["transaction_id"] == 100 and mv["connector_id"] == 1
    await station.present_token("TAG-A")  # same token again: Local stop (§3.6)
    await rec.wait_count("StopTransaction", 1)
    (stop,) = rec.of("StopTransaction")
    assert stop["transaction_id"] == 100 and stop["reason"] == "Local"
    contexts = [v["sampled_value"][0]["context"] for v in stop["transaction_data"]]
    assert contexts == ["Transaction.Begin", "Transaction.End"]
    assert stop["meter_stop"] >= int(float(mv["meter_value"][0]["sampled_value"][0]["value"]))
    await rec.wait_for(lambda r: statuses(r, 1)[-1] == "Finishing")
    await station.unplug(1)
    await rec.wait_for(lambda r: statuses(r, 1)[-1] == "Available")


async def test_remote_start_and_stop_5_11_5_12(peer: tuple[Station, Recorder, Any]) -> None:
    """§5.11 RemoteStartTransaction starts a session (the driver plugs in); §5.12
    RemoteStopTransaction ends it with reason Remote; an unknown id is Rejected."""
    _station, rec, point = peer
    reply = await call(point, c16.RemoteStartTransaction(id_tag="REMOTE-1", connector_id=2))
    assert reply.status == "Accepted"
    await rec.wait_count("StartTransaction", 1)
    assert rec.of("StartTransaction")[0]["connector_id"] == 2
    assert (await call(point, c16.RemoteStopTransaction(transaction_id=999))).status == "Rejected"
    assert (await call(point, c16.RemoteStopTransaction(transaction_id=100))).status == "Accepted"
    await rec.wait_count("StopTransaction", 1)
    assert rec.of("StopTransaction")[0]["reason"] == "Remote"
    busy = await call(point, c16.RemoteStartTransaction(id_tag="X", connector_id=7))
    assert busy.status == "Rejected"


async def test_configuration_keys_5_3_5_8(peer: tuple[Station, Recorder, Any]) -> None:
    """§5.8 GetConfiguration (unknown keys listed), §5.3 ChangeConfiguration: Accepted and
    applied (heartbeats follow the new interval), NotSupported for an unknown key, Rejected
    for a read-only key or a measurand the meter cannot sample."""
    station, rec, point = peer
    got = await call(point, c16.GetConfiguration(key=["HeartbeatInterval", "NoSuchKey"]))
    assert got.unknown_key == ["NoSuchKey"]
    assert got.configuration_key[0]["key"] == "HeartbeatInterval"
    change = await call(point, c16.ChangeConfiguration(key="HeartbeatInterval", value="1"))
    assert change.status == "Accepted"
    await rec.wait_count("Heartbeat", 2, timeout=5)
    unknown = await call(point, c16.ChangeConfiguration(key="NoSuchKey", value="1"))
    assert unknown.status == "NotSupported"
    readonly = await call(point, c16.ChangeConfiguration(key="NumberOfConnectors", value="9"))
    assert readonly.status == "Rejected"
    sampled = await call(
        point, c16.ChangeConfiguration(key="MeterValuesSampledData", value="Temperature")
    )
    assert sampled.status == "Rejected"
    ok = await call(
        point,
        c16.ChangeConfiguration(
            key="MeterValuesSampledData", value="Energy.Active.Import.Register,Current.Import"
        ),
    )
    assert ok.status == "Accepted"
    await station.start_transaction(1, "TAG-C")
    await rec.wait_count("MeterValues", 1)
    measurands = {
        v["measurand"] for v in rec.of("MeterValues")[0]["meter_value"][0]["sampled_value"]
    }
    assert measurands == {"Energy.Active.Import.Register", "Current.Import"}


async def test_change_availability_is_scheduled_during_a_transaction_5_2(
    peer: tuple[Station, Recorder, Any],
) -> None:
    """§5.2: Inoperative during a transaction answers Scheduled and applies after it."""
    station, rec, point = peer
    await station.start_transaction(1, "TAG-AV")
    reply = await call(point, c16.ChangeAvailability(connector_id=1, type="Inoperative"))
    assert reply.status == "Scheduled"
    await station.stop_transaction(1)
    await station.unplug(1)
    await rec.wait_for(lambda r: statuses(r, 1)[-1] == "Unavailable")
    idle = await call(point, c16.ChangeAvailability(connector_id=2, type="Inoperative"))
    assert idle.status == "Accepted"
    await rec.wait_for(lambda r: statuses(r, 2)[-1] == "Unavailable")
    with pytest.raises(Exception, match="inoperative"):
        await station.start_transaction(2, "TAG-AV")


async def test_reservation_blocks_and_expires_5_13_5_1(peer: tuple[Station, Recorder, Any]) -> None:
    """§5.13 ReserveNow: Reserved; only the holder's id tag starts; §5.1 CancelReservation;
    an expired reservation frees the connector."""
    station, rec, point = peer
    expiry = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    reply = await call(
        point, c16.ReserveNow(connector_id=1, expiry_date=expiry, id_tag="HOLDER", reservation_id=7)
    )
    assert reply.status == "Accepted"
    await rec.wait_for(lambda r: statuses(r, 1)[-1] == "Reserved")
    assert await station.present_token("SOMEONE", 1) == "Invalid"
    again = await call(
        point, c16.ReserveNow(connector_id=0, expiry_date=expiry, id_tag="H", reservation_id=8)
    )
    assert again.status == "Rejected"  # ReserveConnectorZeroSupported is false
    assert (await call(point, c16.CancelReservation(reservation_id=99))).status == "Rejected"
    assert (await call(point, c16.CancelReservation(reservation_id=7))).status == "Accepted"
    await rec.wait_for(lambda r: statuses(r, 1)[-1] == "Available")
    soon = (datetime.now(UTC) + timedelta(seconds=1)).isoformat()
    await call(
        point, c16.ReserveNow(connector_id=2, expiry_date=soon, id_tag="H", reservation_id=9)
    )
    await rec.wait_for(lambda r: statuses(r, 2)[-1] == "Reserved")
    await rec.wait_for(lambda r: statuses(r, 2)[-1] == "Available", timeout=5)
    await call(
        point, c16.ReserveNow(connector_id=1, expiry_date=expiry, id_tag="OWNER", reservation_id=10)
    )
    await station.plug(1)
    assert await station.present_token("OWNER", 1) == "Accepted"
    await rec.wait_count("StartTransaction", 1)
    assert rec.of("StartTransaction")[0]["reservation_id"] == 10


async def test_charging_profile_limits_the_simulated_power_5_16_5_7(
    peer: tuple[Station, Recorder, Any],
) -> None:
    """§5.16 SetChargingProfile (TxProfile 10 A) caps the power the meter reports; §5.7
    GetCompositeSchedule reports it; §5.5 ClearChargingProfile lifts it."""
    station, rec, point = peer
    no_tx = {
        "charging_profile_id": 1,
        "stack_level": 0,
        "charging_profile_purpose": "TxProfile",
        "charging_profile_kind": "Relative",
        "charging_schedule": {
            "charging_rate_unit": "A",
            "charging_schedule_period": [{"start_period": 0, "limit": 10}],
        },
    }
    rejected = await call(point, c16.SetChargingProfile(connector_id=1, cs_charging_profiles=no_tx))
    assert rejected.status == "Rejected"  # no transaction on the connector
    await station.start_transaction(1, "TAG-SC")
    await rec.wait_count("MeterValues", 1)
    full = station.snapshot()["connectors"][0]["power_w"]
    reply = await call(point, c16.SetChargingProfile(connector_id=1, cs_charging_profiles=no_tx))
    assert reply.status == "Accepted"
    limit_w = 10 * 230 * 3
    snap = await station.wait_for_state(
        lambda s: 0 < s["connectors"][0]["power_w"] <= limit_w * 1.02, 5
    )
    assert snap["connectors"][0]["power_w"] < full
    schedule = await call(point, c16.GetCompositeSchedule(connector_id=1, duration=600))
    assert schedule.status == "Accepted"
    assert schedule.charging_schedule["charging_schedule_period"][0]["limit"] == 10
    cleared = await call(point, c16.ClearChargingProfile(id=1))
    assert cleared.status == "Accepted"
    assert (await call(point, c16.ClearChargingProfile(id=1))).status == "Unknown"


async def test_trigger_message_sends_the_message_after_the_conf_5_17(
    peer: tuple[Station, Recorder, Any],
) -> None:
    """§5.17: Accepted, then the requested message; an unknown connector is Rejected."""
    _, rec, point = peer
    for message, action in [
        ("StatusNotification", "StatusNotification"),
        ("Heartbeat", "Heartbeat"),
        ("MeterValues", "MeterValues"),
        ("FirmwareStatusNotification", "FirmwareStatusNotification"),
        ("DiagnosticsStatusNotification", "DiagnosticsStatusNotification"),
        ("BootNotification", "BootNotification"),
    ]:
        before = len(rec.of(action))
        reply = await call(point, c16.TriggerMessage(requested_message=message, connector_id=1))
        assert reply.status == "Accepted"
        await rec.wait_count(action, before + 1)
    bad = await call(point, c16.TriggerMessage(requested_message="Heartbeat", connector_id=5))
    assert bad.status == "Rejected"


async def test_soft_reset_stops_the_transaction_and_boots_again_5_14(
    peer: tuple[Station, Recorder, Any],
) -> None:
    """§5.14 Reset Soft: StopTransaction with reason SoftReset, then a new connection and
    BootNotification."""
    station, rec, point = peer
    await station.start_transaction(1, "TAG-R")
    await rec.wait_count("StartTransaction", 1)
    assert (await call(point, c16.Reset(type="Soft"))).status == "Accepted"
    await rec.wait_count("StopTransaction", 1)
    assert rec.of("StopTransaction")[0]["reason"] == "SoftReset"
    await rec.wait_count("BootNotification", 2)
    await station.wait_for_state(lambda s: s["online"] and s["boots"] == 2, 10)


async def test_unlock_connector_ends_the_transaction_5_18(
    peer: tuple[Station, Recorder, Any],
) -> None:
    """§5.18: Unlocked; a running transaction stops with reason UnlockCommand."""
    station, rec, point = peer
    await station.start_transaction(2, "TAG-U")
    assert (await call(point, c16.UnlockConnector(connector_id=2))).status == "Unlocked"
    await rec.wait_count("StopTransaction", 1)
    assert rec.of("StopTransaction")[0]["reason"] == "UnlockCommand"
    assert (await call(point, c16.UnlockConnector(connector_id=9))).status == "NotSupported"


async def test_firmware_update_and_diagnostics_walk_their_statuses_5_19_5_9(
    peer: tuple[Station, Recorder, Any],
) -> None:
    """§5.19: Downloading, Downloaded, Installing, Installed, then a reboot (new boot);
    §5.9 GetDiagnostics: a file name, Uploading, Uploaded."""
    _station, rec, point = peer
    diag = await call(point, c16.GetDiagnostics(location="ftp://example.com/diag"))
    assert diag.file_name.startswith("diagnostics-")
    await rec.wait_count("DiagnosticsStatusNotification", 2)
    assert [k["status"] for k in rec.of("DiagnosticsStatusNotification")] == [
        "Uploading",
        "Uploaded",
    ]
    await call(
        point,
        c16.UpdateFirmware(
            location="https://example.com/fw.bin", retrieve_date=datetime.now(UTC).isoformat()
        ),
    )
    await rec.wait_count("FirmwareStatusNotification", 4)
    assert [k["status"] for k in rec.of("FirmwareStatusNotification")] == [
        "Downloading",
        "Downloaded",
        "Installing",
        "Installed",
    ]
    await rec.wait_count("BootNotification", 2)


async def test_local_list_cache_data_transfer_and_unsupported_actions(
    peer: tuple[Station, Recorder, Any],
) -> None:
    """§5.15 SendLocalList / §5.10 GetLocalListVersion, §5.4 ClearCache, §5.6 DataTransfer
    (UnknownVendorId), and the Security extension's ExtendedTriggerMessage(Heartbeat):
    Accepted, then a Heartbeat."""
    station, rec, point = peer
    sent = await call(
        point,
        c16.SendLocalList(
            list_version=3,
            update_type="Full",
            local_authorization_list=[{"id_tag": "LISTED", "id_tag_info": {"status": "Accepted"}}],
        ),
    )
    assert sent.status == "Accepted"
    assert (await call(point, c16.GetLocalListVersion())).list_version == 3
    assert (await call(point, c16.ClearCache())).status == "Accepted"
    assert (await call(point, c16.DataTransfer(vendor_id="acme"))).status == "UnknownVendorId"
    beats = len(rec.of("Heartbeat"))
    trig = await call(point, c16.ExtendedTriggerMessage(requested_message="Heartbeat"))
    assert trig.status == "Accepted"
    await rec.wait_count("Heartbeat", beats + 1)
    # LocalPreAuthorize is off: a listed tag is still asked online, then accepted.
    assert await station.present_token("LISTED", 1) == "Accepted"


async def test_failed_start_is_retried_then_dropped_and_later_messages_use_minus_one(
    store: StationStore,
) -> None:
    """§3.7.1 (F2): a StartTransaction answered CALLERROR is sent TransactionMessageAttempts
    times, the gaps growing by TransactionMessageRetryInterval x n, then dropped; errata
    3.18 (F5): the later MeterValues and StopTransaction carry transactionId -1."""
    async with their_csms() as (port, rec):
        rec.fail_actions["StartTransaction"] = 100
        cfg = StationConfig(
            station_id="EMU-RETRY",
            csms_url=f"ws://127.0.0.1:{port}",
            meter_values_interval=1,
            transaction_attempts=3,
            transaction_retry_interval=1,
        )
        async with running(cfg, store) as station:
            await online(station)
            await station.start_transaction(1, "TAG-F")
            await rec.wait_count("MeterValues", 1, timeout=10)
            await station.stop_transaction(1)
            await drained(station)
            times = rec.times_of("StartTransaction")
            assert len(times) == 3, "exactly TransactionMessageAttempts transmissions"
            gaps = [b - a for a, b in itertools.pairwise(times)]
            assert gaps[0] >= 0.95 and gaps[1] >= 1.95, gaps  # interval x 1, interval x 2
            dropped = await store.dropped(station.station_id)
            assert [d.action for d in dropped] == ["StartTransaction"]
            assert all(kw["transaction_id"] == -1 for kw in rec.of("MeterValues"))
            assert rec.of("StopTransaction")[0]["transaction_id"] == -1


async def test_clock_aligned_values_and_stop_on_invalid_id_9_1(store: StationStore) -> None:
    """§9.1 ClockAlignedDataInterval: MeterValues with context Sample.Clock at the aligned
    times; StopTransactionOnInvalidId: a StartTransaction.conf that is not Accepted ends the
    transaction with reason DeAuthorized."""
    async with their_csms() as (port, rec):
        rec.blocked.add("BLOCKED")
        cfg = StationConfig(
            station_id="EMU-ALIGN",
            csms_url=f"ws://127.0.0.1:{port}",
            meter_values_interval=0,
            clock_aligned_interval=1,
            transaction_attempts=1,
        )
        async with running(cfg, store) as station:
            await online(station)
            await station.plug(1)
            # the local list says Accepted and LocalPreAuthorize skips Authorize (§3.5), so only
            # the StartTransaction.conf tells the truth
            station.behaviour.auth.local_list.update(
                1, True, [(("", "blocked"), AuthInfo("Accepted"))]
            )
            station.behaviour.config.change_configuration("LocalPreAuthorize", "true")  # type: ignore[attr-defined]
            assert await station.present_token("BLOCKED", 1) == "Accepted"
            await rec.wait_count("StopTransaction", 1)
            assert rec.of("StopTransaction")[0]["reason"] == "DeAuthorized"
            await station.unplug(1)
            await station.start_transaction(1, "GOOD")
            await rec.wait_count("MeterValues", 2, timeout=5)
            contexts = {
                s["context"]
                for mv in rec.of("MeterValues")
                for s in mv["meter_value"][0]["sampled_value"]
            }
            assert contexts == {"Sample.Clock"}


async def test_connection_timeout_ends_an_authorization_without_cable_9_1(
    peer: tuple[Station, Recorder, Any],
) -> None:
    """§9.1 ConnectionTimeOut: an accepted id tag with no cable plugged in within the time
    is forgotten (Preparing -> Available); no transaction starts."""
    station, rec, point = peer
    reply = await call(point, c16.ChangeConfiguration(key="ConnectionTimeOut", value="1"))
    assert reply.status == "Accepted"
    assert await station.present_token("TAG-T", 2) == "Accepted"
    await rec.wait_for(lambda r: statuses(r, 2)[-1] == "Preparing")
    await rec.wait_for(lambda r: statuses(r, 2)[-1] == "Available", timeout=5)
    await station.plug(2)
    await asyncio.sleep(0.3)
    assert rec.of("StartTransaction") == []


async def test_reservation_with_parent_id_tag_admits_its_group_5_13(
    peer: tuple[Station, Recorder, Any],
) -> None:
    """§5.13: a reservation with a parentIdTag may be used by any id tag whose
    Authorize.conf names that parent; another tag is refused."""
    station, rec, point = peer
    rec.parents["MEMBER"] = "FLEET"
    expiry = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    reply = await call(
        point,
        c16.ReserveNow(
            connector_id=1,
            expiry_date=expiry,
            id_tag="HOLDER",
            reservation_id=21,
            parent_id_tag="FLEET",
        ),
    )
    assert reply.status == "Accepted"
    assert await station.present_token("STRANGER", 1) == "Invalid"
    assert await station.present_token("MEMBER", 1) == "Accepted"
    await station.plug(1)
    await rec.wait_count("StartTransaction", 1)
    start = rec.of("StartTransaction")[0]
    assert start["id_tag"] == "MEMBER" and start["reservation_id"] == 21
