"""Connector status state machines for OCPP 1.6 and 2.0.1, as tables, without I/O.

Why: the status a station reports is what a CSMS and its users see of a charger; an emulator
that reports a transition the spec does not allow (or forgets one) hides bugs in the CSMS it
is testing. Both versions share one lifecycle (a cable, an id token, a transaction, an EV that
draws or not, faults, availability, reservations); they differ only in how that lifecycle is
*reported*, so the module keeps one event table and one status table per version.

Theory of operation
-------------------
A connector holds :class:`Facts`, what is physically and logically true about it (cable
plugged, id token accepted, transaction running, EV drawing, EVSE suspending, reserved,
set inoperative, faulted). The station runtime feeds it :class:`Event` values; the
**event table** :data:`EVENT_RULES` says, for each event, which facts it requires (else the
event is refused with :class:`InvalidEvent`) and which facts it changes. The **status
tables** :data:`STATUS_TABLE_16` and :data:`STATUS_TABLE_201` are ordered decision tables:
the first row whose condition holds gives the status to report. A status change is an
effect: the connector returns the StatusNotification payload to send for it.

Rules a reviewer should know (decisions, each with its reason):

1. **Refused vs ignored.** An event that contradicts the facts (unplug with no cable, a
   second transaction, a transaction on an inoperative or faulted connector, a reservation on
   an occupied one, clearing a fault that is not raised) raises :class:`InvalidEvent`, a
   :class:`~ocppkit.protocol.errors.LocalError`: the runtime asked for something the
   connector cannot do and must answer its peer accordingly (ReserveNow ``Occupied``,
   RemoteStart ``Rejected`` ...); use :meth:`ConnectorMachine.accepts` to ask first. Setting
   a level that already holds (EV stops drawing when it does not draw, EVSE resumes when not
   suspended, raising a fault again, availability already as asked) is not an error: it
   changes nothing (ChangeAvailability to the current state answers ``Accepted``,
   1.6 §5.2 / 2.0.1 G03).
2. **Availability during a transaction is scheduled** (1.6 §5.2, 2.0.1 G03/G04): the
   change answers ``Scheduled`` and applies when the transaction ends. On 1.6 the same
   holds while the connector is ``Preparing``: the 1.6 §4.9 transition table has no
   Preparing -> Unavailable (B8), so the change waits for the session to start (then the
   transaction's end) or to be abandoned (Preparing -> Available -> Unavailable).
3. **Becoming Unavailable ends what waits for a user**: a reservation is cancelled
   (``reservation_cancelled`` in the outcome) and a finished session forgets it was
   finishing; 1.6 §4.9 has no Unavailable -> Reserved (H7) nor Unavailable -> Finishing
   (H6).
4. **A reservation is used when its holder's id token is accepted** (``AUTHORIZE`` on a
   reserved connector; the runtime checks the id token against the reservation first). A
   cable plugged in keeps the connector ``Reserved`` until then: 1.6 §4.9 G2 (only
   "reservation identity presented" leads to Preparing) and 2.0.1 H03 S1 (errata 2025-01:
   "EVSE connector status remains Reserved" with the cable in, and becomes Occupied when
   the reservation is consumed). On 1.6 a transaction cannot start on a reserved connector
   before that (§5.13). On 2.0.1 one may (:data:`EVENT_RULES_201`): TxStartPoint
   EVConnected / ParkingBayOccupancy starts it at the cable (or the EV in the bay, rule
   10) before any id token, the connector stays
   ``Reserved``, and the holder's id token then authorizes it and consumes the reservation
   (``RESERVATION_ENDED``, H03.FR.09); another id token is not authorized to charge (H03
   remark), so the transaction goes on without energy. Likewise a transaction does not
   start from Finishing: an accepted id token first starts a new session (1.6 §4.9 F2, no
   F3..F5).
5. **Faulted hides, it does not freeze**: while faulted, events still change the facts
   (the EV can be unplugged); when the fault clears the connector reports whatever the
   facts say (1.6 §4.9 I1..I8 "return to the previous status", updated by what happened
   meanwhile). Whether a fault stops the transaction is the runtime's choice
   (reason ``Other``/``EmergencyStop``), not this table's.
6. **Suspended by the EVSE wins over charging**: an EV cannot draw when the EVSE offers
   nothing (charging-profile limit 0), so ``SuspendedEVSE`` comes before ``Charging``.
7. **1.6 connector 0** (:class:`ChargePoint16`) reports only Available, Unavailable or
   Faulted (1.6 §4.9): Faulted for a station-wide fault, Unavailable when the charge point
   was set inoperative (ChangeAvailability with connectorId 0, applied to every connector;
   ``Scheduled`` while any connector is busy, and connector 0 turns Unavailable when the
   last one is done). A connector is inoperative while the charge point *or* the connector
   itself is set so. A station-wide fault does not fault the connectors.
8. **2.0.1** (:class:`Station201`): connectors are numbered per EVSE from 1; availability
   can be changed for the station, an EVSE or one connector (ChangeAvailability
   ``evse``/``connectorId``); a connector is inoperative when any of the three levels is.
   **Occupied means a cable is in** (or an EV in the bay, rule 10), not "a transaction
   runs": a transaction started by its id token (TxStartPoint Authorized, E03) leaves the
   connector ``Available`` (or ``Reserved``) until the cable is plugged in (H03 S1, errata
   2025-01: "Connector status will become Occupied when cable is connected";
   ConnectorStatusEnumType Occupied: "not available for a new EV driver"). 1.6 differs: an
   accepted id token alone already makes the connector ``Preparing`` (1.6 §4.9 A2), and a
   transaction ``SuspendedEV`` or ``Charging``.
9. **No transient status**: when a scheduled change applies right after the event that
   freed the connector, only the final status is reported if the spec allows the direct
   transition (Charging -> Unavailable, 1.6 C8; 2.0.1 always), never a passing
   ``Available`` (EVerest/libocpp#809, #999; OCTT TC_G_11/14/17 check this on 2.0.1).
10. **The parking bay is a fact of its own** (``parked``: a bay sensor detects an EV),
    apart from the cable: 2.0.1 TxStartPoint ``ParkingBayOccupancy`` ("an object, probably
    an EV, is detected in the parking/charging bay", triggerReason ``EVDetected``) happens
    before ``EVConnected`` (the cable), and the EV may stay in the bay after the unplug.
    Without a sensor the fact stays False (the runtime never feeds ``BAY_OCCUPIED``), and
    the station behaves as if the bay followed the cable. The bay is not vacated while a
    cable is in. An EV in the bay makes the connector "no longer available for a new
    user": 1.6 ``Preparing`` ("a vehicle occupies the parking bay", §4.9) and
    ``Finishing`` until "the vehicle has left the parking bay"; 2.0.1 ``Occupied`` (same
    ConnectorStatusEnumType wording), ``Reserved`` still first (rule 4). Only 2.0.1 starts a
    transaction on it (:data:`EVENT_RULES_201`).
11. **2.0.1 keeps EVSEs free for reservations of an unspecified EVSE** (H01, ``held``): a
    ReserveNow without ``evseId`` binds no EVSE; the runtime keeps enough EVSEs free for all
    such reservations and, when the free ones are just enough (as many as the reservations,
    per connector type), *holds* them (``HOLD``): they report ``Reserved`` like a reserved
    one (OCTT TC_H_14: "all available EVSE to reserved"), and ``RELEASE`` when they are no
    longer needed. Which EVSEs are needed is the runtime's sum over the whole station (it
    sees every reservation); this table only records the fact. A cable or an EV in the bay
    keeps a held connector ``Reserved`` (rule 4, G01.FR.09 errata 2025-01); the id token
    that uses one of those reservations clears it (``AUTHORIZE``); becoming Unavailable
    clears it (rule 3). 1.6 refuses both events (its connector 0 reservations are not
    supported).

Every status change the 1.6 machine can produce is a transition the 1.6 §4.9 table lists
(:data:`SPEC_TRANSITIONS_16`); the tests check that over random event sequences.

Typical use (the runtime owns the clock and the socket)::

    connector = Connector16(connector_id=1)
    outcome = connector.handle(Event.PLUG_IN, now=clock())
    for request in outcome.notifications:
        await session.call("StatusNotification", request)
    if outcome.transaction_due:
        ...  # send StartTransaction, then connector.handle(Event.TRANSACTION_STARTED, ...)
"""

from __future__ import annotations

import datetime
import enum
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, replace
from typing import Final, Generic, TypeVar

from ocppkit.messages import v16, v201
from ocppkit.protocol.errors import LocalError

__all__ = [
    "EVENT_RULES",
    "EVENT_RULES_201",
    "SPEC_TRANSITIONS_16",
    "STATUS_TABLE_16",
    "STATUS_TABLE_201",
    "AvailabilityAnswer",
    "ChargePoint16",
    "Connector16",
    "Connector201",
    "ConnectorMachine",
    "Event",
    "EventRule",
    "Facts",
    "InvalidEvent",
    "Outcome",
    "Station201",
    "StatusChange",
]

S16 = v16.ChargePointStatus
S201 = v201.ConnectorStatusEnum


class Event(enum.Enum):
    """What happens to a connector. The runtime decides *that* it happened (a user action, a
    CSMS request, the EV model); the table decides what it means for the status."""

    PLUG_IN = "cable plugged in"
    UNPLUG = "cable unplugged"
    BAY_OCCUPIED = "an EV detected in the parking bay (bay sensor)"
    BAY_VACATED = "the parking bay is free again (bay sensor)"
    AUTHORIZE = "id token presented and accepted (or a remote start accepted)"
    AUTHORIZATION_ENDED = (
        "authorization ended before a transaction (ConnectionTimeOut, same token again)"
    )
    TRANSACTION_STARTED = "transaction started"
    TRANSACTION_STOPPED = "transaction stopped"
    EV_STARTS_DRAWING = "EV starts drawing energy"
    EV_STOPS_DRAWING = "EV stops drawing energy"
    EVSE_SUSPENDS = "EVSE offers no energy (charging profile limit 0)"
    EVSE_RESUMES = "EVSE offers energy again"
    RESERVE = "reservation made"
    HOLD = "kept free for the reservations of an unspecified EVSE (2.0.1 H01)"
    RELEASE = "no longer needed for the reservations of an unspecified EVSE (2.0.1 H01)"
    RESERVATION_ENDED = (
        "reservation expired or cancelled, or used by the id token that authorized a running "
        "transaction (2.0.1 H03, cable first)"
    )
    FAULT_RAISED = "fault raised"
    FAULT_CLEARED = "fault cleared"
    SET_INOPERATIVE = "availability changed to Inoperative"
    SET_OPERATIVE = "availability changed to Operative"


class AvailabilityAnswer(enum.StrEnum):
    """A ChangeAvailability answer (1.6 AvailabilityStatus, 2.0.1 ChangeAvailabilityStatusEnum)."""

    ACCEPTED = "Accepted"
    SCHEDULED = "Scheduled"


class InvalidEvent(LocalError):
    """The runtime fed an event the connector's facts rule out (our side's fault).

    ``.event`` is the event, ``.reason`` the fact that refuses it. The runtime answers its
    peer (ReserveNow ``Occupied``/``Faulted``/``Unavailable``, RemoteStart ``Rejected``);
    it never reaches the wire as a CALLERROR.
    """

    def __init__(self, event: Event, reason: str) -> None:
        super().__init__(f"{event.name} refused: {reason}")
        self.event = event
        self.reason = reason


@dataclass(frozen=True, slots=True, kw_only=True)
class Facts:
    """What is true about one connector; the status is computed from these."""

    plugged: bool = False
    parked: bool = False
    """A bay sensor detects an EV in the parking bay (rule 10); False without a sensor."""
    authorized: bool = False
    """An id token was accepted and no transaction has started yet."""
    transaction: bool = False
    finishing: bool = False
    """A transaction ended while the cable (or the EV in the bay) stayed; cleared when both
    have left, or by a new session."""
    ev_drawing: bool = False
    evse_suspended: bool = False
    reserved: bool = False
    held: bool = False
    """2.0.1: kept free for the reservations of an unspecified EVSE (rule 11)."""
    inoperative: bool = False
    """Availability as applied (not as scheduled)."""
    scheduled: bool | None = None
    """A ChangeAvailability waiting for the connector to be idle: True = to inoperative."""
    fault: str | None = None
    """The error code of a raised fault (1.6 ChargePointErrorCode), None when healthy."""


_Guard = tuple[Callable[[Facts], bool], str]


@dataclass(frozen=True, slots=True)
class EventRule:
    """One row of the event table: the facts an event requires, and what it changes."""

    requires: tuple[_Guard, ...]
    """(predicate, reason shown when it fails) pairs; all must hold."""
    apply: Callable[[Facts], Facts]


def _operative(f: Facts) -> bool:
    return not f.inoperative


def _no_fault(f: Facts) -> bool:
    return f.fault is None


_OPERATIVE: Final[_Guard] = (_operative, "connector is inoperative (Unavailable)")
_HEALTHY: Final[_Guard] = (_no_fault, "connector is faulted")
_NO_TX: Final[_Guard] = (lambda f: not f.transaction, "a transaction is running")

EVENT_RULES: Final[Mapping[Event, EventRule]] = {
    Event.PLUG_IN: EventRule(
        ((lambda f: not f.plugged, "a cable is already plugged in"),),
        lambda f: replace(f, plugged=True),
    ),
    Event.UNPLUG: EventRule(
        ((lambda f: f.plugged, "no cable is plugged in"),),
        lambda f: replace(f, plugged=False, ev_drawing=False, finishing=f.finishing and f.parked),
    ),
    Event.BAY_OCCUPIED: EventRule((), lambda f: replace(f, parked=True)),
    Event.BAY_VACATED: EventRule(
        ((lambda f: not f.plugged, "a cable is still plugged in (the EV is in the bay)"),),
        lambda f: replace(f, parked=False, finishing=f.finishing and f.plugged),
    ),
    Event.AUTHORIZE: EventRule(
        (_NO_TX, _OPERATIVE, _HEALTHY),
        lambda f: replace(f, authorized=True, reserved=False, held=False, finishing=False),
    ),
    Event.AUTHORIZATION_ENDED: EventRule(
        ((lambda f: f.authorized, "no authorization is pending"),),
        lambda f: replace(f, authorized=False),
    ),
    Event.TRANSACTION_STARTED: EventRule(
        (
            _NO_TX,
            _OPERATIVE,
            _HEALTHY,
            (lambda f: f.plugged or f.authorized, "neither a cable nor an id token is present"),
            (lambda f: not f.reserved, "reserved: the holder's id token must be accepted first"),
            (lambda f: not f.finishing, "finishing: a new session starts with an id token"),
        ),
        lambda f: replace(f, transaction=True, authorized=False, reserved=False, finishing=False),
    ),
    Event.TRANSACTION_STOPPED: EventRule(
        ((lambda f: f.transaction, "no transaction is running"),),
        lambda f: replace(f, transaction=False, ev_drawing=False, finishing=f.plugged or f.parked),
    ),
    Event.EV_STARTS_DRAWING: EventRule(
        (
            (lambda f: f.transaction, "no transaction is running"),
            (lambda f: f.plugged, "no cable is plugged in"),
        ),
        lambda f: replace(f, ev_drawing=True),
    ),
    Event.EV_STOPS_DRAWING: EventRule((), lambda f: replace(f, ev_drawing=False)),
    Event.EVSE_SUSPENDS: EventRule((), lambda f: replace(f, evse_suspended=True)),
    Event.EVSE_RESUMES: EventRule((), lambda f: replace(f, evse_suspended=False)),
    Event.RESERVE: EventRule(
        (
            _OPERATIVE,
            _HEALTHY,
            _NO_TX,
            (lambda f: not f.plugged, "a cable is plugged in (Occupied)"),
            (lambda f: not f.parked, "an EV is in the parking bay (Occupied)"),
            (lambda f: not f.authorized, "a user is being served (Occupied)"),
        ),
        lambda f: replace(f, reserved=True, held=False),
    ),
    Event.RESERVATION_ENDED: EventRule(
        ((lambda f: f.reserved, "the connector is not reserved"),),
        lambda f: replace(f, reserved=False),
    ),
    Event.HOLD: EventRule(((lambda f: False, "2.0.1 only (rule 11)"),), lambda f: f),
    Event.RELEASE: EventRule(((lambda f: False, "2.0.1 only (rule 11)"),), lambda f: f),
    # FAULT_RAISED sets ``fault`` to the given error code: see ConnectorMachine.handle.
    Event.FAULT_RAISED: EventRule((), lambda f: f),
    Event.FAULT_CLEARED: EventRule(
        ((lambda f: f.fault is not None, "no fault is raised"),),
        lambda f: replace(f, fault=None),
    ),
    # Availability is handled by ConnectorMachine.change_availability (it answers).
    Event.SET_INOPERATIVE: EventRule((), lambda f: f),
    Event.SET_OPERATIVE: EventRule((), lambda f: f),
}
"""The event table: (event) -> (facts required, facts changed); see the theory of operation."""

EVENT_RULES_201: Final[Mapping[Event, EventRule]] = {
    **EVENT_RULES,
    Event.TRANSACTION_STARTED: EventRule(
        (
            _NO_TX,
            _OPERATIVE,
            _HEALTHY,
            (
                lambda f: f.plugged or f.authorized or f.parked,
                "neither a cable, an id token nor an EV in the parking bay is present",
            ),
            (lambda f: not f.finishing, "finishing: a new session starts with an id token"),
        ),
        # The reservation stays: only its holder's id token uses it (rule 4, H03 S1 #2).
        lambda f: replace(f, transaction=True, authorized=False, finishing=False),
    ),
    Event.HOLD: EventRule(
        (_OPERATIVE, _HEALTHY, (lambda f: not f.authorized, "a user is being served")),
        lambda f: replace(f, held=True),
    ),
    Event.RELEASE: EventRule((), lambda f: replace(f, held=False)),
}
"""2.0.1's event table: :data:`EVENT_RULES` except that a transaction may start on a reserved
connector (TxStartPoint EVConnected / ParkingBayOccupancy, before any id token) and keeps the
reservation until the holder's id token consumes it (rule 4; errata 2025-01 H03 S1/S2 #2),
and may start with only an EV in the parking bay (TxStartPoint ParkingBayOccupancy, rule
10); and EVSEs are held for reservations of an unspecified EVSE (``HOLD`` / ``RELEASE``,
rule 11)."""


# --- status tables ---------------------------------------------------------------------------

StatusT = TypeVar("StatusT", S16, S201)
Row = tuple[Callable[[Facts], bool], StatusT]

STATUS_TABLE_16: Final[tuple[Row[S16], ...]] = (
    (lambda f: f.fault is not None, S16.FAULTED),
    (lambda f: f.inoperative and not f.transaction, S16.UNAVAILABLE),
    (lambda f: f.transaction and f.evse_suspended, S16.SUSPENDED_EVSE),
    (lambda f: f.transaction and f.ev_drawing, S16.CHARGING),
    (lambda f: f.transaction, S16.SUSPENDED_EV),
    (lambda f: f.finishing and (f.plugged or f.parked), S16.FINISHING),
    (lambda f: f.reserved and not f.authorized, S16.RESERVED),
    (lambda f: f.plugged or f.authorized or f.parked, S16.PREPARING),
    (lambda f: True, S16.AVAILABLE),
)
"""OCPP 1.6 §4.9 ChargePointStatus from the facts: the first row that holds."""

STATUS_TABLE_201: Final[tuple[Row[S201], ...]] = (
    (lambda f: f.fault is not None, S201.FAULTED),
    (lambda f: f.inoperative and not f.transaction, S201.UNAVAILABLE),
    (lambda f: f.reserved or f.held, S201.RESERVED),
    (lambda f: f.plugged or f.parked, S201.OCCUPIED),
    (lambda f: True, S201.AVAILABLE),
)
"""OCPP 2.0.1 ConnectorStatusEnumType from the facts (G01; rules 4, 8 and 11): Reserved until
the reservation is used or ends, even with a cable in (H03 S1 #2), and while held for the
reservations of an unspecified EVSE (H01); Occupied while a cable is in
or a bay sensor detects an EV (rule 10); neither an id token nor a transaction alone occupies
a connector (H03 S1: Occupied "when cable is connected")."""

_ORDER_16 = (
    "Available Preparing Charging SuspendedEV SuspendedEVSE Finishing Reserved Unavailable Faulted"
)
_ALLOWED_16 = {
    "A": "2345789",
    "B": "134569",
    "C": "145689",
    "D": "135689",
    "E": "134689",
    "F": "1289",
    "G": "1289",
    "H": "123459",
    "I": "12345678",
}
SPEC_TRANSITIONS_16: Final[frozenset[tuple[S16, S16]]] = frozenset(
    (S16(_ORDER_16.split()[ord(row) - ord("A")]), S16(_ORDER_16.split()[int(col) - 1]))
    for row, cols in _ALLOWED_16.items()
    for col in cols
)
"""The transitions of the OCPP 1.6 §4.9 table (rows A..I = from, columns 1..9 = to, in the
order Available, Preparing, Charging, SuspendedEV, SuspendedEVSE, Finishing, Reserved,
Unavailable, Faulted); e.g. A2 = Available -> Preparing. No B7, B8, F3..F7, G3..G7, H6, H7."""


def status_from(table: tuple[Row[StatusT], ...], facts: Facts) -> StatusT:
    """The status the table gives for these facts (the first row whose condition holds)."""
    for condition, status in table:
        if condition(facts):
            return status
    raise AssertionError("a status table ends with an unconditional row")  # pragma: no cover


@dataclass(frozen=True, slots=True)
class StatusChange(Generic[StatusT]):
    """One reported status change (effect: send a StatusNotification)."""

    previous: StatusT
    status: StatusT


RequestT = TypeVar("RequestT", v16.StatusNotificationRequest, v201.StatusNotificationRequest)


@dataclass(frozen=True, slots=True)
class Outcome(Generic[StatusT, RequestT]):
    """What one event produced: the effects the runtime carries out, in order."""

    changes: tuple[StatusChange[StatusT], ...] = ()
    notifications: tuple[RequestT, ...] = ()
    """The StatusNotification payloads to send, one per change, in order."""
    transaction_due: bool = False
    """Cable and id token are both present, no transaction yet: start one (1.6 §4.8,
    2.0.1 E01-E03)."""
    reservation_cancelled: bool = False
    """A reservation ended because the connector became Unavailable (rule 3)."""
    availability: AvailabilityAnswer | None = None
    """The answer to a ChangeAvailability (only for SET_OPERATIVE / SET_INOPERATIVE)."""


class ConnectorMachine(Generic[StatusT, RequestT]):
    """One connector's facts and reported status; version-specific subclasses build the
    StatusNotification payload. Not thread-safe; one per connector."""

    table: tuple[Row[StatusT], ...]
    rules: Mapping[Event, EventRule] = EVENT_RULES
    """The event table this version follows (:data:`EVENT_RULES` or :data:`EVENT_RULES_201`)."""

    def __init__(self, facts: Facts | None = None) -> None:
        self._facts = facts if facts is not None else Facts()
        self._status: StatusT = status_from(self.table, self._facts)

    @property
    def facts(self) -> Facts:
        return self._facts

    @property
    def status(self) -> StatusT:
        """The status last reported (or to report at boot, 1.6 errata 4.0 / 2.0.1 B01)."""
        return self._status

    def _busy(self, facts: Facts) -> bool:
        """A ChangeAvailability is scheduled rather than applied while this holds (rule 2)."""
        return facts.transaction

    def _request(self, status: StatusT, now: datetime.datetime) -> RequestT:
        raise NotImplementedError

    def _check_error_code(self, error_code: str) -> None:
        """Raise ValueError for a fault code the version cannot report."""

    def _may_skip(self, previous: StatusT, final: StatusT) -> bool:
        """Whether an event's own status change may go unreported when a scheduled
        availability change applies right after it (a direct previous -> final is allowed)."""
        return True

    def notification(self, now: datetime.datetime) -> RequestT:
        """The StatusNotification payload for the current status (boot, TriggerMessage)."""
        return self._request(self._status, now)

    def refusal(self, event: Event) -> str | None:
        """Why ``event`` would be refused now, or None if it would be accepted."""
        for predicate, reason in self.rules[event].requires:
            if not predicate(self._facts):
                return reason
        return None

    def accepts(self, event: Event) -> bool:
        """Whether :meth:`handle` would accept ``event`` now (it never raises)."""
        return self.refusal(event) is None

    def handle(
        self, event: Event, *, now: datetime.datetime, error_code: str = "OtherError"
    ) -> Outcome[StatusT, RequestT]:
        """Feed one event; return its effects. Raises :class:`InvalidEvent` when refused.

        ``error_code`` is the fault's code for ``FAULT_RAISED`` (1.6 ChargePointErrorCode
        spelling; 2.0.1 reports faults by NotifyEvent, the runtime's job).
        """
        if event is Event.SET_INOPERATIVE or event is Event.SET_OPERATIVE:
            return self.change_availability(operative=event is Event.SET_OPERATIVE, now=now)
        reason = self.refusal(event)
        if reason is not None:
            raise InvalidEvent(event, reason)
        before = self._facts
        after = self.rules[event].apply(before)
        if event is Event.FAULT_RAISED:
            self._check_error_code(error_code)
            after = replace(after, fault=error_code)
        return self._commit(before, after, now, availability=None)

    def change_availability(
        self, *, operative: bool, now: datetime.datetime
    ) -> Outcome[StatusT, RequestT]:
        """ChangeAvailability for this connector: ``Accepted`` (applied now, or already so)
        or ``Scheduled`` (applied when the connector is no longer busy, rule 2)."""
        before = self._facts
        target = not operative
        if self._busy(before):
            if before.inoperative == target:
                after = replace(before, scheduled=None)
                answer = AvailabilityAnswer.ACCEPTED
            else:
                after = replace(before, scheduled=target)
                answer = AvailabilityAnswer.SCHEDULED
        else:
            after = replace(before, scheduled=target)
            answer = AvailabilityAnswer.ACCEPTED
        return self._commit(before, after, now, availability=answer)

    def _commit(
        self,
        before: Facts,
        after: Facts,
        now: datetime.datetime,
        *,
        availability: AvailabilityAnswer | None,
    ) -> Outcome[StatusT, RequestT]:
        steps = [after]
        cancelled = False
        if after.scheduled is not None and not self._busy(after):
            applied = replace(after, inoperative=after.scheduled, scheduled=None)
            if applied.inoperative and not after.inoperative:
                cancelled = applied.reserved
                applied = replace(
                    applied, reserved=False, held=False, finishing=False, authorized=False
                )
            steps.append(applied)
        statuses = [status_from(self.table, facts) for facts in steps]
        if len(statuses) == 2 and self._may_skip(self._status, statuses[1]):
            del statuses[0]  # report the applied change directly (1.6 C8 rather than C6, F8)
        changes: list[StatusChange[StatusT]] = []
        status = self._status
        for new in statuses:
            if new != status:
                changes.append(StatusChange(status, new))
                status = new
        self._facts = steps[-1]
        self._status = status
        due = _transaction_due(self._facts) and not _transaction_due(before)
        return Outcome(
            changes=tuple(changes),
            notifications=tuple(self._request(c.status, now) for c in changes),
            transaction_due=due,
            reservation_cancelled=cancelled,
            availability=availability,
        )


def _fault_code_16(error_code: str) -> v16.ChargePointErrorCode:
    """A 1.6 fault's errorCode: a ChargePointErrorCode other than NoError."""
    code = v16.ChargePointErrorCode(error_code)  # ValueError for an unknown spelling
    if code is v16.ChargePointErrorCode.NO_ERROR:
        raise ValueError("a fault needs an error code other than NoError")
    return code


def _transaction_due(f: Facts) -> bool:
    return (
        f.plugged and f.authorized and not f.transaction and not f.inoperative and f.fault is None
    )


class Connector16(ConnectorMachine[S16, v16.StatusNotificationRequest]):
    """An OCPP 1.6 connector (connectorId >= 1)."""

    table = STATUS_TABLE_16

    def __init__(self, connector_id: int, facts: Facts | None = None) -> None:
        if connector_id < 1:
            raise ValueError(
                f"a 1.6 connector id is >= 1 (0 is the charge point), got {connector_id}"
            )
        self.connector_id = connector_id
        super().__init__(facts)

    def _busy(self, facts: Facts) -> bool:
        # rule 2: no Preparing -> Unavailable in 1.6 §4.9, so Preparing is busy too
        return facts.transaction or (
            not facts.inoperative
            and status_from(STATUS_TABLE_16, replace(facts, fault=None)) is S16.PREPARING
        )

    def _check_error_code(self, error_code: str) -> None:
        _fault_code_16(error_code)

    def _may_skip(self, previous: S16, final: S16) -> bool:
        return previous == final or (previous, final) in SPEC_TRANSITIONS_16

    def _request(self, status: S16, now: datetime.datetime) -> v16.StatusNotificationRequest:
        fault = self._facts.fault
        return v16.StatusNotificationRequest(
            connector_id=self.connector_id,
            error_code=v16.ChargePointErrorCode(fault)
            if status is S16.FAULTED and fault is not None
            else v16.ChargePointErrorCode.NO_ERROR,
            status=status,
            timestamp=now,
        )


class Connector201(ConnectorMachine[S201, v201.StatusNotificationRequest]):
    """An OCPP 2.0.1 connector of an EVSE (both ids >= 1)."""

    table = STATUS_TABLE_201
    rules = EVENT_RULES_201

    def __init__(self, evse_id: int, connector_id: int, facts: Facts | None = None) -> None:
        if evse_id < 1 or connector_id < 1:
            raise ValueError(f"2.0.1 evse and connector ids are >= 1, got {evse_id}/{connector_id}")
        self.evse_id = evse_id
        self.connector_id = connector_id
        super().__init__(facts)

    def _request(self, status: S201, now: datetime.datetime) -> v201.StatusNotificationRequest:
        return v201.StatusNotificationRequest(
            timestamp=now,
            connector_status=status,
            evse_id=self.evse_id,
            connector_id=self.connector_id,
        )


# --- whole stations --------------------------------------------------------------------------


class ChargePoint16:
    """An OCPP 1.6 charge point: connector 0 (the charge point itself) and connectors 1..n.

    Availability is kept per level (rule 7): a connector is inoperative when the charge point
    or the connector itself was set Inoperative (so a connector set Operative stays
    Unavailable while the whole charge point is Inoperative, as 2.0.1 G03/G04 require and
    as test partners expect on 1.6, EVerest/libocpp#812).
    """

    def __init__(self, connectors: Mapping[int, Connector16]) -> None:
        if not connectors:
            raise ValueError("a charge point has at least one connector")
        self.connectors: dict[int, Connector16] = dict(connectors)
        self.fault: str | None = None
        """A station-wide fault's error code (connector 0 Faulted)."""
        self.inoperative = False
        """Connector 0's availability as applied (it reports Unavailable)."""
        self.scheduled: bool | None = None
        """A connector-0 ChangeAvailability waiting for every connector to be idle."""
        self._requested_inoperative = False
        self._own_inoperative: dict[int, bool] = dict.fromkeys(self.connectors, False)
        self._status = S16.AVAILABLE

    @classmethod
    def with_connectors(cls, count: int) -> ChargePoint16:
        if count < 1:
            raise ValueError(f"a charge point has at least one connector, got {count}")
        return cls({i: Connector16(i) for i in range(1, count + 1)})

    @property
    def status(self) -> S16:
        """Connector 0's status: Available, Unavailable or Faulted only (1.6 §4.9)."""
        return self._status

    def __iter__(self) -> Iterator[Connector16]:
        return iter(self.connectors[i] for i in sorted(self.connectors))

    def connector(self, connector_id: int) -> Connector16:
        try:
            return self.connectors[connector_id]
        except KeyError:
            raise ValueError(f"no connector {connector_id}") from None

    def notification(self, now: datetime.datetime) -> v16.StatusNotificationRequest:
        """Connector 0's StatusNotification payload."""
        return v16.StatusNotificationRequest(
            connector_id=0,
            error_code=v16.ChargePointErrorCode(self.fault)
            if self.fault is not None
            else v16.ChargePointErrorCode.NO_ERROR,
            status=self._status,
            timestamp=now,
        )

    def boot_notifications(self, now: datetime.datetime) -> list[v16.StatusNotificationRequest]:
        """After an accepted BootNotification: connector 0 and every connector (1.6 errata 4.0)."""
        return [self.notification(now), *(c.notification(now) for c in self)]

    def _status_now(self) -> S16:
        if self.fault is not None:
            return S16.FAULTED
        return S16.UNAVAILABLE if self.inoperative else S16.AVAILABLE

    def _settle(self, now: datetime.datetime) -> list[v16.StatusNotificationRequest]:
        if self.scheduled is not None and not any(c.facts.scheduled is not None for c in self):
            self.inoperative, self.scheduled = self.scheduled, None
        new = self._status_now()
        if new == self._status:
            return []
        self._status = new
        return [self.notification(now)]

    def handle(
        self,
        connector_id: int,
        event: Event,
        *,
        now: datetime.datetime,
        error_code: str = "OtherError",
    ) -> list[v16.StatusNotificationRequest]:
        """Feed an event to connector ``connector_id`` (0: station-wide fault or availability);
        return the StatusNotifications to send, connector 0's last. Raises
        :class:`InvalidEvent` when refused."""
        return self.handle_outcome(connector_id, event, now=now, error_code=error_code)[1]

    def handle_outcome(
        self,
        connector_id: int,
        event: Event,
        *,
        now: datetime.datetime,
        error_code: str = "OtherError",
    ) -> tuple[
        list[Outcome[S16, v16.StatusNotificationRequest]], list[v16.StatusNotificationRequest]
    ]:
        """Like :meth:`handle`, also returning each affected connector's :class:`Outcome`."""
        outcomes: list[Outcome[S16, v16.StatusNotificationRequest]] = []
        if event is Event.SET_INOPERATIVE or event is Event.SET_OPERATIVE:
            operative = event is Event.SET_OPERATIVE
            outcomes = self._change_availability(connector_id, operative=operative, now=now)
        elif connector_id != 0:
            outcomes.append(
                self.connector(connector_id).handle(event, now=now, error_code=error_code)
            )
        elif event is Event.FAULT_RAISED:
            _fault_code_16(error_code)
            self.fault = error_code
        elif event is Event.FAULT_CLEARED:
            if self.fault is None:
                raise InvalidEvent(event, "no fault is raised")
            self.fault = None
        else:
            raise InvalidEvent(event, "connector 0 takes only faults and availability changes")
        sent = [n for o in outcomes for n in o.notifications]
        return outcomes, sent + self._settle(now)

    def _change_availability(
        self, connector_id: int, *, operative: bool, now: datetime.datetime
    ) -> list[Outcome[S16, v16.StatusNotificationRequest]]:
        if connector_id == 0:
            self._requested_inoperative = not operative
            self.scheduled = not operative
            affected = list(self)
        else:
            connector = self.connector(connector_id)
            self._own_inoperative[connector_id] = not operative
            affected = [connector]
        return [
            c.change_availability(
                operative=not (
                    self._requested_inoperative or self._own_inoperative[c.connector_id]
                ),
                now=now,
            )
            for c in affected
        ]

    def change_availability(
        self, connector_id: int, *, operative: bool, now: datetime.datetime
    ) -> tuple[AvailabilityAnswer, list[v16.StatusNotificationRequest]]:
        """1.6 ChangeAvailability: the answer and the StatusNotifications to send."""
        event = Event.SET_OPERATIVE if operative else Event.SET_INOPERATIVE
        outcomes, sent = self.handle_outcome(connector_id, event, now=now)
        scheduled = any(o.availability is AvailabilityAnswer.SCHEDULED for o in outcomes)
        return (AvailabilityAnswer.SCHEDULED if scheduled else AvailabilityAnswer.ACCEPTED), sent


class Station201:
    """An OCPP 2.0.1 station: EVSEs 1..n, each with connectors 1..m.

    Availability (G03/G04) is kept per level; a connector applies the most restrictive of
    station, EVSE and its own.
    """

    def __init__(self, evses: Mapping[int, int]) -> None:
        """``evses`` maps each EVSE id to its number of connectors."""
        if not evses or any(count < 1 for count in evses.values()):
            raise ValueError(f"every EVSE needs at least one connector, got {dict(evses)}")
        self.connectors: dict[tuple[int, int], Connector201] = {
            (e, c): Connector201(e, c)
            for e, count in sorted(evses.items())
            for c in range(1, count + 1)
        }
        self._station_inoperative = False
        self._evse_inoperative: dict[int, bool] = dict.fromkeys(evses, False)
        self._connector_inoperative: dict[tuple[int, int], bool] = dict.fromkeys(
            self.connectors, False
        )

    def connector(self, evse_id: int, connector_id: int = 1) -> Connector201:
        try:
            return self.connectors[(evse_id, connector_id)]
        except KeyError:
            raise ValueError(f"no connector {connector_id} on EVSE {evse_id}") from None

    def boot_notifications(self, now: datetime.datetime) -> list[v201.StatusNotificationRequest]:
        """After an accepted BootNotification: every connector's status (2.0.1 B01, G01)."""
        return [c.notification(now) for _, c in sorted(self.connectors.items())]

    def handle(
        self, evse_id: int, connector_id: int, event: Event, *, now: datetime.datetime
    ) -> Outcome[S201, v201.StatusNotificationRequest]:
        """Feed a connector event (use :meth:`change_availability` for availability)."""
        if event is Event.SET_INOPERATIVE or event is Event.SET_OPERATIVE:
            raise InvalidEvent(event, "use Station201.change_availability")
        return self.connector(evse_id, connector_id).handle(event, now=now)

    def change_availability(
        self,
        *,
        operative: bool,
        now: datetime.datetime,
        evse_id: int | None = None,
        connector_id: int | None = None,
    ) -> tuple[AvailabilityAnswer, list[v201.StatusNotificationRequest]]:
        """2.0.1 ChangeAvailability (G03 station/EVSE, G04 connector): the answer and the
        StatusNotifications to send. ``Scheduled`` if any affected connector is in a
        transaction; it becomes Unavailable when that transaction ends."""
        if evse_id is None:
            if connector_id is not None:
                raise ValueError("a connector id needs an EVSE id")
            self._station_inoperative = not operative
            keys = list(self.connectors)
        elif connector_id is None:
            if evse_id not in self._evse_inoperative:
                raise ValueError(f"no EVSE {evse_id}")
            self._evse_inoperative[evse_id] = not operative
            keys = [k for k in self.connectors if k[0] == evse_id]
        else:
            self.connector(evse_id, connector_id)
            self._connector_inoperative[(evse_id, connector_id)] = not operative
            keys = [(evse_id, connector_id)]
        answers: list[AvailabilityAnswer] = []
        sent: list[v201.StatusNotificationRequest] = []
        for key in sorted(keys):
            effective = not (
                self._station_inoperative
                or self._evse_inoperative[key[0]]
                or self._connector_inoperative[key]
            )
            outcome = self.connectors[key].change_availability(operative=effective, now=now)
            if outcome.availability is not None:
                answers.append(outcome.availability)
            sent.extend(outcome.notifications)
        scheduled = AvailabilityAnswer.SCHEDULED in answers
        return (AvailabilityAnswer.SCHEDULED if scheduled else AvailabilityAnswer.ACCEPTED), sent
