"""OCPP 2.0.1 reservations used (H03) and the connector status around them (G01), our station
against the independent CSMS (mobilityhouse ``ocpp``) over real sockets.

The scenarios are H03's as the errata (2025-01, "Improved use case scenario descriptions")
describe them per TxStartPoint: S1 #1 (Authorized, id token first: the reservation is
consumed, the connector turns Available, Occupied only when the cable is connected) and
S1 #2 (EVConnected, cable first: the transaction starts but the connector stays Reserved
until the holder's id token consumes the reservation). H03.FR.09: a matching id token
consumes the reservation, so it never expires afterwards (no ReservationStatusUpdate);
H03 remark: an id token that does not match is not authorized to charge.

Reservations of an unspecified EVSE (ReserveNow without evseId, ``ReservationCtrlr.
NonEvseSpecific`` true: H01 S1/S3, H03 S3 of the errata): no EVSE is bound; the EVSEs that
are just enough for them are held, reported Reserved, and take only their holders' id
tokens; the holder uses the reservation at any EVSE that fits it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from ocpp.v201 import call as c201

from ocppkit.commands.station_http import serve_control_api
from ocppkit.station.device_model import VariableKey
from ocppkit.station.station import StationConfig
from ocppkit.station.store import StationStore
from tests.station.peers import Recorder, drained, online, running, their_csms
from tests.station.test_station_v201_tx_points import Peer, events, quiet_peer, settle, statuses

SID = "EMU201-RSV"
TOKEN = {"id_token": "RFID-HOLDER", "type": "ISO14443"}


#: How long the reservations of the expiry checks last; long enough to use them first.
EXPIRY_S = 2.0


@pytest.fixture
async def peer(store: StationStore) -> AsyncIterator[Peer]:
    """A quiet peer (see :func:`quiet_peer`) as station ``SID``."""
    async with quiet_peer(store, SID) as station_peer:
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


# --- reservations of an unspecified EVSE (H01 S1/S3, H03 S3; ReservationCtrlr.NonEvseSpecific)

SECOND = {"id_token": "RFID-SECOND", "type": "ISO14443"}


async def reserve_any(
    point: Any,
    reservation_id: int,
    seconds: float,
    token: dict[str, str] = TOKEN,
    **fields: Any,
) -> str:
    """ReserveNow without an evseId (or with the ``fields`` given): the answer's status."""
    expiry = (datetime.now(UTC) + timedelta(seconds=seconds)).isoformat()
    request = c201.ReserveNow(id=reservation_id, expiry_date_time=expiry, id_token=token, **fields)
    reply = await point.call(request, suppress=False)
    return str(reply.status)


async def set_variable(point: Any, component: str, name: str, value: str) -> str:
    """SetVariables of one variable: its attributeStatus."""
    data = {"component": {"name": component}, "variable": {"name": name}, "attribute_value": value}
    reply = await point.call(c201.SetVariables(set_variable_data=[data]), suppress=False)
    return str(reply.set_variable_result[0]["attribute_status"])


async def cancel(point: Any, reservation_id: int) -> str:
    reply = await point.call(c201.CancelReservation(reservation_id=reservation_id), suppress=False)
    return str(reply.status)


def both(rec: Recorder, expected: list[str]) -> bool:
    return statuses(rec, 1) == expected and statuses(rec, 2) == expected


async def test_unspecified_evse_held_when_the_free_evses_equal_the_reservations_h01_s1(
    peer: Peer,
) -> None:
    """H01 S1 with ``ReservationCtrlr.NonEvseSpecific`` true (read-only, H01.FR.18/19,
    secondary source): a ReserveNow without evseId is Accepted and binds no EVSE, so with two
    free EVSEs for one reservation both stay Available (OCTT TC_H_08); a second one makes the
    free EVSEs as many as the reservations and both go Reserved (TC_H_14, errata 2025-01
    introduction: "at least one EVSE remains available for the EV Driver"); a third one, and
    one for EVSE 1, find none to spare: Occupied (TC_H_09)."""
    station, rec, point = peer
    reply = await point.call(
        c201.GetVariables(
            get_variable_data=[
                {"component": {"name": "ReservationCtrlr"}, "variable": {"name": "NonEvseSpecific"}}
            ]
        ),
        suppress=False,
    )
    assert reply.get_variable_result[0]["attribute_value"] == "true"
    assert await set_variable(point, "ReservationCtrlr", "NonEvseSpecific", "false") == "Rejected"
    assert await reserve_any(point, 21, 60) == "Accepted"
    assert [c["reservation"] for c in station.snapshot()["connectors"]] == [None, None]
    assert await reserve_any(point, 22, 60, token=SECOND) == "Accepted"
    await rec.wait_for(lambda r: both(r, ["Available", "Reserved"]))
    assert await reserve_any(point, 23, 60) == "Occupied"
    assert await reserve_any(point, 24, 60, evse_id=1) == "Occupied"
    await drained(station)
    assert both(rec, ["Available", "Reserved"])


async def test_a_held_evse_takes_only_the_holders_token_which_uses_the_reservation_h03_s3(
    peer: Peer,
) -> None:
    """H03 S3 #1 (errata 2025-01; default TxStartPoint PowerPathClosed) with both EVSEs held
    for two reservations: another id token is "not authorized to charge" (H03 remark):
    Invalid, no Authorize. The holder's id token uses its reservation at EVSE 1 (H03.FR.09):
    Available (no cable yet, as H03 S1 #1), EVSE 2 stays Reserved for the other reservation,
    and the Started event carries the reservationId. Only the unused reservation expires
    (H04: EVSE 2 Available, then ReservationStatusUpdate Expired)."""
    station, rec, point = peer
    assert await reserve_any(point, 31, EXPIRY_S) == "Accepted"
    assert await reserve_any(point, 32, EXPIRY_S, token=SECOND) == "Accepted"
    await rec.wait_for(lambda r: both(r, ["Available", "Reserved"]))
    assert await station.present_token("STRANGER", 1) == "Invalid"
    assert rec.of("Authorize") == []
    assert await station.present_token("RFID-HOLDER", 1) == "Accepted"
    await rec.wait_for(lambda r: statuses(r, 1)[-1] == "Available")
    await station.plug(1)
    await settle(station, rec, 1)
    started = events(rec)[0]
    assert started["event_type"] == "Started" and started["reservation_id"] == 31
    assert started["id_token"] == TOKEN
    await rec.wait_count("ReservationStatusUpdate", 1, timeout=5)
    await asyncio.sleep(0.5)
    assert rec.of("ReservationStatusUpdate") == [
        {"reservation_id": 32, "reservation_update_status": "Expired"}
    ]
    await rec.wait_for(lambda r: statuses(r, 2) == ["Available", "Reserved", "Available"])
    assert statuses(rec, 1) == ["Available", "Reserved", "Available", "Occupied"]


async def test_cable_first_at_a_free_evse_then_the_holders_token_h03_s3_2(peer: Peer) -> None:
    """H03 S3 #2 (TxStartPoint EVConnected): the holder of a reservation of an unspecified
    EVSE plugs in at EVSE 1 while two are free: Occupied and a transaction starts (no
    reservationId yet); EVSE 2 is now the only free one and goes Reserved. The holder's id
    token matches the reservation: Updated Authorized with the reservationId, and EVSE 2 is
    released (Available, H02.FR.05 errata 2025-02: charging allowed on every EVSE not
    reserved explicitly). The used reservation never expires."""
    station, rec, point = peer
    await tx_points(point, "EVConnected", "EVConnected")
    assert await reserve_any(point, 33, EXPIRY_S) == "Accepted"
    await station.plug(1)
    await settle(station, rec, 1)
    started = events(rec)[0]
    assert started["trigger_reason"] == "CablePluggedIn" and "reservation_id" not in started
    await rec.wait_for(lambda r: statuses(r, 2) == ["Available", "Reserved"])
    assert statuses(rec, 1) == ["Available", "Occupied"]
    assert await station.present_token("STRANGER", 2) == "Invalid"
    assert await station.present_token("RFID-HOLDER", 1) == "Accepted"
    await settle(station, rec, 2)
    updated = events(rec)[1]
    assert (updated["trigger_reason"], updated["reservation_id"]) == ("Authorized", 33)
    assert updated["id_token"] == TOKEN
    await rec.wait_for(lambda r: statuses(r, 2) == ["Available", "Reserved", "Available"])
    await asyncio.sleep(EXPIRY_S + 1.0)
    assert rec.of("ReservationStatusUpdate") == []
    assert statuses(rec, 1) == ["Available", "Occupied"]


async def test_a_cable_keeps_a_held_evse_reserved_and_cancelling_releases_it_g01_fr_09_h02(
    peer: Peer,
) -> None:
    """G01.FR.09 (errata 2025-01): a cable plugged into a held EVSE, no matching id token,
    does not change its status (Reserved), and that id token is Invalid there. H02:
    CancelReservation of one of the two reservations is Accepted; the EVSEs are no longer
    all needed and are released (H02.FR.06 errata 2025-02: StatusNotification Available,
    Occupied for the one with the cable). The id token may now charge at EVSE 1, which
    leaves EVSE 2 the only free one: Reserved again. Cancelling the last reservation
    releases it; an unknown reservationId is Rejected."""
    station, rec, point = peer
    assert await reserve_any(point, 41, 60) == "Accepted"
    assert await reserve_any(point, 42, 60, token=SECOND) == "Accepted"
    await rec.wait_for(lambda r: both(r, ["Available", "Reserved"]))
    await station.plug(1)
    assert await station.present_token("STRANGER", 1) == "Invalid"
    assert station.snapshot()["connectors"][0]["status"] == "Reserved"
    assert await cancel(point, 42) == "Accepted"
    await rec.wait_for(lambda r: statuses(r, 2) == ["Available", "Reserved", "Available"])
    await rec.wait_for(lambda r: statuses(r, 1) == ["Available", "Reserved", "Occupied"])
    assert await station.present_token("STRANGER", 1) == "Accepted"
    await settle(station, rec, 1)
    assert events(rec)[0]["event_type"] == "Started" and "reservation_id" not in events(rec)[0]
    await rec.wait_for(lambda r: statuses(r, 2)[-1] == "Reserved")
    assert await cancel(point, 41) == "Accepted"
    await rec.wait_for(lambda r: statuses(r, 2)[-1] == "Available")
    assert await cancel(point, 41) == "Rejected"
    assert statuses(rec, 2) == ["Available", "Reserved", "Available", "Reserved", "Available"]
    assert statuses(rec, 1) == ["Available", "Reserved", "Occupied"]


async def test_unspecified_reservation_refused_occupied_unavailable_faulted_rejected_h01(
    peer: Peer,
) -> None:
    """H01 answers without evseId (OCTT TC_H_10, TC_H_12, TC_H_13, secondary source):
    Rejected for a connectorType no connector has; Occupied with every EVSE in use;
    Unavailable with every EVSE Inoperative; Faulted with one faulted and the other
    unavailable; Accepted again once an EVSE is operative (the faulted one is not needed),
    which that EVSE then holds; Rejected, of an EVSE or not, while ReservationCtrlr.Enabled
    is false (H01.FR.01, secondary source: OCTT TC_H_22)."""
    station, rec, point = peer
    assert await reserve_any(point, 51, 60, connector_type="cCCS2") == "Rejected"
    await station.plug(1)
    await station.plug(2)
    await rec.wait_for(lambda r: both(r, ["Available", "Occupied"]))
    assert await reserve_any(point, 52, 60) == "Occupied"
    await station.unplug(1)
    await station.unplug(2)
    inoperative = c201.ChangeAvailability(operational_status="Inoperative")
    assert (await point.call(inoperative, suppress=False)).status == "Accepted"
    await rec.wait_for(lambda r: both(r, ["Available", "Occupied", "Available", "Unavailable"]))
    assert await reserve_any(point, 53, 60) == "Unavailable"
    await station.fault(1, "OtherError")
    await rec.wait_for(lambda r: statuses(r, 1)[-1] == "Faulted")
    assert await reserve_any(point, 54, 60) == "Faulted"
    operative = c201.ChangeAvailability(operational_status="Operative")
    assert (await point.call(operative, suppress=False)).status == "Accepted"
    await rec.wait_for(lambda r: statuses(r, 2)[-1] == "Available")
    assert await reserve_any(point, 55, 60) == "Accepted"
    await rec.wait_for(lambda r: statuses(r, 2)[-1] == "Reserved")
    assert await cancel(point, 55) == "Accepted"
    await rec.wait_for(lambda r: statuses(r, 2)[-1] == "Available")
    assert await set_variable(point, "ReservationCtrlr", "Enabled", "false") == "Accepted"
    assert await reserve_any(point, 56, 60) == "Rejected"
    assert await reserve_any(point, 57, 60, evse_id=2) == "Rejected"
    await drained(station)
    assert statuses(rec, 2)[-1] == "Available"


async def test_reservation_of_a_connector_type_holds_only_that_type_h01_s3(peer: Peer) -> None:
    """H01 S3 (connectorType, no evseId), with EVSE 2's connector configured cCCS2 and EVSE 1's
    cType2: a cType2 reservation leaves only EVSE 1 for it, which goes Reserved (OCTT
    TC_H_15); a second cType2 one finds none: Occupied (TC_H_16); a cCCS2 one holds EVSE 2.
    A ReserveNow of EVSE 1 for a type it lacks is Rejected (secondary source: EVerest
    libocpp). A reservation is used only at a connector of its type: the cCCS2 holder's id
    token at EVSE 1 is Invalid, the cType2 holder's Accepted (EVSE 1 Available)."""
    station, rec, point = peer
    ccs = VariableKey("Connector", "ConnectorType", evse=2, connector=1)
    station.behaviour.dm.set_actual(ccs, "cCCS2")  # the station as built: not settable remotely
    assert await reserve_any(point, 61, 60, connector_type="cType2") == "Accepted"
    await rec.wait_for(lambda r: statuses(r, 1) == ["Available", "Reserved"])
    assert await reserve_any(point, 62, 60, token=SECOND, connector_type="cType2") == "Occupied"
    assert await reserve_any(point, 63, 60, token=SECOND, connector_type="cCCS2") == "Accepted"
    await rec.wait_for(lambda r: statuses(r, 2) == ["Available", "Reserved"])
    assert await reserve_any(point, 64, 60, evse_id=1, connector_type="cCCS2") == "Rejected"
    assert await station.present_token("RFID-SECOND", 1) == "Invalid"
    assert await station.present_token("RFID-HOLDER", 1) == "Accepted"
    await rec.wait_for(lambda r: statuses(r, 1) == ["Available", "Reserved", "Available"])
    await drained(station)
    assert statuses(rec, 2) == ["Available", "Reserved"]


async def test_unspecified_reservations_expire_h04(peer: Peer) -> None:
    """H04 for reservations of an unspecified EVSE: both EVSEs held for two reservations
    that nobody uses; at expiry both turn Available, then a ReservationStatusUpdate Expired
    for each (OCTT TC_H_07 order: the status first)."""
    _, rec, point = peer
    assert await reserve_any(point, 71, 1.0) == "Accepted"
    assert await reserve_any(point, 72, 1.0, token=SECOND) == "Accepted"
    await rec.wait_for(lambda r: both(r, ["Available", "Reserved"]))
    await rec.wait_count("ReservationStatusUpdate", 2, timeout=5)
    updates = rec.of("ReservationStatusUpdate")
    assert sorted(u["reservation_id"] for u in updates) == [71, 72]
    assert {u["reservation_update_status"] for u in updates} == {"Expired"}
    assert both(rec, ["Available", "Reserved", "Available"])
    actions = [a for _, a, _ in rec.calls if a in ("StatusNotification", "ReservationStatusUpdate")]
    assert actions[-2:] == ["ReservationStatusUpdate"] * 2


async def test_same_id_moves_a_reservation_between_an_evse_and_none_h01_fr_02(
    peer: Peer,
) -> None:
    """H01.FR.02: a ReserveNow with the id of a reservation replaces it, of an EVSE or not.
    Two reservations of an unspecified EVSE hold both EVSEs; the first, moved to EVSE 1,
    leaves both Reserved with no passing status (EVSE 1 now reserved for its own holder
    only, EVSE 2 held for the other reservation); moved back to no EVSE, both still
    Reserved; cancelled, both are released. Only one reservation with that id remains."""
    station, rec, point = peer
    assert await reserve_any(point, 81, 60) == "Accepted"
    assert await reserve_any(point, 82, 60, token=SECOND) == "Accepted"
    await rec.wait_for(lambda r: both(r, ["Available", "Reserved"]))
    assert await reserve_any(point, 81, 60, evse_id=1) == "Accepted"
    assert station.snapshot()["connectors"][0]["reservation"] == 81
    assert await station.present_token("RFID-SECOND", 1) == "Invalid"
    assert await station.present_token("RFID-HOLDER", 2) == "Invalid"
    assert await reserve_any(point, 81, 60) == "Accepted"
    assert station.snapshot()["connectors"][0]["reservation"] is None
    assert await cancel(point, 81) == "Accepted"
    await rec.wait_for(lambda r: both(r, ["Available", "Reserved", "Available"]))
    assert await cancel(point, 81) == "Rejected"
    assert await cancel(point, 82) == "Accepted"


async def test_remote_start_uses_an_unspecified_reservation_h03_fr_09(peer: Peer) -> None:
    """H03.FR.09 (errata 2025-01 note: the idToken "can also be part of a
    RequestStartTransaction"): a remote start for the holder at EVSE 2 uses the reservation
    of an unspecified EVSE: the Started event carries its reservationId and the
    remoteStartId; it never expires afterwards."""
    station, rec, point = peer
    assert await reserve_any(point, 91, EXPIRY_S) == "Accepted"
    request = c201.RequestStartTransaction(id_token=TOKEN, remote_start_id=7, evse_id=2)
    assert (await point.call(request, suppress=False)).status == "Accepted"
    await settle(station, rec, 1)
    started = events(rec)[0]
    assert (started["reservation_id"], started["transaction_info"]["remote_start_id"]) == (91, 7)
    await asyncio.sleep(EXPIRY_S + 1.0)
    assert rec.of("ReservationStatusUpdate") == []


async def test_unspecified_reservations_survive_a_restart(store: StationStore) -> None:
    """The reservations of an unspecified EVSE are kept with the station's state, like those
    of an EVSE: after a restart both EVSEs report Reserved at boot (B01 StatusNotifications),
    another id token is Invalid there, and CancelReservation finds them (H02), releasing the
    EVSEs."""
    async with their_csms() as (port, rec):
        cfg = StationConfig(
            station_id=f"{SID}-R",
            csms_url=f"ws://127.0.0.1:{port}/ocpp",
            ocpp_version="2.0.1",
            connectors=2,
            meter_values_interval=0,
            clock_aligned_interval=0,
        )
        async with running(cfg, store) as station:
            await online(station)
            await rec.wait_count("StatusNotification", 2)
            point = rec.points[cfg.station_id]
            assert await reserve_any(point, 101, 60) == "Accepted"
            assert await reserve_any(point, 102, 60, token=SECOND) == "Accepted"
            await rec.wait_for(lambda r: both(r, ["Available", "Reserved"]))
        before = len(rec.of("StatusNotification"))
        async with running(cfg, store) as again:
            await online(again)
            await rec.wait_count("StatusNotification", before + 2)
            booted = rec.of("StatusNotification")[before:]
            assert [s["connector_status"] for s in booted] == ["Reserved", "Reserved"]
            assert await again.present_token("STRANGER", 1) == "Invalid"
            point = rec.points[cfg.station_id]
            assert await cancel(point, 101) == "Accepted"
            await rec.wait_for(
                lambda r: both(r, ["Available", "Reserved", "Reserved", "Available"])
            )
            assert await cancel(point, 102) == "Accepted"
            assert await cancel(point, 101) == "Rejected"


async def test_group_id_token_uses_an_unspecified_reservation_h03_s2(peer: Peer) -> None:
    """H03 S2 with reservations of an unspecified EVSE (OCTT TC_H_24, secondary source): an
    id token that is not the reservation's, but whose groupIdToken (here from the Local
    Authorization List with LocalPreAuthorize, C14) is the reservation's groupIdToken, uses
    it at a held EVSE: Accepted, Available (no cable), and the Started event carries the
    reservationId; the other EVSE stays held for the other reservation."""
    station, rec, point = peer
    fleet = {"id_token": "FLEET-7", "type": "Central"}
    member = {"id_token": "RFID-MEMBER", "type": "ISO14443"}
    assert await set_variable(point, "AuthCtrlr", "LocalPreAuthorize", "true") == "Accepted"
    entry = {"id_token": member, "id_token_info": {"status": "Accepted", "group_id_token": fleet}}
    sent = await point.call(
        c201.SendLocalList(version_number=1, update_type="Full", local_authorization_list=[entry]),
        suppress=False,
    )
    assert sent.status == "Accepted"
    assert await reserve_any(point, 111, 60, group_id_token=fleet) == "Accepted"
    assert await reserve_any(point, 112, 60, token=SECOND) == "Accepted"
    await rec.wait_for(lambda r: both(r, ["Available", "Reserved"]))
    assert await station.present_token("RFID-MEMBER", 2) == "Accepted"
    await rec.wait_for(lambda r: statuses(r, 2)[-1] == "Available")
    await station.plug(2)
    await settle(station, rec, 1)
    started = events(rec)[0]
    assert started["reservation_id"] == 111 and started["id_token"] == member
    await rec.wait_for(
        lambda r: statuses(r, 2) == ["Available", "Reserved", "Available", "Occupied"]
    )
    assert statuses(rec, 1) == ["Available", "Reserved"]


async def test_snapshot_lists_the_reservations_of_an_unspecified_evse_h01(peer: Peer) -> None:
    """H01 S1 / S3 (ReserveNow without evseId, with and without connectorType) bind no EVSE,
    so no connector shows them: the station snapshot (console ``status``, the control API's
    ``GET /status``) lists them on the station with id, id token, expiry and connector type;
    CancelReservation (H02) takes one off the list; a reservation of EVSE 1 (H01 S2) shows
    on that connector, not in the list."""
    station, rec, point = peer
    expiry = datetime.now(UTC).replace(microsecond=0) + timedelta(minutes=5)
    assert station.snapshot()["unspecified_evse_reservations"] == []
    for reservation_id, fields in ((31, {}), (32, {"connector_type": "cType2"})):
        request = c201.ReserveNow(
            id=reservation_id, expiry_date_time=expiry.isoformat(), id_token=TOKEN, **fields
        )
        assert (await point.call(request, suppress=False)).status == "Accepted"
    listed = [
        {"id": 31, "id_token": "RFID-HOLDER", "expires_at": expiry.isoformat(),
         "connector_type": None},
        {"id": 32, "id_token": "RFID-HOLDER", "expires_at": expiry.isoformat(),
         "connector_type": "cType2"},
    ]  # fmt: skip
    snapshot = station.snapshot()
    assert snapshot["unspecified_evse_reservations"] == listed
    assert [c["reservation"] for c in snapshot["connectors"]] == [None, None]
    server = await serve_control_api(station, 0)
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.port}") as client:
            status = await client.get("/status")
            assert status.status_code == 200, status.text
            assert status.json()["unspecified_evse_reservations"] == listed
    finally:
        await server.stop()
    assert await cancel(point, 31) == "Accepted"
    assert station.snapshot()["unspecified_evse_reservations"] == listed[1:]
    await reserve(point, rec, 33, 1, 300)
    snapshot = station.snapshot()
    assert [c["reservation"] for c in snapshot["connectors"]] == [33, None]
    assert [r["id"] for r in snapshot["unspecified_evse_reservations"]] == [32]
