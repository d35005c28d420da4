"""The TxStartPoint / TxStopPoint decision table (OCPP 2.0.1 E01 / E06), pure."""

from __future__ import annotations

import pytest

from ocppkit.station.tx_points import START_TRIGGER, Conditions, Point, TxPoints

NOTHING = Conditions()
CABLE = Conditions(plugged=True)
TOKEN = Conditions(authorized=True)
PATH = Conditions(plugged=True, authorized=True)
FLOWING = Conditions(plugged=True, authorized=True, energy=True)


def points(start: str, stop: str = "EVConnected,Authorized") -> TxPoints:
    return TxPoints.parse(start.split(","), stop.split(","))


@pytest.mark.parametrize(
    ("start", "before", "after", "cause", "trigger"),
    [
        # E01 S1-S6: each start point with its triggerReason
        ("ParkingBayOccupancy", NOTHING, CABLE, "CablePluggedIn", "EVDetected"),
        ("EVConnected", NOTHING, CABLE, "CablePluggedIn", "CablePluggedIn"),
        ("Authorized", NOTHING, TOKEN, "Authorized", "Authorized"),
        ("Authorized", NOTHING, TOKEN, "RemoteStart", "RemoteStart"),
        ("DataSigned", CABLE, PATH, "Authorized", "SignedDataReceived"),
        ("PowerPathClosed", CABLE, FLOWING, "Authorized", "Authorized"),
        ("PowerPathClosed", TOKEN, FLOWING, "CablePluggedIn", "CablePluggedIn"),
        ("EnergyTransfer", CABLE, FLOWING, "Authorized", "ChargingStateChanged"),
        # not reached
        ("PowerPathClosed", NOTHING, CABLE, "CablePluggedIn", None),
        ("PowerPathClosed", NOTHING, TOKEN, "Authorized", None),
        ("EnergyTransfer", CABLE, PATH, "Authorized", None),
        ("EVConnected", CABLE, PATH, "Authorized", None),
    ],
)
def test_start_point_and_trigger_e01(
    start: str, before: Conditions, after: Conditions, cause: str, trigger: str | None
) -> None:
    assert points(start).start_trigger(before, after, cause) == trigger


def test_first_start_point_in_session_order_wins_e01() -> None:
    """One happening reaching several configured points: the earliest in a session wins
    (a cable after the token reaches EVConnected before PowerPathClosed)."""
    tx = points("PowerPathClosed,EVConnected,EnergyTransfer")
    assert tx.start_point(TOKEN, FLOWING) is Point.EV_CONNECTED
    assert tx.start_trigger(TOKEN, FLOWING, "CablePluggedIn") == "CablePluggedIn"
    assert points("Authorized,EnergyTransfer").start_point(CABLE, FLOWING) is Point.AUTHORIZED


@pytest.mark.parametrize(
    ("stop", "before", "after", "ends"),
    [
        ("EVConnected", FLOWING, TOKEN, True),  # unplugged
        ("EVConnected", FLOWING, CABLE, False),  # deauthorized, cable stays (E07 alt.)
        ("Authorized", FLOWING, CABLE, True),  # E07 / E06.FR.04
        ("Authorized", FLOWING, TOKEN, False),  # unplugged, authorization kept (E10)
        ("PowerPathClosed", FLOWING, CABLE, True),
        ("PowerPathClosed", FLOWING, TOKEN, True),
        ("EnergyTransfer", FLOWING, PATH, True),  # E06 S6: the EV stopped drawing
        ("EnergyTransfer", PATH, CABLE, False),  # no energy was flowing
        ("ParkingBayOccupancy", CABLE, NOTHING, True),
        ("DataSigned", FLOWING, CABLE, False),  # no stop point (errata: E06.FR.05 removed)
        ("EVConnected", TOKEN, NOTHING, True),  # nothing left: cable nor authorization
        ("EVConnected", TOKEN, TOKEN, False),
    ],
)
def test_stop_when_a_held_stop_point_is_gone_e06(
    stop: str, before: Conditions, after: Conditions, ends: bool
) -> None:
    assert points("PowerPathClosed", stop).ends(before, after) is ends


def test_parse_skips_unknown_names_and_every_point_has_a_trigger_entry() -> None:
    tx = TxPoints.parse(["EVConnected", "Nonsense"], ["Authorized"])
    assert tx.start == frozenset({Point.EV_CONNECTED})
    assert tx.stop == frozenset({Point.AUTHORIZED})
    assert set(START_TRIGGER) == set(Point)


PARKED = Conditions(parked=True)
PARKED_CABLE = Conditions(parked=True, plugged=True)
PARKED_TOKEN = Conditions(parked=True, authorized=True)
PARKED_PATH = Conditions(parked=True, plugged=True, authorized=True)


def test_parking_bay_occupancy_holds_for_a_parked_or_connected_ev_evconnected_only_cable() -> None:
    """TxStartPointValues: ParkingBayOccupancy is an EV detected in the bay (a bay sensor, or
    its cable plugged in: a connected EV is in the bay); EVConnected is the cable alone, which
    a parked EV has not plugged in yet."""
    assert PARKED.holds(Point.PARKING_BAY_OCCUPANCY)
    assert CABLE.holds(Point.PARKING_BAY_OCCUPANCY)
    assert not NOTHING.holds(Point.PARKING_BAY_OCCUPANCY)
    assert not PARKED.holds(Point.EV_CONNECTED)
    assert PARKED_CABLE.holds(Point.EV_CONNECTED)
    assert not PARKED_TOKEN.holds(Point.POWER_PATH_CLOSED)  # no cable: the path stays open


@pytest.mark.parametrize(
    ("start", "before", "after", "cause", "trigger"),
    [
        # E01 S1 / E01.FR.01 (OCTT TC_E_12_CS): the EV drives in, Started EVDetected
        ("ParkingBayOccupancy", NOTHING, PARKED, "EVDetected", "EVDetected"),
        ("ParkingBayOccupancy,EVConnected", NOTHING, PARKED, "EVDetected", "EVDetected"),
        # the EV already in the bay: the cable reaches EVConnected, not ParkingBayOccupancy
        ("ParkingBayOccupancy", PARKED, PARKED_CABLE, "CablePluggedIn", None),
        ("EVConnected", PARKED, PARKED_CABLE, "CablePluggedIn", "CablePluggedIn"),
        # parking alone reaches no other point (the defaults start nothing)
        ("PowerPathClosed", NOTHING, PARKED, "EVDetected", None),
        ("EVConnected", NOTHING, PARKED, "EVDetected", None),
        ("Authorized", NOTHING, PARKED, "EVDetected", None),
        # an id token waiting with the EV in the bay: PowerPathClosed comes with the cable
        ("PowerPathClosed", PARKED_TOKEN, PARKED_PATH, "CablePluggedIn", "CablePluggedIn"),
    ],
)
def test_parking_start_points_e01_s1(
    start: str, before: Conditions, after: Conditions, cause: str, trigger: str | None
) -> None:
    assert points(start).start_trigger(before, after, cause) == trigger


@pytest.mark.parametrize(
    ("stop", "before", "after", "ends"),
    [
        # E06 S1 / E06.FR.01 (OCTT TC_E_19_CS): the EV left the bay
        ("ParkingBayOccupancy", PARKED, NOTHING, True),
        ("ParkingBayOccupancy", PARKED_TOKEN, TOKEN, True),
        # unplugged, the EV still in the bay: ParkingBayOccupancy still holds
        ("ParkingBayOccupancy", PARKED_CABLE, PARKED, False),
        ("EVConnected", PARKED_CABLE, PARKED, True),
        # nothing to wait for once the EV left: no cable, no authorization, no EV in the bay
        ("Authorized", PARKED, NOTHING, True),
        ("EVConnected", PARKED, NOTHING, True),
        # ... but an EV still in the bay may plug in again: the transaction waits for it
        ("Authorized", PARKED_CABLE, PARKED, False),
        # an authorization still there keeps it (TxStopPoint without ParkingBayOccupancy)
        ("EVConnected,Authorized", PARKED_TOKEN, TOKEN, False),
    ],
)
def test_parking_stop_points_e06_s1(
    stop: str, before: Conditions, after: Conditions, ends: bool
) -> None:
    assert points("ParkingBayOccupancy", stop).ends(before, after) is ends
