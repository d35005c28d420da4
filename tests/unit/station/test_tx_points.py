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
