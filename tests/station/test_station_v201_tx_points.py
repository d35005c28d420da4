"""OCPP 2.0.1 TxStartPoint / TxStopPoint (E01-E07) and single-EVSE Reset (B11/B12), our
station against the independent CSMS (mobilityhouse ``ocpp``) over real sockets.

Each test sets the points through SetVariables on the wire, drives the emulated EV and
driver, and checks the exact TransactionEvent sequence the CSMS received: eventType,
triggerReason, stoppedReason, chargingState, and seqNo continuous per transaction
(E01.FR.07). No periodic or clock-aligned samples are configured, so every event is one the
points call for.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest
from ocpp.v201 import call as c201

from ocppkit.station.behaviour import ActionRefused
from ocppkit.station.station import Station
from ocppkit.station.store import StationStore
from tests.station.peers import Recorder, drained, with_their_csms

SID = "EMU201-TXP"
TOKEN = {"id_token": "RFID-TX", "type": "ISO14443"}

Peer = tuple[Station, Recorder, Any]


@contextlib.asynccontextmanager
async def quiet_peer(store: StationStore, station_id: str) -> AsyncIterator[Peer]:
    """Two EVSEs, no sampled or aligned meter values, online with both statuses sent."""
    async with with_their_csms(
        store, station_id, "2.0.1", statuses=2, meter_values_interval=0, clock_aligned_interval=0
    ) as station_peer:
        yield station_peer


@pytest.fixture
async def peer(store: StationStore) -> AsyncIterator[Peer]:
    """A quiet peer (see :func:`quiet_peer`) as station ``SID``."""
    async with quiet_peer(store, SID) as station_peer:
        yield station_peer


async def set_variables(point: Any, values: dict[tuple[str, str], str]) -> list[str]:
    """SetVariables on the wire; the attributeStatus of each item, in order."""
    reply = await point.call(
        c201.SetVariables(
            set_variable_data=[
                {
                    "component": {"name": component},
                    "variable": {"name": variable},
                    "attribute_value": value,
                }
                for (component, variable), value in values.items()
            ]
        ),
        suppress=False,
    )
    return [r["attribute_status"] for r in reply.set_variable_result]


async def points(point: Any, start: str, stop: str, **extra: str) -> None:
    values = {("TxCtrlr", "TxStartPoint"): start, ("TxCtrlr", "TxStopPoint"): stop}
    values.update({("TxCtrlr", name): value for name, value in extra.items()})
    assert await set_variables(point, values) == ["Accepted"] * len(values)


def events(rec: Recorder) -> list[dict[str, Any]]:
    return rec.of("TransactionEvent")


def summary(rec: Recorder) -> list[tuple[str, str, str | None, str | None]]:
    """(eventType, triggerReason, stoppedReason, chargingState) of every event."""
    return [
        (
            e["event_type"],
            e["trigger_reason"],
            e["transaction_info"].get("stopped_reason"),
            e["transaction_info"].get("charging_state"),
        )
        for e in events(rec)
    ]


def assert_seq_nos_continuous(rec: Recorder) -> None:
    """E01.FR.07 (edition 2): seqNo 0, 1, 2 ... within each transaction."""
    by_tx: dict[str, list[int]] = {}
    for e in events(rec):
        by_tx.setdefault(e["transaction_info"]["transaction_id"], []).append(e["seq_no"])
    assert by_tx, "no transaction events"
    for seq_nos in by_tx.values():
        assert seq_nos == list(range(len(seq_nos)))


async def settle(station: Station, rec: Recorder, count: int) -> None:
    """Until ``count`` TransactionEvents arrived and nothing is left in the queue."""
    await rec.wait_for(lambda r: len(events(r)) >= count)
    await drained(station)


def assert_started_without_token(rec: Recorder) -> None:
    """The first TransactionEvent is on EVSE 1, connector 1, and carries no idToken."""
    started = events(rec)[0]
    assert "id_token" not in started
    assert started["evse"] == {"id": 1, "connector_id": 1}


def statuses(rec: Recorder, evse: int) -> list[str]:
    return [k["connector_status"] for k in rec.of("StatusNotification") if k["evse_id"] == evse]


async def test_start_ev_connected_energy_waits_for_authorization_e01_s2_e02(peer: Peer) -> None:
    """E01 S2 / E02 (TxStartPoint EVConnected, TxStopPoint EVConnected): the cable starts
    the transaction (Started, CablePluggedIn, no idToken, chargingState EVConnected) and no
    energy flows until the id token: Updated Authorized with the idToken, Charging. The same
    token again ends only the authorization (E07's alternative: Updated StopAuthorized,
    EVConnected); the unplug ends the transaction (E06.FR.02: EVDisconnected)."""
    station, rec, point = peer
    await points(point, "EVConnected", "EVConnected")
    await station.plug(1)
    await settle(station, rec, 1)
    assert_started_without_token(rec)
    assert station.snapshot()["connectors"][0]["status"] == "Occupied"
    assert not station.behaviour.facts(1).ev_drawing
    with pytest.raises(ActionRefused):
        await station.ev_resume(1)  # power path open: the EV cannot draw
    assert await station.present_token("RFID-TX", 1) == "Accepted"
    await settle(station, rec, 2)
    assert events(rec)[1]["id_token"] == TOKEN
    assert station.behaviour.facts(1).ev_drawing
    assert await station.present_token("RFID-TX", 1) == "Accepted"
    await settle(station, rec, 3)
    assert station.snapshot()["connectors"][0]["transaction"] is not None
    assert not station.behaviour.facts(1).ev_drawing
    await station.unplug(1)
    await settle(station, rec, 4)
    assert summary(rec) == [
        ("Started", "CablePluggedIn", None, "EVConnected"),
        ("Updated", "Authorized", None, "Charging"),
        ("Updated", "StopAuthorized", None, "EVConnected"),
        ("Ended", "EVCommunicationLost", "EVDisconnected", "EVConnected"),
    ]
    assert_seq_nos_continuous(rec)
    assert station.snapshot()["connectors"][0]["transaction"] is None


async def test_start_ev_connected_stop_authorized_ends_at_deauthorization_e07(
    peer: Peer,
) -> None:
    """E01 S2 + E06/E07 (TxStopPoint Authorized): the same id token again ends the
    transaction while the cable stays in: Ended StopAuthorized, stoppedReason Local, with
    the idToken."""
    station, rec, point = peer
    await points(point, "EVConnected", "Authorized")
    await station.plug(2)
    await station.present_token("RFID-TX", 2)
    await station.present_token("RFID-TX", 2)
    await settle(station, rec, 3)
    assert summary(rec) == [
        ("Started", "CablePluggedIn", None, "EVConnected"),
        ("Updated", "Authorized", None, "Charging"),
        ("Ended", "StopAuthorized", "Local", "EVConnected"),
    ]
    assert events(rec)[2]["id_token"] == TOKEN
    assert_seq_nos_continuous(rec)
    assert station.snapshot()["connectors"][1]["plugged"] is True
    assert statuses(rec, 2)[-1] == "Occupied"


async def test_start_authorized_id_token_first_e01_s3_e03(peer: Peer) -> None:
    """E01 S3 / E03 (TxStartPoint Authorized, TxStopPoint Authorized): the id token starts
    the transaction before any cable (Started, Authorized, idToken, chargingState Idle); the
    cable is an Updated CablePluggedIn (Charging); with StopTxOnEVSideDisconnect the unplug
    deauthorizes and so ends it (Ended EVCommunicationLost, EVDisconnected)."""
    station, rec, point = peer
    await points(point, "Authorized", "Authorized")
    assert await station.present_token("RFID-TX", 1) == "Accepted"
    await settle(station, rec, 1)
    assert events(rec)[0]["id_token"] == TOKEN
    await station.plug(1)
    await settle(station, rec, 2)
    await station.unplug(1)
    await settle(station, rec, 3)
    assert summary(rec) == [
        ("Started", "Authorized", None, "Idle"),
        ("Updated", "CablePluggedIn", None, "Charging"),
        ("Ended", "EVCommunicationLost", "EVDisconnected", "EVConnected"),
    ]
    assert_seq_nos_continuous(rec)


async def test_stop_authorized_survives_unplug_without_stop_on_ev_side_disconnect_e10(
    peer: Peer,
) -> None:
    """TxStopPoint Authorized with StopTxOnEVSideDisconnect false: the unplug is an Updated
    EVCommunicationLost (chargingState Idle), the transaction goes on; the cable again is
    Updated CablePluggedIn (Charging); the id token again ends it (Local)."""
    station, rec, point = peer
    await points(point, "PowerPathClosed", "Authorized", StopTxOnEVSideDisconnect="false")
    await station.start_transaction(1, "RFID-TX")
    await station.unplug(1)
    await station.plug(1)
    await station.present_token("RFID-TX", 1)
    await settle(station, rec, 4)
    assert summary(rec) == [
        ("Started", "Authorized", None, "Charging"),
        ("Updated", "EVCommunicationLost", None, "Idle"),
        ("Updated", "CablePluggedIn", None, "Charging"),
        ("Ended", "StopAuthorized", "Local", "EVConnected"),
    ]
    assert_seq_nos_continuous(rec)


async def test_start_power_path_closed_default_points_e01_s5(peer: Peer) -> None:
    """E01 S5, the defaults (TxStartPoint PowerPathClosed, TxStopPoint EVConnected,
    Authorized): the cable alone starts nothing; the transaction starts with what closed
    the path (Authorized after the cable, CablePluggedIn after the token) and ends at the
    id token (Local) or the unplug (EVDisconnected)."""
    station, rec, _ = peer
    await station.plug(1)
    await drained(station)
    assert events(rec) == []
    await station.present_token("RFID-TX", 1)
    await station.present_token("RFID-TX", 1)
    await station.present_token("RFID-TX", 2)
    await drained(station)
    assert len(events(rec)) == 2, "the token alone starts nothing"
    await station.plug(2)
    await station.unplug(2)
    await settle(station, rec, 4)
    assert summary(rec) == [
        ("Started", "Authorized", None, "Charging"),
        ("Ended", "StopAuthorized", "Local", "EVConnected"),
        ("Started", "CablePluggedIn", None, "Charging"),
        ("Ended", "EVCommunicationLost", "EVDisconnected", "EVConnected"),
    ]
    assert_seq_nos_continuous(rec)


async def test_start_and_stop_energy_transfer_e01_s6_e06_s6(peer: Peer) -> None:
    """E01 S6 / E06 S6 (TxStartPoint and TxStopPoint EnergyTransfer): the transaction starts
    when the energy flows (Started, ChargingStateChanged, Charging) and ends when the EV
    stops drawing (Ended, ChargingStateChanged, StoppedByEV)."""
    station, rec, point = peer
    await points(point, "EnergyTransfer", "EnergyTransfer")
    await station.plug(1)
    await station.present_token("RFID-TX", 1)
    await settle(station, rec, 1)
    await station.ev_suspend(1)
    await settle(station, rec, 2)
    assert summary(rec) == [
        ("Started", "ChargingStateChanged", None, "Charging"),
        ("Ended", "ChargingStateChanged", "StoppedByEV", "EVConnected"),
    ]
    assert events(rec)[0]["id_token"] == TOKEN
    assert_seq_nos_continuous(rec)


async def test_stop_energy_transfer_ends_on_deauthorization_e06(peer: Peer) -> None:
    """TxStartPoint EVConnected, TxStopPoint EnergyTransfer: the transaction starts at the
    cable; the id token closes the power path (Updated Authorized, Charging); the token
    again stops the energy and so ends the transaction (Ended StopAuthorized, Local)."""
    station, rec, point = peer
    await points(point, "EVConnected", "EnergyTransfer")
    await station.plug(1)
    await station.present_token("RFID-TX", 1)
    await station.present_token("RFID-TX", 1)
    await settle(station, rec, 3)
    assert summary(rec) == [
        ("Started", "CablePluggedIn", None, "EVConnected"),
        ("Updated", "Authorized", None, "Charging"),
        ("Ended", "StopAuthorized", "Local", "EVConnected"),
    ]
    assert_seq_nos_continuous(rec)


async def test_first_start_point_wins_e01(peer: Peer) -> None:
    """E01: with TxStartPoint "EVConnected,Authorized" the first that happens starts the
    transaction: the token on EVSE 1 (Started Authorized, the cable then Updated), the cable
    on EVSE 2 (Started CablePluggedIn, the token then Updated Authorized)."""
    station, rec, point = peer
    await points(point, "EVConnected,Authorized", "EVConnected,Authorized")
    await station.present_token("RFID-TX", 1)
    await station.plug(1)
    await settle(station, rec, 2)
    await station.plug(2)
    await station.present_token("RFID-2", 2)
    await settle(station, rec, 4)
    assert summary(rec) == [
        ("Started", "Authorized", None, "Idle"),
        ("Updated", "CablePluggedIn", None, "Charging"),
        ("Started", "CablePluggedIn", None, "EVConnected"),
        ("Updated", "Authorized", None, "Charging"),
    ]
    assert_seq_nos_continuous(rec)


async def test_no_cable_within_ev_connection_timeout_ends_e03_fr_05(peer: Peer) -> None:
    """E03.FR.05 / C01.FR.26: TxStartPoint Authorized, no cable within EVConnectionTimeOut:
    Ended with triggerReason EVConnectTimeout, stoppedReason Timeout."""
    station, rec, point = peer
    await points(point, "Authorized", "EVConnected,Authorized", EVConnectionTimeOut="1")
    await station.present_token("RFID-TX", 1)
    await settle(station, rec, 2)
    assert summary(rec) == [
        ("Started", "Authorized", None, "Idle"),
        ("Ended", "EVConnectTimeout", "Timeout", "Idle"),
    ]
    assert_seq_nos_continuous(rec)
    assert station.snapshot()["connectors"][0]["transaction"] is None


async def test_remote_start_authorizes_a_cable_started_transaction_f02(peer: Peer) -> None:
    """F02 with TxStartPoint EVConnected: RequestStartTransaction on the EVSE whose
    transaction the cable started is Accepted and authorizes it: Updated RemoteStart with
    the remoteStartId and the idToken; RequestStopTransaction then ends it (Remote)."""
    station, rec, point = peer
    await points(point, "EVConnected", "EVConnected,Authorized")
    await station.plug(1)
    await settle(station, rec, 1)
    reply = await point.call(
        c201.RequestStartTransaction(id_token=TOKEN, remote_start_id=7, evse_id=1),
        suppress=False,
    )
    assert reply.status == "Accepted"
    await settle(station, rec, 2)
    updated = events(rec)[1]
    assert updated["transaction_info"]["remote_start_id"] == 7
    assert updated["id_token"] == TOKEN
    tx_id = updated["transaction_info"]["transaction_id"]
    stop = await point.call(c201.RequestStopTransaction(transaction_id=tx_id), suppress=False)
    assert stop.status == "Accepted"
    await settle(station, rec, 3)
    assert summary(rec) == [
        ("Started", "CablePluggedIn", None, "EVConnected"),
        ("Updated", "RemoteStart", None, "Charging"),
        ("Ended", "RemoteStop", "Remote", "EVConnected"),
    ]
    assert_seq_nos_continuous(rec)


async def test_set_variables_validates_tx_points_b05(peer: Peer) -> None:
    """B05 SetVariables: TxStartPoint / TxStopPoint take a list of the valuesList members
    (ParkingBayOccupancy, EVConnected, Authorized, DataSigned, PowerPathClosed,
    EnergyTransfer), at least one, no repeats; anything else is Rejected and the value
    stays; an accepted one is what GetVariables reads back."""
    _, _, point = peer
    bad = ["Foo", "EVConnected,Foo", "", "EVConnected,EVConnected", "evconnected"]
    for value in bad:
        assert await set_variables(point, {("TxCtrlr", "TxStartPoint"): value}) == ["Rejected"]
        assert await set_variables(point, {("TxCtrlr", "TxStopPoint"): value}) == ["Rejected"]
    assert await set_variables(
        point,
        {
            ("TxCtrlr", "TxStartPoint"): "ParkingBayOccupancy,EVConnected,Authorized,DataSigned",
            ("TxCtrlr", "TxStopPoint"): "EnergyTransfer",
        },
    ) == ["Accepted", "Accepted"]
    got = await point.call(
        c201.GetVariables(
            get_variable_data=[
                {"component": {"name": "TxCtrlr"}, "variable": {"name": "TxStartPoint"}},
                {"component": {"name": "TxCtrlr"}, "variable": {"name": "TxStopPoint"}},
            ]
        ),
        suppress=False,
    )
    values = [r["attribute_value"] for r in got.get_variable_result]
    assert values == ["ParkingBayOccupancy,EVConnected,Authorized,DataSigned", "EnergyTransfer"]


async def test_parking_bay_occupancy_start_is_ev_detected_e01_s1(peer: Peer) -> None:
    """E01 S1 (TxStartPoint ParkingBayOccupancy): the EV arriving (the emulator has no bay
    sensor: its cable) starts the transaction with triggerReason EVDetected."""
    station, rec, point = peer
    await points(point, "ParkingBayOccupancy", "ParkingBayOccupancy")
    await station.plug(1)
    await station.unplug(1)
    await settle(station, rec, 2)
    assert [s[:3] for s in summary(rec)] == [
        ("Started", "EVDetected", None),
        ("Ended", "EVCommunicationLost", "EVDisconnected"),
    ]


async def test_reset_idle_evse_b11_fr_08(peer: Peer) -> None:
    """B11 with evseId, no transaction: Accepted; the EVSE goes Unavailable then back
    (B11.FR.08) and the station does not reboot; the other EVSE is untouched; an unknown
    EVSE is Rejected."""
    station, rec, point = peer
    unknown = await point.call(c201.Reset(type="Immediate", evse_id=9), suppress=False)
    assert unknown.status == "Rejected"
    reply = await point.call(c201.Reset(type="OnIdle", evse_id=2), suppress=False)
    assert reply.status == "Accepted"
    await rec.wait_for(lambda r: statuses(r, 2)[-1] == "Available" and len(statuses(r, 2)) >= 3)
    assert statuses(rec, 2) == ["Available", "Unavailable", "Available"]
    assert statuses(rec, 1) == ["Available"]
    assert len(rec.of("BootNotification")) == 1
    assert station.snapshot()["boots"] == 1


async def test_reset_evse_on_idle_waits_for_the_transaction_b12_fr_07(peer: Peer) -> None:
    """B12.FR.01 / B12.FR.07: OnIdle with evseId while a transaction runs there: Scheduled;
    the transaction goes on and ends normally (Local); then the EVSE resets (Unavailable,
    back to Occupied: the cable is still in); no reboot."""
    station, rec, point = peer
    await station.start_transaction(1, "RFID-TX")
    await settle(station, rec, 1)
    reply = await point.call(c201.Reset(type="OnIdle", evse_id=1), suppress=False)
    assert reply.status == "Scheduled"
    await drained(station)
    assert "Unavailable" not in statuses(rec, 1)
    assert station.snapshot()["connectors"][0]["transaction"] is not None
    await station.present_token("RFID-TX", 1)
    await rec.wait_for(lambda r: statuses(r, 1)[-2:] == ["Unavailable", "Occupied"])
    assert summary(rec) == [
        ("Started", "Authorized", None, "Charging"),
        ("Ended", "StopAuthorized", "Local", "EVConnected"),
    ]
    assert len(rec.of("BootNotification")) == 1


async def test_reset_evse_immediate_ends_the_transaction_b12_fr_08(peer: Peer) -> None:
    """B12.FR.08: Immediate with evseId while a transaction runs there: Accepted; Ended with
    triggerReason ResetCommand and stoppedReason ImmediateReset; then the EVSE resets
    (Unavailable, back to Occupied); the transaction on the other EVSE goes on; no reboot."""
    station, rec, point = peer
    await station.start_transaction(1, "RFID-TX")
    await station.start_transaction(2, "RFID-2")
    await settle(station, rec, 2)
    reply = await point.call(c201.Reset(type="Immediate", evse_id=1), suppress=False)
    assert reply.status == "Accepted"
    await rec.wait_for(lambda r: statuses(r, 1)[-2:] == ["Unavailable", "Occupied"])
    ended = [e for e in events(rec) if e["event_type"] == "Ended"]
    assert len(ended) == 1
    assert ended[0]["trigger_reason"] == "ResetCommand"
    assert ended[0]["transaction_info"]["stopped_reason"] == "ImmediateReset"
    assert (
        ended[0]["transaction_info"]["transaction_id"]
        == (events(rec)[0]["transaction_info"]["transaction_id"])
    )
    assert station.snapshot()["connectors"][1]["transaction"] is not None
    assert "Unavailable" not in statuses(rec, 2)
    assert len(rec.of("BootNotification")) == 1
    assert_seq_nos_continuous(rec)
