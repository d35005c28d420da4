"""When an OCPP 2.0.1 transaction starts and ends: ``TxCtrlr.TxStartPoint`` / ``TxStopPoint``.

Why a module of its own: 2.0.1 lets the CSMS choose what *is* a transaction (E01 "Start
Transaction options", E06 "Stop Transaction options"): from the EV arriving in the bay to
the first energy flowing. The decision is pure (which conditions held before a happening
and after it), so it is kept here as a small table, apart from the messages.

Theory of operation
-------------------
Each point is a condition on one EVSE (:class:`Conditions`):

======================  =====================================================================
ParkingBayOccupancy     an EV is in the bay: the bay sensor detects one (``parked``, fed by
                        the emulated driver's ``park`` / ``leave_bay``), or its cable is
                        plugged in (a station without a sensor still sees the EV that is
                        connected to it)
EVConnected             the cable is plugged in (only the cable: an EV parked in the bay
                        is not connected yet)
Authorized              an id token is accepted (and not yet ended: same token again,
                        RequestStopTransaction, an invalid idTokenInfo, EVConnectionTimeOut)
PowerPathClosed         cable and authorization both there: the EVSE closes its contactor
DataSigned              the signed start value is read, which the emulated meter does the
                        moment the power path closes
EnergyTransfer          energy flows (the EV draws, the EVSE offers)
======================  =====================================================================

* **Start**: the transaction starts at the *first* configured start point that happens
  (E01.FR.01 ... FR.06 / E01 S1-S6). When one happening makes several true at once (a cable
  plugged in after the id token was accepted closes the power path too), the first in the
  physical order above wins; its ``triggerReason`` is :data:`START_TRIGGER` (PowerPathClosed
  takes the trigger of what closed the path: CablePluggedIn, Authorized or RemoteStart).
* **Stop**: the transaction ends when the *first* configured stop-point condition that held
  is no longer true (E06.FR.01 ... FR.07 / E06 S1-S6). DataSigned is no stop point (errata
  2025-02 removed E06.FR.05: a signing meter does not "stop signing"), so it is ignored
  there. A transaction with neither a cable, an authorization nor an EV in the bay left has
  nothing to wait for and ends too (e.g. TxStopPoint=Authorized, started by a cable that
  was never authorized, then unplugged); while the EV is still in the bay it may plug in
  again, so the transaction waits for it to leave.

Why ParkingBayOccupancy holds on the cable too: the 2.0.1 value means "an object, probably an
EV, is detected in the parking/charging bay" (TxStartPointValues), and an EV whose cable is
plugged in is in the bay whether or not a sensor says so; EVConnected is the cable connected
between EV and EVSE, which a parked EV is not yet. So on a station with a sensor the
EV driving in starts the transaction (E01 S1, E01.FR.01, triggerReason EVDetected: OCTT
TC_E_12_CS) before the cable, and the EV driving out ends it (E06 S1, E06.FR.01: OCTT
TC_E_19_CS, triggerReason EVDeparted); without one, the cable stands for both.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["START_TRIGGER", "Conditions", "Point", "TxPoints"]


class Point(enum.StrEnum):
    """A TxStartPoint / TxStopPoint value, in the physical order of a charging session."""

    PARKING_BAY_OCCUPANCY = "ParkingBayOccupancy"
    EV_CONNECTED = "EVConnected"
    AUTHORIZED = "Authorized"
    POWER_PATH_CLOSED = "PowerPathClosed"
    DATA_SIGNED = "DataSigned"
    ENERGY_TRANSFER = "EnergyTransfer"


START_TRIGGER: dict[Point, str | None] = {
    Point.PARKING_BAY_OCCUPANCY: "EVDetected",
    Point.EV_CONNECTED: "CablePluggedIn",
    Point.AUTHORIZED: None,  # Authorized, or RemoteStart for RequestStartTransaction
    Point.POWER_PATH_CLOSED: None,  # whatever closed it
    Point.DATA_SIGNED: "SignedDataReceived",
    Point.ENERGY_TRANSFER: "ChargingStateChanged",
}
"""The Started event's triggerReason per start point (None: the happening's own trigger)."""


@dataclass(frozen=True, slots=True)
class Conditions:
    """What holds on one EVSE, as far as transaction points are concerned."""

    plugged: bool = False
    parked: bool = False
    """A bay sensor detects an EV in the parking bay (:attr:`.status.Facts.parked`)."""
    authorized: bool = False
    energy: bool = False
    """Energy flows, or would the moment a transaction allows it (before one starts)."""

    def holds(self, point: Point) -> bool:
        if point is Point.PARKING_BAY_OCCUPANCY:
            return self.parked or self.plugged
        if point is Point.EV_CONNECTED:
            return self.plugged
        if point is Point.AUTHORIZED:
            return self.authorized
        if point in (Point.POWER_PATH_CLOSED, Point.DATA_SIGNED):
            return self.plugged and self.authorized
        return self.energy


@dataclass(frozen=True, slots=True)
class TxPoints:
    """The configured start and stop points (see the module docstring)."""

    start: frozenset[Point]
    stop: frozenset[Point]

    @classmethod
    def parse(cls, start: Iterable[str], stop: Iterable[str]) -> TxPoints:
        """From the variables' members; unknown names are skipped (the device model only
        accepts the valuesList, so none come from SetVariables)."""
        known = {p.value for p in Point}
        return cls(
            frozenset(Point(s) for s in start if s in known),
            frozenset(Point(s) for s in stop if s in known),
        )

    def start_point(self, before: Conditions, after: Conditions) -> Point | None:
        """The start point a happening reached (None: no transaction starts)."""
        for point in Point:
            if point in self.start and after.holds(point) and not before.holds(point):
                return point
        return None

    def start_trigger(self, before: Conditions, after: Conditions, cause: str) -> str | None:
        """The Started event's triggerReason, ``cause`` being the happening's own trigger
        (CablePluggedIn, Authorized, RemoteStart); None: no transaction starts."""
        point = self.start_point(before, after)
        if point is None:
            return None
        return START_TRIGGER[point] or cause

    def ends(self, before: Conditions, after: Conditions) -> bool:
        """Whether the running transaction ends when ``before`` becomes ``after``."""
        if not (after.plugged or after.authorized or after.parked):
            return True
        return any(
            point is not Point.DATA_SIGNED and before.holds(point) and not after.holds(point)
            for point in self.stop
        )
