"""Connector status machines: OCPP 1.6 §4.9 (StatusNotification, the transition table A2..I8,
errata 4.0 boot statuses), 1.6 §5.2 ChangeAvailability; OCPP 2.0.1 G01 (status
notification), G03/G04 (change availability of station/EVSE and connector), H01 (reservation).
"""

from __future__ import annotations

import datetime

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ocppkit.messages import v16, v201
from ocppkit.protocol import validate_payload
from ocppkit.station.status import (
    SPEC_TRANSITIONS_16,
    AvailabilityAnswer,
    ChargePoint16,
    Connector16,
    Connector201,
    Event,
    InvalidEvent,
    Station201,
)

S16 = v16.ChargePointStatus
S201 = v201.ConnectorStatusEnum
NOW = datetime.datetime(2026, 11, 27, 9, 0, tzinfo=datetime.UTC)


def feed16(connector: Connector16, *events: Event) -> list[S16]:
    """Feed events; the statuses notified, in order."""
    sent: list[S16] = []
    for event in events:
        sent.extend(n.status for n in connector.handle(event, now=NOW).notifications)
    return sent


# --- the 1.6 table itself -----------------------------------------------------------------


def test_spec_table_16_has_the_53_transitions_of_4_9() -> None:
    """1.6 §4.9: A2..A9 without A6, ..., I1..I8; no B7/B8, no H6/H7, nothing to itself."""
    assert len(SPEC_TRANSITIONS_16) == 53
    assert (S16.AVAILABLE, S16.PREPARING) in SPEC_TRANSITIONS_16  # A2
    assert (S16.FAULTED, S16.RESERVED) in SPEC_TRANSITIONS_16  # I7
    assert (S16.PREPARING, S16.UNAVAILABLE) not in SPEC_TRANSITIONS_16  # no B8
    assert (S16.UNAVAILABLE, S16.FINISHING) not in SPEC_TRANSITIONS_16  # no H6
    assert (S16.AVAILABLE, S16.FINISHING) not in SPEC_TRANSITIONS_16  # no A6
    assert all(a != b for a, b in SPEC_TRANSITIONS_16)


# --- 1.6 connector lifecycle ----------------------------------------------------------------


def test_plug_then_authorize_charge_and_finish_16() -> None:
    """1.6 §4.9 A2, B4, D3, C5, E3, C4, D6, F1: a whole session with an EVSE suspension."""
    c = Connector16(1)
    assert c.status is S16.AVAILABLE
    assert feed16(c, Event.PLUG_IN) == [S16.PREPARING]  # A2
    outcome = c.handle(Event.AUTHORIZE, now=NOW)
    assert outcome.transaction_due and outcome.notifications == ()
    assert feed16(c, Event.TRANSACTION_STARTED) == [S16.SUSPENDED_EV]  # B4: EV not drawing yet
    assert feed16(c, Event.EV_STARTS_DRAWING) == [S16.CHARGING]  # D3
    assert feed16(c, Event.EVSE_SUSPENDS) == [S16.SUSPENDED_EVSE]  # C5: profile limit 0
    assert feed16(c, Event.EVSE_RESUMES) == [S16.CHARGING]  # E3
    assert feed16(c, Event.EV_STOPS_DRAWING) == [S16.SUSPENDED_EV]  # C4
    assert feed16(c, Event.TRANSACTION_STOPPED) == [S16.FINISHING]  # D6
    assert feed16(c, Event.UNPLUG) == [S16.AVAILABLE]  # F1


def test_notification_payload_is_a_valid_1_6_status_notification() -> None:
    """1.6 §4.9 StatusNotification.req: connectorId, errorCode NoError when not faulted."""
    c = Connector16(2)
    (request,) = c.handle(Event.PLUG_IN, now=NOW).notifications
    assert request == v16.StatusNotificationRequest(
        connector_id=2,
        error_code=v16.ChargePointErrorCode.NO_ERROR,
        status=S16.PREPARING,
        timestamp=NOW,
    )
    validate_payload("1.6", "StatusNotification", msgspec.json.encode(request))


def test_authorize_first_then_plug_makes_the_transaction_due_16() -> None:
    """1.6 §4.9 A2 ("present idTag") then the cable: one Preparing, then the start is due."""
    c = Connector16(1)
    assert feed16(c, Event.AUTHORIZE) == [S16.PREPARING]
    outcome = c.handle(Event.PLUG_IN, now=NOW)
    assert outcome.notifications == () and outcome.transaction_due


def test_authorization_timeout_without_cable_returns_to_available_b1() -> None:
    """1.6 §4.9 B1: intended usage ended (ConnectionTimeOut) -> Available."""
    c = Connector16(1)
    feed16(c, Event.AUTHORIZE)
    assert feed16(c, Event.AUTHORIZATION_ENDED) == [S16.AVAILABLE]


def test_unplug_on_ev_side_during_transaction_then_stop_c1() -> None:
    """1.6 §4.9 C4 then D1: cable out while charging (EV stops), stop -> Available."""
    c = Connector16(1)
    feed16(c, Event.PLUG_IN, Event.AUTHORIZE, Event.TRANSACTION_STARTED, Event.EV_STARTS_DRAWING)
    assert feed16(c, Event.UNPLUG) == [S16.SUSPENDED_EV]
    assert feed16(c, Event.TRANSACTION_STOPPED) == [S16.AVAILABLE]


def test_new_session_from_finishing_f2() -> None:
    """1.6 §4.9 F2: in Finishing the user presents an id token again -> Preparing, new tx due."""
    c = Connector16(1)
    feed16(c, Event.PLUG_IN, Event.AUTHORIZE, Event.TRANSACTION_STARTED, Event.TRANSACTION_STOPPED)
    assert c.status is S16.FINISHING
    outcome = c.handle(Event.AUTHORIZE, now=NOW)
    assert [n.status for n in outcome.notifications] == [S16.PREPARING]
    assert outcome.transaction_due


def test_reservation_made_used_and_kept_against_other_cables_g2() -> None:
    """1.6 §4.9 A7, G2: reserved; a stranger's cable keeps it Reserved; the holder's id token
    moves it to Preparing and uses the reservation."""
    c = Connector16(1)
    assert feed16(c, Event.RESERVE) == [S16.RESERVED]  # A7
    assert feed16(c, Event.PLUG_IN) == []  # still Reserved
    assert feed16(c, Event.AUTHORIZE) == [S16.PREPARING]  # G2
    assert not c.facts.reserved
    assert feed16(c, Event.UNPLUG, Event.AUTHORIZATION_ENDED) == [S16.AVAILABLE]  # B1, not B7


def test_reservation_expiry_g1_and_with_cable_in_g2() -> None:
    """1.6 §4.9 G1: reservation expires -> Available; with a cable in -> Preparing (G2)."""
    c = Connector16(1)
    feed16(c, Event.RESERVE)
    assert feed16(c, Event.RESERVATION_ENDED) == [S16.AVAILABLE]
    feed16(c, Event.RESERVE, Event.PLUG_IN)
    assert feed16(c, Event.RESERVATION_ENDED) == [S16.PREPARING]


def test_change_availability_idle_is_accepted_and_idempotent_a8_h1() -> None:
    """1.6 §5.2: Accepted, applied at once (A8); the same again is Accepted with no change;
    Operative again -> Available (H1)."""
    c = Connector16(1)
    outcome = c.handle(Event.SET_INOPERATIVE, now=NOW)
    assert outcome.availability is AvailabilityAnswer.ACCEPTED
    assert [n.status for n in outcome.notifications] == [S16.UNAVAILABLE]
    again = c.handle(Event.SET_INOPERATIVE, now=NOW)
    assert again.availability is AvailabilityAnswer.ACCEPTED and again.notifications == ()
    assert feed16(c, Event.SET_OPERATIVE) == [S16.AVAILABLE]


def test_change_availability_during_transaction_is_scheduled_c8() -> None:
    """1.6 §5.2: "When a transaction is in progress ... Scheduled"; applied when it ends (C8)."""
    c = Connector16(1)
    feed16(c, Event.PLUG_IN, Event.AUTHORIZE, Event.TRANSACTION_STARTED, Event.EV_STARTS_DRAWING)
    outcome = c.handle(Event.SET_INOPERATIVE, now=NOW)
    assert outcome.availability is AvailabilityAnswer.SCHEDULED
    assert outcome.notifications == () and c.status is S16.CHARGING
    assert feed16(c, Event.TRANSACTION_STOPPED) == [S16.UNAVAILABLE]  # C8, cable still in
    assert feed16(c, Event.UNPLUG) == []
    assert feed16(c, Event.SET_OPERATIVE) == [S16.AVAILABLE]


def test_scheduled_change_can_be_withdrawn_before_it_applies() -> None:
    """1.6 §5.2: Operative while still operative (change pending) -> Accepted; nothing applies."""
    c = Connector16(1)
    feed16(c, Event.PLUG_IN, Event.AUTHORIZE, Event.TRANSACTION_STARTED)
    assert c.handle(Event.SET_INOPERATIVE, now=NOW).availability is AvailabilityAnswer.SCHEDULED
    assert c.handle(Event.SET_OPERATIVE, now=NOW).availability is AvailabilityAnswer.ACCEPTED
    assert feed16(c, Event.TRANSACTION_STOPPED) == [S16.FINISHING]


def test_change_availability_in_preparing_waits_no_b8() -> None:
    """1.6 §4.9 has no B8 (Preparing -> Unavailable): Scheduled; when the session is abandoned
    the connector goes Available (B1) then Unavailable (A8)."""
    c = Connector16(1)
    feed16(c, Event.PLUG_IN)
    outcome = c.handle(Event.SET_INOPERATIVE, now=NOW)
    assert outcome.availability is AvailabilityAnswer.SCHEDULED and outcome.notifications == ()
    assert feed16(c, Event.UNPLUG) == [S16.AVAILABLE, S16.UNAVAILABLE]


def test_unavailable_cancels_reservation_g8() -> None:
    """1.6 §4.9 G8, no H7: the reservation ends when the connector becomes Unavailable."""
    c = Connector16(1)
    feed16(c, Event.RESERVE)
    outcome = c.handle(Event.SET_INOPERATIVE, now=NOW)
    assert outcome.reservation_cancelled
    assert feed16(c, Event.SET_OPERATIVE) == [S16.AVAILABLE]


def test_fault_hides_and_clearing_reports_current_facts_i4() -> None:
    """1.6 §4.9 C9, I4: a fault during charging -> Faulted with its errorCode; the EV is
    unplugged meanwhile; the clear reports SuspendedEV (transaction still open)."""
    c = Connector16(1)
    feed16(c, Event.PLUG_IN, Event.AUTHORIZE, Event.TRANSACTION_STARTED, Event.EV_STARTS_DRAWING)
    (request,) = c.handle(Event.FAULT_RAISED, now=NOW, error_code="GroundFailure").notifications
    assert request.status is S16.FAULTED
    assert request.error_code is v16.ChargePointErrorCode.GROUND_FAILURE
    assert feed16(c, Event.UNPLUG) == []
    assert feed16(c, Event.FAULT_CLEARED) == [S16.SUSPENDED_EV]


def test_fault_with_no_error_or_unknown_code_is_rejected() -> None:
    """1.6 ChargePointErrorCode: a Faulted status needs a real error code."""
    c = Connector16(1)
    with pytest.raises(ValueError, match="NoError"):
        c.handle(Event.FAULT_RAISED, now=NOW, error_code="NoError")
    with pytest.raises(ValueError):
        c.handle(Event.FAULT_RAISED, now=NOW, error_code="Melted")
    assert c.status is S16.AVAILABLE


@pytest.mark.parametrize(
    ("setup", "event", "reason"),
    [
        ((), Event.UNPLUG, "no cable"),
        ((Event.PLUG_IN,), Event.PLUG_IN, "already plugged"),
        ((), Event.TRANSACTION_STARTED, "neither a cable"),
        (
            (Event.PLUG_IN, Event.TRANSACTION_STARTED),
            Event.TRANSACTION_STARTED,
            "transaction is running",
        ),
        ((), Event.TRANSACTION_STOPPED, "no transaction"),
        ((Event.PLUG_IN,), Event.RESERVE, "Occupied"),
        ((Event.SET_INOPERATIVE,), Event.AUTHORIZE, "inoperative"),
        ((Event.FAULT_RAISED,), Event.TRANSACTION_STARTED, "faulted"),
        ((), Event.FAULT_CLEARED, "no fault"),
        ((), Event.EV_STARTS_DRAWING, "no transaction"),
        ((), Event.RESERVATION_ENDED, "not reserved"),
        ((Event.RESERVE, Event.PLUG_IN), Event.TRANSACTION_STARTED, "reserved"),
        (
            (Event.PLUG_IN, Event.AUTHORIZE, Event.TRANSACTION_STARTED, Event.TRANSACTION_STOPPED),
            Event.TRANSACTION_STARTED,
            "finishing",
        ),
    ],
)
def test_events_the_facts_rule_out_are_refused(
    setup: tuple[Event, ...], event: Event, reason: str
) -> None:
    """Rule 1: a contradicting event raises InvalidEvent (a LocalError) and changes nothing."""
    c = Connector16(1)
    feed16(c, *setup)
    facts, status = c.facts, c.status
    assert not c.accepts(event)
    with pytest.raises(InvalidEvent, match=reason) as info:
        c.handle(event, now=NOW)
    assert info.value.event is event
    assert (c.facts, c.status) == (facts, status)


def test_level_events_that_already_hold_change_nothing() -> None:
    """Rule 1: EV stops when not drawing, EVSE resumes when not suspended: no change, no error."""
    c = Connector16(1)
    assert feed16(c, Event.EV_STOPS_DRAWING, Event.EVSE_RESUMES) == []


EVENTS_16 = [e for e in Event]


@settings(max_examples=1000, deadline=None)
@given(st.lists(st.sampled_from(EVENTS_16), max_size=60))
def test_every_notified_change_is_in_the_4_9_table_property(events: list[Event]) -> None:
    """1.6 §4.9: whatever the runtime feeds (refused events skipped), every status change the
    connector reports is a transition of the spec's table, each notification is a valid
    StatusNotification.req, and consecutive notifications chain (no change is lost)."""
    c = Connector16(1)
    previous = c.status
    for event in events:
        if event not in (Event.SET_INOPERATIVE, Event.SET_OPERATIVE) and not c.accepts(event):
            continue
        outcome = c.handle(event, now=NOW, error_code="OtherError")
        assert len(outcome.changes) == len(outcome.notifications)
        for change, request in zip(outcome.changes, outcome.notifications, strict=True):
            assert change.previous is previous
            assert (change.previous, change.status) in SPEC_TRANSITIONS_16
            assert request.status is change.status
            validate_payload("1.6", "StatusNotification", msgspec.json.encode(request))
            previous = change.status
        assert c.status is previous


def test_every_reachable_state_and_event_follows_4_9_exhaustively() -> None:
    """1.6 §4.9, checked exhaustively: from boot, every reachable set of facts x every event
    (refused ones skipped) yields only status changes the spec's table lists. The facts are
    a small finite space, so this visits all of it (a model check, not a sample)."""
    start = Connector16(1).facts
    seen = {start}
    frontier = [start]
    transitions = 0
    while frontier:
        facts = frontier.pop()
        for event in Event:
            c = Connector16(1, facts)
            if event not in (Event.SET_INOPERATIVE, Event.SET_OPERATIVE) and not c.accepts(event):
                continue
            previous = c.status
            outcome = c.handle(event, now=NOW)
            for change in outcome.changes:
                assert change.previous is previous, (facts, event)
                assert (change.previous, change.status) in SPEC_TRANSITIONS_16, (facts, event)
                previous = change.status
                transitions += 1
            if c.facts not in seen:
                seen.add(c.facts)
                frontier.append(c.facts)
    # the walk really covered the machine (72 fact sets, 156 reported changes when written)
    assert len(seen) >= 60 and transitions >= 100


# --- 1.6 connector 0 ------------------------------------------------------------------------


def test_boot_reports_connector_0_and_every_connector_errata_4_0() -> None:
    """1.6 errata 4.0: after an accepted BootNotification, StatusNotification for connector 0
    and all connectors."""
    cp = ChargePoint16.with_connectors(2)
    sent = cp.boot_notifications(NOW)
    assert [(n.connector_id, n.status) for n in sent] == [
        (0, S16.AVAILABLE),
        (1, S16.AVAILABLE),
        (2, S16.AVAILABLE),
    ]


def test_connector_0_inoperative_is_scheduled_while_a_connector_charges_5_2() -> None:
    """1.6 §5.2 ChangeAvailability connectorId 0: the whole charge point; Scheduled while
    connector 1 charges; the idle connector 2 goes Unavailable now; connector 0 and 1 follow
    when the transaction ends. Connector 0 only ever reports Available/Unavailable/Faulted."""
    cp = ChargePoint16.with_connectors(2)
    for event in (Event.PLUG_IN, Event.AUTHORIZE, Event.TRANSACTION_STARTED):
        cp.handle(1, event, now=NOW)
    answer, sent = cp.change_availability(0, operative=False, now=NOW)
    assert answer is AvailabilityAnswer.SCHEDULED
    assert [(n.connector_id, n.status) for n in sent] == [(2, S16.UNAVAILABLE)]
    assert cp.status is S16.AVAILABLE
    sent = cp.handle(1, Event.TRANSACTION_STOPPED, now=NOW)
    assert [(n.connector_id, n.status) for n in sent] == [
        (1, S16.UNAVAILABLE),
        (0, S16.UNAVAILABLE),
    ]
    answer, sent = cp.change_availability(0, operative=True, now=NOW)
    assert answer is AvailabilityAnswer.ACCEPTED
    assert {(n.connector_id, n.status) for n in sent} == {
        (1, S16.PREPARING),  # H2: the cable is still in
        (2, S16.AVAILABLE),
        (0, S16.AVAILABLE),
    }


def test_connector_0_fault_is_station_wide_and_validates() -> None:
    """1.6 §4.9: connector 0 Faulted with its errorCode; connectors keep their status."""
    cp = ChargePoint16.with_connectors(1)
    (request,) = cp.handle(0, Event.FAULT_RAISED, now=NOW, error_code="InternalError")
    assert (request.connector_id, request.status) == (0, S16.FAULTED)
    validate_payload("1.6", "StatusNotification", msgspec.json.encode(request))
    assert cp.connector(1).status is S16.AVAILABLE
    (request,) = cp.handle(0, Event.FAULT_CLEARED, now=NOW)
    assert request.status is S16.AVAILABLE
    with pytest.raises(InvalidEvent):
        cp.handle(0, Event.PLUG_IN, now=NOW)
    with pytest.raises(InvalidEvent):
        cp.handle(0, Event.FAULT_CLEARED, now=NOW)


def test_connector_set_operative_stays_unavailable_while_charge_point_is_inoperative() -> None:
    """Rule 7: connector 0 Inoperative makes every connector Unavailable; setting connector 1
    Operative alone does not make it usable (EVerest/libocpp#812: test partners expect it)."""
    cp = ChargePoint16.with_connectors(2)
    cp.change_availability(0, operative=False, now=NOW)
    answer, sent = cp.change_availability(1, operative=True, now=NOW)
    assert answer is AvailabilityAnswer.ACCEPTED and sent == []
    assert not cp.connector(1).accepts(Event.AUTHORIZE)
    cp.change_availability(1, operative=False, now=NOW)
    _, sent = cp.change_availability(0, operative=True, now=NOW)
    assert [(n.connector_id, n.status) for n in sent] == [(2, S16.AVAILABLE), (0, S16.AVAILABLE)]
    assert cp.connector(1).status is S16.UNAVAILABLE


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.sampled_from([0, 1, 2]), st.sampled_from(EVENTS_16)), max_size=60))
def test_charge_point_notifications_follow_4_9_property(events: list[tuple[int, Event]]) -> None:
    """1.6 §4.9: over random events on connectors 0..2, connector 0 only ever reports
    Available/Unavailable/Faulted, and every connector's reported changes are in the table."""
    cp = ChargePoint16.with_connectors(2)
    last = {n.connector_id: n.status for n in cp.boot_notifications(NOW)}
    for connector_id, event in events:
        try:
            sent = cp.handle(connector_id, event, now=NOW)
        except InvalidEvent:
            continue
        for request in sent:
            cid = request.connector_id
            if cid == 0:
                assert request.status in (S16.AVAILABLE, S16.UNAVAILABLE, S16.FAULTED)
            else:
                assert (last[cid], request.status) in SPEC_TRANSITIONS_16
            assert request.status is not last[cid]
            last[cid] = request.status
    assert last[0] is cp.status


# --- 2.0.1 ----------------------------------------------------------------------------------


def test_session_2_0_1_occupied_while_cable_in_g01() -> None:
    """2.0.1 G01: Available -> Occupied when the cable goes in; an id token alone does not
    occupy; Occupied until unplugged; payload carries evseId/connectorId."""
    c = Connector201(1, 1)
    assert c.handle(Event.AUTHORIZE, now=NOW).notifications == ()
    (request,) = c.handle(Event.PLUG_IN, now=NOW).notifications
    assert request == v201.StatusNotificationRequest(
        timestamp=NOW, connector_status=S201.OCCUPIED, evse_id=1, connector_id=1
    )
    validate_payload("2.0.1", "StatusNotification", msgspec.json.encode(request))
    for event in (Event.TRANSACTION_STARTED, Event.EV_STARTS_DRAWING, Event.TRANSACTION_STOPPED):
        assert c.handle(event, now=NOW).notifications == ()
    (request,) = c.handle(Event.UNPLUG, now=NOW).notifications
    assert request.connector_status is S201.AVAILABLE


def test_reservation_2_0_1_h01() -> None:
    """2.0.1 H01: Reserved; a cable in keeps it Reserved (H03 S1 #2, errata 2025-01: "EVSE
    connector status remains Reserved"); when the reservation ends the cable makes it Occupied."""
    c = Connector201(1, 1)
    assert [n.connector_status for n in c.handle(Event.RESERVE, now=NOW).notifications] == [
        S201.RESERVED
    ]
    assert c.handle(Event.PLUG_IN, now=NOW).notifications == ()
    assert [
        n.connector_status for n in c.handle(Event.RESERVATION_ENDED, now=NOW).notifications
    ] == [S201.OCCUPIED]


def test_evse_inoperative_during_transaction_is_scheduled_g03() -> None:
    """2.0.1 G03: EVSE 1 (two connectors) set Inoperative while connector 1 is in a transaction:
    Scheduled; connector 2 Unavailable now, connector 1 when the transaction ends; EVSE 2
    untouched. Station Operative again: only what no other level holds becomes Available."""
    station = Station201({1: 2, 2: 1})
    for event in (Event.PLUG_IN, Event.TRANSACTION_STARTED):
        station.handle(1, 1, event, now=NOW)
    answer, sent = station.change_availability(operative=False, evse_id=1, now=NOW)
    assert answer is AvailabilityAnswer.SCHEDULED
    assert [(n.evse_id, n.connector_id, n.connector_status) for n in sent] == [
        (1, 2, S201.UNAVAILABLE)
    ]
    outcome = station.handle(1, 1, Event.TRANSACTION_STOPPED, now=NOW)
    assert [n.connector_status for n in outcome.notifications] == [S201.UNAVAILABLE]
    answer, sent = station.change_availability(operative=False, now=NOW)
    assert answer is AvailabilityAnswer.ACCEPTED
    assert [(n.evse_id, n.connector_id) for n in sent] == [(2, 1)]
    answer, sent = station.change_availability(operative=True, now=NOW)
    assert [(n.evse_id, n.connector_id) for n in sent] == [(2, 1)]  # EVSE 1 still inoperative
    answer, sent = station.change_availability(operative=True, evse_id=1, now=NOW)
    assert {(n.connector_id, n.connector_status) for n in sent} == {
        (1, S201.OCCUPIED),
        (2, S201.AVAILABLE),
    }


def test_reserved_to_unavailable_without_transient_available_2_0_1() -> None:
    """2.0.1 G03 + H01, rule 9: a reserved EVSE set Inoperative goes straight to Unavailable and
    the reservation is cancelled (EVerest/libocpp#999 reported a passing Available)."""
    station = Station201({1: 1})
    station.handle(1, 1, Event.RESERVE, now=NOW)
    answer, sent = station.change_availability(operative=False, evse_id=1, now=NOW)
    assert answer is AvailabilityAnswer.ACCEPTED
    assert [n.connector_status for n in sent] == [S201.UNAVAILABLE]
    assert not station.connector(1).facts.reserved


def test_charging_to_unavailable_directly_when_the_scheduled_change_applies_tc_g_11() -> None:
    """2.0.1 G03 (OCTT TC_G_11/14/17), rule 9: when the transaction ends (cable out) the
    scheduled Inoperative applies with no Available in between (EVerest/libocpp#809)."""
    c = Connector201(1, 1)
    for event in (Event.PLUG_IN, Event.TRANSACTION_STARTED, Event.EV_STARTS_DRAWING):
        c.handle(event, now=NOW)
    assert (
        c.change_availability(operative=False, now=NOW).availability is AvailabilityAnswer.SCHEDULED
    )
    c.handle(Event.UNPLUG, now=NOW)
    outcome = c.handle(Event.TRANSACTION_STOPPED, now=NOW)
    assert [n.connector_status for n in outcome.notifications] == [S201.UNAVAILABLE]


def test_connector_level_availability_g04() -> None:
    """2.0.1 G04: one connector Inoperative -> Unavailable; Accepted when idle."""
    station = Station201({1: 2})
    answer, sent = station.change_availability(operative=False, evse_id=1, connector_id=2, now=NOW)
    assert answer is AvailabilityAnswer.ACCEPTED
    assert [(n.connector_id, n.connector_status) for n in sent] == [(2, S201.UNAVAILABLE)]
    assert station.connector(1, 1).status is S201.AVAILABLE
    with pytest.raises(ValueError):
        station.change_availability(operative=False, evse_id=9, now=NOW)
    with pytest.raises(ValueError):
        station.change_availability(operative=False, connector_id=1, now=NOW)


def test_ids_are_checked() -> None:
    """1.6: connector ids >= 1 (0 is the charge point); 2.0.1: EVSE and connector ids >= 1."""
    with pytest.raises(ValueError):
        Connector16(0)
    with pytest.raises(ValueError):
        Connector201(0, 1)
    with pytest.raises(ValueError):
        ChargePoint16.with_connectors(0)
    with pytest.raises(ValueError):
        Station201({1: 0})


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(EVENTS_16), max_size=60))
def test_2_0_1_notifications_are_valid_and_chain_property(events: list[Event]) -> None:
    """2.0.1 G01: every change is reported once, as a valid StatusNotificationRequest."""
    c = Connector201(3, 2)
    previous = c.status
    for event in events:
        if event not in (Event.SET_INOPERATIVE, Event.SET_OPERATIVE) and not c.accepts(event):
            continue
        outcome = c.handle(event, now=NOW)
        for change, request in zip(outcome.changes, outcome.notifications, strict=True):
            assert change.previous is previous and change.status is not previous
            validate_payload("2.0.1", "StatusNotification", msgspec.json.encode(request))
            previous = change.status
        assert c.status is previous
