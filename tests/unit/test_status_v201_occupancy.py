"""OCPP 2.0.1 connector status around cables, parked EVs, transactions and reservations (pure
:mod:`ocppkit.station.status`): G01 (Occupied means a cable or an EV in the bay, not a
transaction), H03 as the errata (2025-01, "Improved use case scenario descriptions")
describes it per TxStartPoint, TxStartPoint ParkingBayOccupancy (E01); 1.6 §4.9 kept as it is
(Preparing for an id token alone, no transaction on a reserved connector) plus its parking-bay
wording (Preparing / Finishing).
"""

from __future__ import annotations

import datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ocppkit.messages import v16, v201
from ocppkit.station.status import (
    EVENT_RULES,
    EVENT_RULES_201,
    Connector16,
    Connector201,
    Event,
    InvalidEvent,
)

S16 = v16.ChargePointStatus
S201 = v201.ConnectorStatusEnum
NOW = datetime.datetime(2026, 11, 27, 9, 0, tzinfo=datetime.UTC)


def feed(connector: Connector201, *events: Event) -> list[S201]:
    """Feed events; the statuses notified, in order."""
    sent: list[S201] = []
    for event in events:
        sent.extend(n.connector_status for n in connector.handle(event, now=NOW).notifications)
    return sent


def test_token_first_transaction_is_not_occupied_until_the_cable_h03_s1() -> None:
    """2.0.1 E03 / H03 S1 #1 (TxStartPoint Authorized): the id token starts the transaction with
    no cable; the connector stays Available ("Occupied when cable is connected") and turns
    Occupied with the cable, Available again when it leaves."""
    c = Connector201(1, 1)
    assert feed(c, Event.AUTHORIZE, Event.TRANSACTION_STARTED) == []
    assert c.status is S201.AVAILABLE and c.facts.transaction
    assert feed(c, Event.PLUG_IN) == [S201.OCCUPIED]
    assert feed(c, Event.EV_STARTS_DRAWING, Event.EV_STOPS_DRAWING) == []
    assert feed(c, Event.UNPLUG, Event.TRANSACTION_STOPPED) == [S201.AVAILABLE]


def test_transaction_surviving_the_unplug_frees_the_connector_e10() -> None:
    """2.0.1 rule 8: a transaction that goes on after the cable left (TxStopPoint Authorized,
    E10: the EV may come back) no longer occupies the connector; the cable again does."""
    c = Connector201(1, 1)
    assert feed(c, Event.PLUG_IN, Event.AUTHORIZE, Event.TRANSACTION_STARTED) == [S201.OCCUPIED]
    assert feed(c, Event.UNPLUG) == [S201.AVAILABLE]
    assert feed(c, Event.PLUG_IN) == [S201.OCCUPIED]


def test_1_6_keeps_preparing_and_suspended_ev_for_a_token_first_session() -> None:
    """1.6 §4.9 is unchanged: an id token alone is Preparing (A2); a transaction without energy
    is SuspendedEV (B4), with or without the cable."""
    c = Connector16(1)
    assert [n.status for n in c.handle(Event.AUTHORIZE, now=NOW).notifications] == [S16.PREPARING]
    outcome = c.handle(Event.TRANSACTION_STARTED, now=NOW)
    assert [n.status for n in outcome.notifications] == [S16.SUSPENDED_EV]


def test_reserved_token_first_turns_available_h03_s1() -> None:
    """H03 S1 #1: the holder's id token consumes the reservation (H03.FR.09): Reserved ->
    Available (no cable yet); the transaction starts; Occupied when the cable is connected."""
    c = Connector201(1, 1)
    assert feed(c, Event.RESERVE) == [S201.RESERVED]
    assert feed(c, Event.AUTHORIZE) == [S201.AVAILABLE]
    assert not c.facts.reserved
    assert feed(c, Event.TRANSACTION_STARTED) == []
    assert feed(c, Event.PLUG_IN) == [S201.OCCUPIED]


def test_cable_first_on_reserved_connector_stays_reserved_h03_s1_2() -> None:
    """H03 S1 #2 (TxStartPoint EVConnected): the cable starts a transaction "but EVSE connector
    status remains Reserved"; the reservation consumed by the holder's id token
    (RESERVATION_ENDED), the connector becomes Occupied; it ends like any other."""
    c = Connector201(1, 1)
    assert feed(c, Event.RESERVE, Event.PLUG_IN) == [S201.RESERVED]
    assert c.accepts(Event.TRANSACTION_STARTED)
    assert feed(c, Event.TRANSACTION_STARTED) == []
    assert c.facts.reserved and c.facts.transaction and c.status is S201.RESERVED
    assert not c.accepts(Event.AUTHORIZE)  # the running transaction takes the id token
    assert feed(c, Event.RESERVATION_ENDED) == [S201.OCCUPIED]
    assert feed(c, Event.EV_STARTS_DRAWING, Event.TRANSACTION_STOPPED) == []
    assert feed(c, Event.UNPLUG) == [S201.AVAILABLE]


def test_cable_started_transaction_ending_before_the_holder_keeps_the_reservation() -> None:
    """H03 remark: with TxStartPoint and TxStopPoint EVConnected a stranger's cable starts and
    (unplugged) ends a transaction without energy; the reservation is still there for its
    holder: Reserved throughout."""
    c = Connector201(1, 1)
    assert feed(c, Event.RESERVE) == [S201.RESERVED]
    assert feed(c, Event.PLUG_IN, Event.TRANSACTION_STARTED, Event.UNPLUG) == []
    assert feed(c, Event.TRANSACTION_STOPPED) == []
    assert c.facts.reserved and c.status is S201.RESERVED


def test_1_6_still_refuses_a_transaction_on_a_reserved_connector_5_13() -> None:
    """1.6 §5.13 / §4.9 G2: the holder's id tag first; the event table differs only there (and
    in the EVSEs held for reservations of an unspecified EVSE, 2.0.1 only: status rule 11)."""
    c = Connector16(1)
    c.handle(Event.RESERVE, now=NOW)
    c.handle(Event.PLUG_IN, now=NOW)
    assert c.status is S16.RESERVED
    with pytest.raises(InvalidEvent, match="reserved"):
        c.handle(Event.TRANSACTION_STARTED, now=NOW)
    assert {e for e in Event if EVENT_RULES_201[e] is not EVENT_RULES[e]} == {
        Event.TRANSACTION_STARTED,
        Event.HOLD,
        Event.RELEASE,
    }


def test_expiry_with_a_stranger_cable_shows_occupied_h04() -> None:
    """H04 after a stranger plugged in (no transaction at PowerPathClosed): the reservation
    expires, the cable now occupies the connector."""
    c = Connector201(1, 1)
    assert feed(c, Event.RESERVE, Event.PLUG_IN) == [S201.RESERVED]
    assert feed(c, Event.RESERVATION_ENDED) == [S201.OCCUPIED]


def test_parking_bay_occupancy_occupies_and_may_start_a_transaction_2_0_1() -> None:
    """2.0.1 TxStartPoint ParkingBayOccupancy (E01, triggerReason EVDetected), rule 10: a bay
    sensor's EV is a fact apart from the cable. The EV in the bay occupies the connector and
    may start the transaction before any cable or id token; it stays after the unplug; the
    bay is not vacated while a cable is in; the bay free again, the connector is Available."""
    c = Connector201(1, 1)
    assert feed(c, Event.BAY_OCCUPIED) == [S201.OCCUPIED]
    assert c.facts.parked and not c.facts.plugged
    assert feed(c, Event.BAY_OCCUPIED) == []  # a level: already so, nothing changes
    assert c.accepts(Event.TRANSACTION_STARTED)
    assert feed(c, Event.TRANSACTION_STARTED, Event.PLUG_IN, Event.EV_STARTS_DRAWING) == []
    assert not c.accepts(Event.BAY_VACATED)
    assert "cable" in (c.refusal(Event.BAY_VACATED) or "")
    assert feed(c, Event.UNPLUG, Event.TRANSACTION_STOPPED) == []
    assert c.status is S201.OCCUPIED
    assert feed(c, Event.BAY_VACATED) == [S201.AVAILABLE]


def test_parking_bay_before_a_reservation_and_during_one_h01_h03() -> None:
    """H01: only an available EVSE is reserved (ReserveNow Occupied while an EV is in the bay);
    on a reserved EVSE the EV in the bay keeps it Reserved, like a cable (H03 S1 #2)."""
    c = Connector201(1, 1)
    feed(c, Event.BAY_OCCUPIED)
    with pytest.raises(InvalidEvent, match="parking bay"):
        c.handle(Event.RESERVE, now=NOW)
    feed(c, Event.BAY_VACATED)
    assert feed(c, Event.RESERVE, Event.BAY_OCCUPIED, Event.TRANSACTION_STARTED) == [S201.RESERVED]
    assert feed(c, Event.RESERVATION_ENDED) == [S201.OCCUPIED]


def test_parking_bay_1_6_preparing_and_finishing_until_the_vehicle_leaves_4_9() -> None:
    """1.6 §4.9 ChargePointStatus: Preparing when "a vehicle occupies the parking bay" (A2), no
    transaction without a cable or an id tag; Finishing until "the vehicle has left the
    parking bay" even when the cable is already out (F1 when it leaves)."""
    c = Connector16(1)
    assert [n.status for n in c.handle(Event.BAY_OCCUPIED, now=NOW).notifications] == [
        S16.PREPARING
    ]
    with pytest.raises(InvalidEvent, match="neither a cable nor an id token"):
        c.handle(Event.TRANSACTION_STARTED, now=NOW)
    for event in (Event.PLUG_IN, Event.AUTHORIZE, Event.TRANSACTION_STARTED):
        c.handle(event, now=NOW)
    assert c.status is S16.SUSPENDED_EV
    assert [n.status for n in c.handle(Event.TRANSACTION_STOPPED, now=NOW).notifications] == [
        S16.FINISHING
    ]
    assert c.handle(Event.UNPLUG, now=NOW).notifications == ()
    assert c.status is S16.FINISHING
    assert [n.status for n in c.handle(Event.BAY_VACATED, now=NOW).notifications] == [S16.AVAILABLE]


@settings(max_examples=500, deadline=None)
@given(st.lists(st.sampled_from(list(Event)), max_size=60))
def test_occupied_iff_a_cable_or_a_parked_ev_and_no_reservation_property(
    events: list[Event],
) -> None:
    """2.0.1 G01 / H03 over random accepted event sequences: Occupied is reported only with a
    cable in or an EV in the bay; while healthy and operative (or in a transaction), a
    reserved (or held, H01: status rule 11) connector reports Reserved and an unreserved one
    Occupied exactly when a cable or a parked EV is there, whether or not a transaction
    runs."""
    c = Connector201(1, 1)
    for event in events:
        if event not in (Event.SET_INOPERATIVE, Event.SET_OPERATIVE) and not c.accepts(event):
            continue
        c.handle(event, now=NOW)
        f = c.facts
        present = f.plugged or f.parked
        if c.status is S201.OCCUPIED:
            assert present and not (f.reserved or f.held)
        if f.fault is None and (not f.inoperative or f.transaction):
            if f.reserved or f.held:
                assert c.status is S201.RESERVED
            else:
                assert c.status is (S201.OCCUPIED if present else S201.AVAILABLE)
