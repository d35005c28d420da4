"""OCPP 2.0.1 reservations used (H03) and the connector status around them (G01), our station
against the independent CSMS (mobilityhouse ``ocpp``) over real sockets.

The scenarios are H03's as the errata (2025-01, "Improved use case scenario descriptions")
describe them per TxStartPoint: S1 #1 (Authorized, id token first: the reservation is
consumed, the connector turns Available, Occupied only when the cable is connected) and
S1 #2 (EVConnected, cable first: the transaction starts but the connector stays Reserved
until the holder's id token consumes the reservation). H03.FR.09: a matching id token
consumes the reservation, so it never expires afterwards (no ReservationStatusUpdate);
H03 remark: an id token that does not match is not authorized to charge.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from ocpp.v201 import call as c201

from ocppkit.station.station import Station
from ocppkit.station.store import StationStore
from tests.station.peers import Recorder, drained, with_their_csms

SID = "EMU201-RSV"
TOKEN = {"id_token": "RFID-HOLDER", "type": "ISO14443"}

Peer = tuple[Station, Recorder, Any]

#: How long the reservations of the expiry checks last; long enough to use them first.
EXPIRY_S = 2.0


@pytest.fixture
async def peer(store: StationStore) -> AsyncIterator[Peer]:
    """Two EVSEs, no sampled or aligned meter values, online with both statuses sent."""
    async with with_their_csms(
        store, SID, "2.0.1", statuses=2, meter_values_interval=0, clock_aligned_interval=0
    ) as station_peer:
        yield station_peer


async def tx_points(point: Any, start: str, stop: str) -> None:
    """TxCtrlr.TxStartPoint / TxStopPoint through SetVariables on the wire."""
    reply = await point.call(
        c201.SetVariables(
            set_variable_data=[
                {
                    "component": {"name": "TxCtrlr"},
                    "variable": {"name": name},
                    "attribute_value": value,
                }
                for name, value in (("TxStartPoint", start), ("TxStopPoint", stop))
            ]
        ),
        suppress=False,
    )
    assert [r["attribute_status"] for r in reply.set_variable_result] == ["Accepted"] * 2


async def reserve(
    point: Any, rec: Recorder, reservation_id: int, evse: int, seconds: float
) -> None:
    """ReserveNow for TOKEN on ``evse``, expiring in ``seconds``; Accepted, then Reserved."""
    expiry = (datetime.now(UTC) + timedelta(seconds=seconds)).isoformat()
    reply = await point.call(
        c201.ReserveNow(id=reservation_id, expiry_date_time=expiry, id_token=TOKEN, evse_id=evse),
        suppress=False,
    )
    assert reply.status == "Accepted"
    await rec.wait_for(lambda r: statuses(r, evse)[-1:] == ["Reserved"])


def events(rec: Recorder) -> list[dict[str, Any]]:
    return rec.of("TransactionEvent")


def statuses(rec: Recorder, evse: int) -> list[str]:
    return [k["connector_status"] for k in rec.of("StatusNotification") if k["evse_id"] == evse]


async def settle(station: Station, rec: Recorder, count: int) -> None:
    """Until ``count`` TransactionEvents arrived and nothing is left in the queue."""
    await rec.wait_for(lambda r: len(events(r)) >= count)
    await drained(station)


async def test_token_first_transaction_leaves_the_connector_available_until_the_cable_g01(
    peer: Peer,
) -> None:
    """G01 / E03 (TxStartPoint Authorized): a transaction the id token started, with no cable
    yet, does not occupy the connector (ConnectorStatusEnumType Occupied: "not available for
    a new EV driver"; H03 S1: "Occupied when cable is connected"). Available until the cable
    goes in, then Occupied; Available again when the cable leaves and the transaction ends."""
    station, rec, point = peer
    await tx_points(point, "Authorized", "EVConnected,Authorized")
    assert await station.present_token("RFID-HOLDER", 1) == "Accepted"
    await settle(station, rec, 1)
    assert events(rec)[0]["event_type"] == "Started"
    assert events(rec)[0]["transaction_info"]["charging_state"] == "Idle"
    assert statuses(rec, 1) == ["Available"]
    assert station.snapshot()["connectors"][0]["status"] == "Available"
    await station.plug(1)
    await rec.wait_for(lambda r: statuses(r, 1) == ["Available", "Occupied"])
    await settle(station, rec, 2)
    assert events(rec)[1]["trigger_reason"] == "CablePluggedIn"
    await station.unplug(1)
    await settle(station, rec, 3)
    assert events(rec)[2]["event_type"] == "Ended"
    await rec.wait_for(lambda r: statuses(r, 1) == ["Available", "Occupied", "Available"])


async def test_reserved_token_first_consumes_the_reservation_h03_s1(peer: Peer) -> None:
    """H03 S1 #1 (TxStartPoint Authorized, id token first): the holder's id token consumes the
    reservation (H03.FR.09) and the connector turns Available (not Occupied: no cable); the
    Started event carries the reservationId; Occupied when the cable is connected; the
    reservation never expires afterwards (no ReservationStatusUpdate)."""
    station, rec, point = peer
    await tx_points(point, "Authorized", "EVConnected,Authorized")
    await reserve(point, rec, 7, 1, EXPIRY_S)
    assert await station.present_token("RFID-HOLDER", 1) == "Accepted"
    await settle(station, rec, 1)
    started = events(rec)[0]
    assert started["event_type"] == "Started" and started["reservation_id"] == 7
    assert started["id_token"] == TOKEN
    assert station.snapshot()["connectors"][0]["status"] == "Available"
    await rec.wait_for(lambda r: statuses(r, 1)[-1] == "Available")
    assert statuses(rec, 1) == ["Available", "Reserved", "Available"]
    await station.plug(1)
    await rec.wait_for(lambda r: statuses(r, 1)[-1] == "Occupied")
    await asyncio.sleep(EXPIRY_S + 1.0)
    assert rec.of("ReservationStatusUpdate") == []
    assert statuses(rec, 1) == ["Available", "Reserved", "Available", "Occupied"]


async def test_cable_first_on_a_reserved_evse_h03_s1_2(peer: Peer) -> None:
    """H03 S1 #2 (TxStartPoint EVConnected, cable first): the cable starts the transaction
    (Started CablePluggedIn, no reservationId: nothing consumed yet) but the connector stays
    Reserved. Another id token is not authorized to charge (H03 remark): "Invalid", no
    Authorize, no event, no energy. The holder's id token consumes the reservation
    (H03.FR.09): Occupied, Updated Authorized with the idToken and the reservationId (the
    reservation "that terminates as a result of this transaction"), energy flows; no
    ReservationStatusUpdate Expired later."""
    station, rec, point = peer
    await tx_points(point, "EVConnected", "EVConnected")
    await reserve(point, rec, 8, 1, EXPIRY_S)
    await station.plug(1)
    await settle(station, rec, 1)
    started = events(rec)[0]
    assert (started["event_type"], started["trigger_reason"]) == ("Started", "CablePluggedIn")
    assert started["transaction_info"]["charging_state"] == "EVConnected"
    assert "reservation_id" not in started and "id_token" not in started
    assert statuses(rec, 1) == ["Available", "Reserved"]
    assert await station.present_token("STRANGER", 1) == "Invalid"
    assert rec.of("Authorize") == []
    await drained(station)
    assert len(events(rec)) == 1
    assert statuses(rec, 1) == ["Available", "Reserved"]
    assert await station.present_token("RFID-HOLDER", 1) == "Accepted"
    await settle(station, rec, 2)
    updated = events(rec)[1]
    assert (updated["event_type"], updated["trigger_reason"]) == ("Updated", "Authorized")
    assert updated["reservation_id"] == 8 and updated["id_token"] == TOKEN
    assert updated["transaction_info"]["charging_state"] == "Charging"
    await rec.wait_for(lambda r: statuses(r, 1) == ["Available", "Reserved", "Occupied"])
    await asyncio.sleep(EXPIRY_S + 1.0)
    assert rec.of("ReservationStatusUpdate") == []
    await station.unplug(1)
    await settle(station, rec, 3)
    assert events(rec)[2]["event_type"] == "Ended"
    assert all("reservation_id" not in e for e in events(rec)[2:])
    assert [e["seq_no"] for e in events(rec)] == [0, 1, 2]


async def test_cable_first_reservation_expires_while_the_transaction_waits_h04(
    peer: Peer,
) -> None:
    """H04 with H03 S1 #2: the cable started a transaction on the reserved EVSE, the holder
    never came: the reservation expires (ReservationStatusUpdate Expired), the connector turns
    Occupied (the cable is in), and the transaction goes on waiting for any id token."""
    station, rec, point = peer
    await tx_points(point, "EVConnected", "EVConnected")
    await reserve(point, rec, 9, 2, 1.0)
    await station.plug(2)
    await settle(station, rec, 1)
    await rec.wait_count("ReservationStatusUpdate", 1, timeout=5)
    assert rec.of("ReservationStatusUpdate") == [
        {"reservation_id": 9, "reservation_update_status": "Expired"}
    ]
    await rec.wait_for(lambda r: statuses(r, 2) == ["Available", "Reserved", "Occupied"])
    assert await station.present_token("STRANGER", 2) == "Accepted"
    await settle(station, rec, 2)
    updated = events(rec)[1]
    assert updated["trigger_reason"] == "Authorized" and "reservation_id" not in updated


async def test_cable_first_default_points_reserved_evse_h03(peer: Peer) -> None:
    """H03 with the default points (TxStartPoint PowerPathClosed): a cable on the reserved
    EVSE starts nothing and keeps it Reserved; the holder's id token consumes the reservation
    (Occupied) and starts the transaction, whose Started carries the reservationId."""
    station, rec, point = peer
    await reserve(point, rec, 10, 1, 60)
    await station.plug(1)
    await drained(station)
    assert events(rec) == [] and statuses(rec, 1) == ["Available", "Reserved"]
    assert await station.present_token("STRANGER", 1) == "Invalid"
    assert await station.present_token("RFID-HOLDER", 1) == "Accepted"
    await settle(station, rec, 1)
    started = events(rec)[0]
    assert started["event_type"] == "Started" and started["reservation_id"] == 10
    await rec.wait_for(lambda r: statuses(r, 1) == ["Available", "Reserved", "Occupied"])
