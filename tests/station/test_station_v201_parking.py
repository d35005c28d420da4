"""The parking bay (an emulated bay sensor: ``park`` / ``leave_bay``) over real sockets, our
station against the independent CSMS (mobilityhouse ``ocpp``).

2.0.1: TxStartPoint ParkingBayOccupancy starts the transaction when the EV drives in (E01 S1,
E01.FR.01, triggerReason EVDetected: OCTT TC_E_12_CS) and TxStopPoint ParkingBayOccupancy
ends it when the EV drives out (E06 S1, E06.FR.01, triggerReason EVDeparted, stoppedReason
Local or Remote: OCTT TC_E_19_CS); the EV in the bay makes the connector Occupied (G01,
ConnectorStatusEnumType "not available for a new user"). 1.6: the bay is a fact only,
Preparing / Finishing (§4.9). The same actions through the scenario steps, the console and
the HTTP control API.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from ocpp.v201 import call as c201

from ocppkit.commands.station import Console
from ocppkit.commands.station_http import serve_control_api
from ocppkit.fleet.runner import FleetPlan, run_fleet
from ocppkit.fleet.scenario import parse_scenario
from ocppkit.fleet.stats import FleetStats
from ocppkit.fleet.template import FleetTemplate
from ocppkit.station.behaviour import ActionRefused
from ocppkit.station.station import StationConfig
from ocppkit.station.store import StationStore
from tests.station.peers import Recorder, drained, online, running, their_csms
from tests.station.test_station_v201_tx_points import (
    TOKEN,
    Peer,
    assert_seq_nos_continuous,
    assert_started_without_token,
    events,
    points,
    quiet_peer,
    settle,
    statuses,
    summary,
)

SID = "EMU201-PARK"


@pytest.fixture
async def peer(store: StationStore) -> AsyncIterator[Peer]:
    """A quiet peer (see :func:`quiet_peer`) as station ``SID``."""
    async with quiet_peer(store, SID) as station_peer:
        yield station_peer


async def until_statuses(rec: Recorder, evse: int, count: int) -> list[str]:
    await rec.wait_for(lambda r: len(statuses(r, evse)) >= count)
    return statuses(rec, evse)


async def test_parking_bay_occupancy_starts_at_the_ev_and_ends_when_it_leaves_e01_s1_e06_s1(
    peer: Peer,
) -> None:
    """TxStartPoint and TxStopPoint ParkingBayOccupancy: the EV driving in starts the
    transaction (Started EVDetected, no idToken, chargingState Idle) and the connector is
    Occupied; cable and id token are Updated events (EVConnected, then Charging); the unplug
    (StopTxOnEVSideDisconnect deauthorizes) leaves the EV in the bay, so the transaction
    goes on (Updated EVCommunicationLost, Idle); the EV cannot leave with its cable in; it
    leaving ends the transaction (Ended EVDeparted, stoppedReason Local, no idToken) and the
    connector is Available again."""
    station, rec, point = peer
    await points(point, "ParkingBayOccupancy", "ParkingBayOccupancy")
    await station.park(1)
    await settle(station, rec, 1)
    assert_started_without_token(rec)
    assert await until_statuses(rec, 1, 2) == ["Available", "Occupied"]
    snapshot = station.snapshot()["connectors"][0]
    assert snapshot["parked"] is True and snapshot["plugged"] is False
    assert snapshot["status"] == "Occupied" and snapshot["transaction"] is not None
    with pytest.raises(ActionRefused, match="already in the parking bay"):
        await station.park(1)
    await station.plug(1)
    with pytest.raises(ActionRefused, match="cable is still plugged in"):
        await station.leave_bay(1)
    assert await station.present_token("RFID-TX", 1) == "Accepted"
    await station.unplug(1)
    await settle(station, rec, 4)
    assert station.snapshot()["connectors"][0]["transaction"] is not None
    await station.leave_bay(1)
    await settle(station, rec, 5)
    assert summary(rec) == [
        ("Started", "EVDetected", None, "Idle"),
        ("Updated", "CablePluggedIn", None, "EVConnected"),
        ("Updated", "Authorized", None, "Charging"),
        ("Updated", "EVCommunicationLost", None, "Idle"),
        ("Ended", "EVDeparted", "Local", "Idle"),
    ]
    assert events(rec)[2]["id_token"] == TOKEN
    assert "id_token" not in events(rec)[4]
    assert_seq_nos_continuous(rec)
    assert await until_statuses(rec, 1, 3) == ["Available", "Occupied", "Available"]
    snapshot = station.snapshot()["connectors"][0]
    assert snapshot["parked"] is False and snapshot["transaction"] is None
    with pytest.raises(ActionRefused, match="no EV is in the parking bay"):
        await station.leave_bay(1)


async def test_ev_leaving_after_a_remote_stop_reports_remote_tc_e_19(peer: Peer) -> None:
    """OCTT TC_E_19_CS: when a RequestStopTransaction ended the authorization before (the
    transaction went on: TxStopPoint has no Authorized), the Ended at the EV's departure
    carries stoppedReason Remote (ReasonEnumType has no EVDeparted; the trigger says it)."""
    station, rec, point = peer
    await points(point, "ParkingBayOccupancy", "ParkingBayOccupancy")
    await station.park(2)
    assert await station.present_token("RFID-TX", 2) == "Accepted"
    await settle(station, rec, 2)
    tx_id = events(rec)[0]["transaction_info"]["transaction_id"]
    stop = await point.call(c201.RequestStopTransaction(transaction_id=tx_id), suppress=False)
    assert stop.status == "Accepted"
    await settle(station, rec, 3)
    assert station.snapshot()["connectors"][1]["transaction"] is not None
    await station.leave_bay(2)
    await settle(station, rec, 4)
    assert summary(rec) == [
        ("Started", "EVDetected", None, "Idle"),
        ("Updated", "Authorized", None, "Idle"),
        ("Updated", "RemoteStop", None, "Idle"),
        ("Ended", "EVDeparted", "Remote", "Idle"),
    ]
    assert_seq_nos_continuous(rec)


async def test_parking_reported_in_a_transaction_its_id_token_started_e03(peer: Peer) -> None:
    """TxStartPoint Authorized, TxStopPoint EVConnected, Authorized: the id token started the
    transaction; the EV arriving and leaving the bay (no cable) are Updated EVDetected /
    EVDeparted, the transaction goes on (its authorization is still there); the same id
    token again ends it (Local)."""
    station, rec, point = peer
    await points(point, "Authorized", "EVConnected,Authorized")
    assert await station.present_token("RFID-TX", 1) == "Accepted"
    await station.park(1)
    await station.leave_bay(1)
    await settle(station, rec, 3)
    assert station.snapshot()["connectors"][0]["transaction"] is not None
    assert await station.present_token("RFID-TX", 1) == "Accepted"
    await settle(station, rec, 4)
    assert summary(rec) == [
        ("Started", "Authorized", None, "Idle"),
        ("Updated", "EVDetected", None, "Idle"),
        ("Updated", "EVDeparted", None, "Idle"),
        ("Ended", "StopAuthorized", "Local", "Idle"),
    ]
    assert_seq_nos_continuous(rec)
    assert await until_statuses(rec, 1, 3) == ["Available", "Occupied", "Available"]


async def test_parking_alone_starts_nothing_with_the_default_points_e01_s5(peer: Peer) -> None:
    """The defaults (TxStartPoint PowerPathClosed, TxStopPoint EVConnected, Authorized):
    the EV in the bay occupies the connector but starts nothing, nor does its id token
    without the cable; the cable closes the path (Started CablePluggedIn); the unplug ends the
    transaction (EVDisconnected) while the EV stays in the bay (still Occupied); it leaving
    sends no TransactionEvent and frees the connector."""
    station, rec, _ = peer
    await station.park(1)
    assert await until_statuses(rec, 1, 2) == ["Available", "Occupied"]
    assert await station.present_token("RFID-TX", 1) == "Accepted"
    await drained(station)
    assert events(rec) == []
    await station.plug(1)
    await station.unplug(1)
    await settle(station, rec, 2)
    assert summary(rec) == [
        ("Started", "CablePluggedIn", None, "Charging"),
        ("Ended", "EVCommunicationLost", "EVDisconnected", "EVConnected"),
    ]
    assert station.snapshot()["connectors"][0]["status"] == "Occupied"
    await station.leave_bay(1)
    assert await until_statuses(rec, 1, 3) == ["Available", "Occupied", "Available"]
    await drained(station)
    assert len(events(rec)) == 2


async def test_parking_bay_on_1_6_is_a_fact_preparing_finishing_4_9(store: StationStore) -> None:
    """1.6 §4.9: an EV in the bay is Preparing ("a vehicle occupies the parking bay") and
    starts no transaction; after a session the connector is Finishing until "the vehicle has
    left the parking bay", the cable already out; then Available."""
    async with their_csms() as (port, rec):
        cfg = StationConfig(
            station_id="EMU16-PARK",
            csms_url=f"ws://127.0.0.1:{port}/ocpp",
            ocpp_version="1.6",
            meter_values_interval=0,
        )
        async with running(cfg, store) as station:
            await online(station)
            await rec.wait_count("StatusNotification", 2)

            def seen() -> list[str]:
                return [k["status"] for k in rec.of("StatusNotification") if k["connector_id"]]

            await station.park(1)
            await rec.wait_for(lambda r: len(seen()) >= 2)
            await station.start_transaction(1, "TAG-16")
            await station.stop_transaction(1, "Local")
            await station.unplug(1)
            await drained(station)
            assert station.snapshot()["connectors"][0]["status"] == "Finishing"
            await station.leave_bay(1)
            await rec.wait_for(lambda r: seen()[-1:] == ["Available"])
    assert seen() == [
        "Available",
        "Preparing",
        "SuspendedEV",
        "Charging",
        "Finishing",
        "Available",
    ]
    assert len(rec.of("StartTransaction")) == 1, "only the cable and the id tag started one"
    assert rec.of("StopTransaction")[0]["reason"] == "Local"


async def test_park_and_leave_bay_scenario_steps(store: StationStore) -> None:
    """The scenario steps ``park`` / ``leave_bay`` drive a real station (as ``plug`` /
    ``unplug`` do): Occupied with the EV in the bay, ``leave_bay`` fails while the cable is
    in, Available once it left."""
    step: list[dict[str, Any]] = [
        {"do": "connect"},
        {"do": "boot", "expect": {"status": "Accepted"}},
        {"do": "wait_status", "status": "Available"},
        {"do": "park"},
        {"do": "wait_status", "status": "Occupied", "timeout": 5},
        {"do": "check", "expect": {"connectors.0.parked": True, "connectors.0.plugged": False}},
        {"do": "park", "expect_error": "*"},
        {"do": "plug", "connector": 1},
        {"do": "leave_bay", "connector": 1, "expect_error": "*"},
        {"do": "unplug"},
        {"do": "leave_bay"},
        {"do": "wait_status", "status": "Available", "timeout": 5},
        {"do": "check", "expect": {"connectors.0.parked": False}},
    ]
    scenario = parse_scenario(
        {"name": "parking bay", "station": {"ocpp_version": "2.0.1"}, "step": step}
    )
    async with their_csms() as (port, _):
        plan = FleetPlan.from_template(
            FleetTemplate(), 1, f"ws://127.0.0.1:{port}/ocpp", scenario=scenario, duration=60
        )
        outcome = await run_fleet(plan, FleetStats())
    (result,) = outcome.scenario_results
    assert result.passed, result.to_dict()
    assert [s.status for s in result.steps] == ["passed"] * len(step)


async def test_park_and_leave_from_the_console_and_the_http_api(peer: Peer) -> None:
    """The console's ``park N`` / ``leave_bay N`` and the control API's ``POST /park`` /
    ``/leave_bay`` (as ``plug`` / ``unplug``; the scenario step has the same name): a refused
    action is one error line, or 409 with the reason. The old name ``leave`` still works in
    both, and only ``/leave_bay`` is in the OpenAPI schema."""
    station, rec, _ = peer
    lines: list[str] = []
    console = Console(station, lines.append)
    for line in ("park 2", "park 2", "plug 2", "leave_bay 2", "unplug 2", "leave_bay 2", "leave 2"):
        assert await console.execute(line)
    assert lines == [
        "parked",
        "error: an EV is already in the parking bay of connector 2",
        "plugged",
        "error: BAY_VACATED refused: a cable is still plugged in (the EV is in the bay)",
        "unplugged",
        "left the bay",
        "error: no EV is in the parking bay of connector 2",
    ]
    server = await serve_control_api(station, 0)
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.port}") as client:
            parked = await client.post("/park", params={"connector": 1})
            assert parked.status_code == 200, parked.text
            assert parked.json()["station"]["connectors"][0]["parked"] is True
            again = await client.post("/park", params={"connector": 1})
            assert again.status_code == 409
            assert "already in the parking bay" in again.json()["detail"]
            left = await client.post("/leave_bay", params={"connector": 1})
            assert left.status_code == 200, left.text
            assert left.json()["station"]["connectors"][0]["parked"] is False
            assert (await client.post("/leave_bay")).status_code == 409
            assert (await client.post("/park", params={"connector": 1})).status_code == 200
            old_name = await client.post("/leave", params={"connector": 1})
            assert old_name.status_code == 200, old_name.text
            assert old_name.json()["station"]["connectors"][0]["parked"] is False
            paths = (await client.get("/openapi.json")).json()["paths"]
            assert "/leave_bay" in paths and "/leave" not in paths
    finally:
        await server.stop()
    assert await until_statuses(rec, 1, 5) == [
        "Available",
        "Occupied",
        "Available",
        "Occupied",
        "Available",
    ]
