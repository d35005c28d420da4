"""Charging-profile evaluation: OCPP 1.6 §3.13 (smart charging: stack levels, purposes,
kinds, recurrence), §5.16 SetChargingProfile, the ChargingProfile, ChargingSchedule and
ChargingSchedulePeriod types (numberPhases default 3); OCPP 2.0.1 K01 (SetChargingProfile),
its purposes incl. ChargingStationExternalConstraints.

Profiles are built from wire JSON through ``validate_payload``, as the station will get them.
"""

from __future__ import annotations

import dataclasses
import datetime
import itertools
import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ocppkit.messages import v16, v201
from ocppkit.protocol import validate_payload
from ocppkit.station.charging_profile import (
    Kind,
    Period,
    Profile,
    ProfileSet,
    Purpose,
    Recurrency,
    Unit,
    from_v16,
    from_v201,
)

T0 = datetime.datetime(2026, 11, 27, 8, 0, tzinfo=datetime.UTC)
MIN = datetime.timedelta(minutes=1)


def iso(t: datetime.datetime) -> str:
    return t.isoformat().replace("+00:00", "Z")


def profile16(
    pid: int,
    purpose: str,
    periods: list[tuple[int, float]],
    *,
    level: int = 0,
    kind: str = "Absolute",
    unit: str = "W",
    start: datetime.datetime | None = T0,
    **extra: Any,
) -> Profile:
    schedule: dict[str, Any] = {
        "chargingRateUnit": unit,
        "chargingSchedulePeriod": [{"startPeriod": s, "limit": lim} for s, lim in periods],
    }
    if start is not None:
        schedule["startSchedule"] = iso(start)
    for key in ("duration", "numberPhases"):
        if key in extra:
            value = extra.pop(key)
            if key == "duration":
                schedule["duration"] = value
            else:
                for p in schedule["chargingSchedulePeriod"]:
                    p["numberPhases"] = value
    body = {
        "chargingProfileId": pid,
        "stackLevel": level,
        "chargingProfilePurpose": purpose,
        "chargingProfileKind": kind,
        "chargingSchedule": schedule,
        **{k: iso(v) if isinstance(v, datetime.datetime) else v for k, v in extra.items()},
    }
    payload = json.dumps({"connectorId": 1, "csChargingProfiles": body}).encode()
    request = validate_payload("1.6", "SetChargingProfile", payload)
    assert isinstance(request, v16.SetChargingProfileRequest)
    return from_v16(request.cs_charging_profiles)


def limit(profiles: ProfileSet, t: datetime.datetime, **kw: Any) -> float | None:
    return profiles.limit_w(t, voltage=230, phases=3, **kw)


def test_absolute_profile_periods() -> None:
    """1.6 ChargingSchedulePeriod.startPeriod: the last period whose startPeriod <= elapsed
    seconds; none before the start."""
    ps = ProfileSet([profile16(1, "TxDefaultProfile", [(0, 11000), (600, 7000), (1800, 3000)])])
    assert limit(ps, T0 - MIN) is None
    assert limit(ps, T0) == 11000
    assert limit(ps, T0 + 9 * MIN) == 11000
    assert limit(ps, T0 + 10 * MIN) == 7000
    assert limit(ps, T0 + 5 * 60 * MIN) == 3000


def test_duration_ends_the_schedule() -> None:
    """1.6 ChargingSchedule.duration: after it, the profile no longer limits."""
    ps = ProfileSet([profile16(1, "TxDefaultProfile", [(0, 5000)], duration=3600)])
    assert limit(ps, T0 + 59 * MIN) == 5000
    assert limit(ps, T0 + 60 * MIN) is None


def test_validity_window_valid_from_valid_to() -> None:
    """1.6 ChargingProfile validFrom/validTo: outside the window the profile does not count."""
    ps = ProfileSet(
        [profile16(1, "TxDefaultProfile", [(0, 5000)], validFrom=T0 + MIN, validTo=T0 + 10 * MIN)]
    )
    assert limit(ps, T0) is None
    assert limit(ps, T0 + MIN) == 5000
    assert limit(ps, T0 + 10 * MIN) is None


def test_highest_stack_level_prevails_and_lower_shows_through_3_13_2() -> None:
    """1.6 §3.13.2: the valid profile with the highest stackLevel prevails; where it does not
    cover the time (its duration ended), the lower one applies again."""
    low = profile16(1, "TxDefaultProfile", [(0, 11000)], level=0)
    high = profile16(2, "TxDefaultProfile", [(0, 4000)], level=5, duration=600)
    ps = ProfileSet([low, high])
    assert limit(ps, T0 + MIN) == 4000
    assert limit(ps, T0 + 11 * MIN) == 11000


def test_tx_profile_overrides_default_only_during_its_transaction_3_13_1() -> None:
    """1.6 §3.13.1: TxProfile overrides TxDefaultProfile for its transaction; without a
    transaction (or for another one) it does not apply. Relative: starts with the tx."""
    default = profile16(1, "TxDefaultProfile", [(0, 11000)])
    tx = profile16(
        2, "TxProfile", [(0, 2000), (300, 6000)], kind="Relative", start=None, transactionId=7
    )
    ps = ProfileSet([default, tx])
    t = T0 + 30 * MIN
    assert limit(ps, t) == 11000
    assert limit(ps, t, tx_start=t, transaction_id="8") == 11000
    assert limit(ps, t, tx_start=t, transaction_id="7") == 2000
    assert limit(ps, t + 5 * MIN, tx_start=t, transaction_id="7") == 6000
    ps.end_transaction("7")
    assert limit(ps, t, tx_start=t, transaction_id="7") == 11000


def test_station_max_caps_whatever_the_tx_profiles_say_3_13() -> None:
    """1.6 §3.13: ChargePointMaxProfile limits the whole charge point; the lower wins."""
    ps = ProfileSet(
        [
            profile16(1, "TxDefaultProfile", [(0, 11000)]),
            profile16(2, "ChargePointMaxProfile", [(0, 7400)]),
        ]
    )
    active = ps.active_limit(T0, voltage=230, phases=3)
    assert active is not None
    assert active.watts == 7400 and set(active.profile_ids) == {1, 2}
    assert (
        ProfileSet([profile16(3, "ChargePointMaxProfile", [(0, 7400)])]).limit_w(
            T0, voltage=230, phases=3
        )
        == 7400
    )


def test_amperes_convert_with_voltage_and_number_phases() -> None:
    """1.6 ChargingSchedulePeriod: a limit in A per phase; numberPhases defaults to 3 and
    cannot exceed the supply's phases."""
    ps = ProfileSet([profile16(1, "TxDefaultProfile", [(0, 16)], unit="A")])
    assert ps.limit_w(T0, voltage=230, phases=3) == pytest.approx(16 * 230 * 3)
    assert ps.limit_w(T0, voltage=230, phases=1) == pytest.approx(16 * 230)
    assert ps.limit_a(T0, voltage=230, phases=3) == pytest.approx(16)
    one = ProfileSet([profile16(1, "TxDefaultProfile", [(0, 16)], unit="A", numberPhases=1)])
    assert one.limit_w(T0, voltage=230, phases=3) == pytest.approx(16 * 230)
    watts = ProfileSet([profile16(1, "TxDefaultProfile", [(0, 6900)])])
    assert watts.limit_a(T0, voltage=230, phases=3) == pytest.approx(10)


def test_recurring_daily_repeats_every_day() -> None:
    """1.6 ChargingProfile recurrencyKind Daily: the schedule restarts at startSchedule's time
    each day."""
    ps = ProfileSet(
        [
            profile16(
                1,
                "TxDefaultProfile",
                [(0, 3000), (8 * 3600, 11000)],
                kind="Recurring",
                recurrencyKind="Daily",
                start=T0,
            )
        ]
    )
    assert limit(ps, T0 + datetime.timedelta(days=3, hours=1)) == 3000
    assert limit(ps, T0 + datetime.timedelta(days=3, hours=9)) == 11000
    assert limit(ps, T0 - datetime.timedelta(hours=1)) == 11000  # 07:00: the previous day's


def test_recurring_weekly() -> None:
    """1.6 ChargingProfile recurrencyKind Weekly: restarts every 7 days."""
    ps = ProfileSet(
        [
            profile16(
                1,
                "TxDefaultProfile",
                [(0, 1000), (86400, 9000)],
                kind="Recurring",
                recurrencyKind="Weekly",
            )
        ]
    )
    assert limit(ps, T0 + datetime.timedelta(days=7, hours=2)) == 1000
    assert limit(ps, T0 + datetime.timedelta(days=9)) == 9000


def test_recurring_without_recurrency_is_rejected() -> None:
    with pytest.raises(ValueError, match="Recurring"):
        profile16(1, "TxDefaultProfile", [(0, 1)], kind="Recurring")


def test_install_replaces_same_purpose_and_stack_level_5_16() -> None:
    """1.6 §5.16: a new profile with the same purpose and stackLevel replaces the old one."""
    ps = ProfileSet([profile16(1, "TxDefaultProfile", [(0, 11000)], level=2)])
    ps.install(profile16(2, "TxDefaultProfile", [(0, 5000)], level=2))
    assert [p.id for p in ps] == [2]
    assert limit(ps, T0) == 5000
    assert ps.clear(purpose=Purpose.TX_DEFAULT) == [2]
    assert len(ps) == 0


def test_v201_profile_and_external_constraints_k01() -> None:
    """2.0.1 K01: ChargingStationMaxProfile and ChargingStationExternalConstraints both cap a
    TxDefaultProfile; the first chargingSchedule is used."""

    def profile201(pid: int, purpose: str, lim: float, unit: str = "W") -> Profile:
        body = {
            "evseId": 0,
            "chargingProfile": {
                "id": pid,
                "stackLevel": 0,
                "chargingProfilePurpose": purpose,
                "chargingProfileKind": "Absolute",
                "chargingSchedule": [
                    {
                        "id": 1,
                        "startSchedule": iso(T0),
                        "chargingRateUnit": unit,
                        "chargingSchedulePeriod": [{"startPeriod": 0, "limit": lim}],
                    }
                ],
            },
        }
        request = validate_payload("2.0.1", "SetChargingProfile", json.dumps(body).encode())
        assert isinstance(request, v201.SetChargingProfileRequest)
        return from_v201(request.charging_profile)

    ps = ProfileSet(
        [
            profile201(1, "TxDefaultProfile", 32, unit="A"),
            profile201(2, "ChargingStationMaxProfile", 15000),
            profile201(3, "ChargingStationExternalConstraints", 9000),
        ]
    )
    assert ps.limit_w(T0, voltage=230, phases=3) == 9000
    ps.clear(profile_id=3)
    assert ps.limit_w(T0, voltage=230, phases=3) == 15000
    ps.clear(profile_id=2)
    assert ps.limit_w(T0, voltage=230, phases=3) == pytest.approx(32 * 230 * 3)


def test_bad_arguments_are_rejected() -> None:
    with pytest.raises(ValueError, match="increase"):
        Profile(
            id=1,
            stack_level=0,
            purpose=Purpose.TX_DEFAULT,
            kind=Kind.ABSOLUTE,
            unit=Unit.W,
            periods=(Period(0, 1), Period(0, 2)),
            start_schedule=T0,
        )
    with pytest.raises(ValueError, match="no schedule period"):
        Profile(
            id=1, stack_level=0, purpose=Purpose.TX, kind=Kind.RELATIVE, unit=Unit.W, periods=()
        )
    with pytest.raises(ValueError, match="voltage"):
        ProfileSet().limit_w(T0, voltage=0, phases=3)


@given(
    limits=st.lists(
        st.tuples(
            st.sampled_from(["TxDefaultProfile", "ChargePointMaxProfile"]),
            st.integers(0, 5),
            st.integers(0, 500_000).map(lambda x: x / 10),
        ),
        min_size=1,
        max_size=6,
    ),
    minutes=st.integers(0, 600),
)
def test_limit_never_exceeds_any_station_max_property(
    limits: list[tuple[str, int, float]], minutes: int
) -> None:
    """1.6 §3.13.2: per purpose the highest stackLevel prevails; the result is the minimum of
    the prevailing TxDefaultProfile and the prevailing ChargePointMaxProfile, so it never
    exceeds the station maximum in force."""
    purposes = {
        "TxDefaultProfile": Purpose.TX_DEFAULT,
        "ChargePointMaxProfile": Purpose.STATION_MAX,
    }
    ps = ProfileSet()
    for i, (purpose, level, lim) in enumerate(limits):
        ps.install(
            Profile(
                id=i + 1,
                stack_level=level,
                purpose=purposes[purpose],
                kind=Kind.ABSOLUTE,
                unit=Unit.W,
                periods=(Period(0, lim),),
                start_schedule=T0,
            )
        )
    result = limit(ps, T0 + minutes * MIN)
    prevailing = [
        max((p for p in ps if p.purpose is purpose), key=lambda p: (p.stack_level, p.id))
        for purpose in (Purpose.TX_DEFAULT, Purpose.STATION_MAX)
        if any(p.purpose is purpose for p in ps)
    ]
    assert result == min(p.periods[0].limit for p in prevailing)
    for p in prevailing:
        assert result <= p.periods[0].limit


_PROFILE = st.builds(
    lambda kind, purpose, level, starts, limits, offset, duration, valid, recurrency: Profile(
        id=0,  # set by the test
        stack_level=level,
        purpose=purpose,
        kind=kind,
        unit=Unit.W,
        periods=tuple(Period(s, lim) for s, lim in zip(sorted(set(starts)), limits, strict=False)),
        recurrency=recurrency if kind is Kind.RECURRING else None,
        start_schedule=None if kind is Kind.RELATIVE else T0 + offset * MIN,
        duration=duration,
        valid_from=None if valid is None else T0 + valid[0] * MIN,
        valid_to=None if valid is None else T0 + (valid[0] + valid[1]) * MIN,
    ),
    kind=st.sampled_from([Kind.ABSOLUTE, Kind.RELATIVE, Kind.RECURRING]),
    purpose=st.sampled_from([Purpose.TX_DEFAULT, Purpose.STATION_MAX, Purpose.TX]),
    level=st.integers(0, 3),
    starts=st.lists(st.integers(0, 3 * 86400), min_size=1, max_size=5).map(lambda s: [0, *s]),
    limits=st.lists(st.integers(0, 50_000).map(float), min_size=6, max_size=6),
    offset=st.integers(-3000, 3000),
    duration=st.none() | st.integers(1, 4 * 86400),
    valid=st.none() | st.tuples(st.integers(-3000, 3000), st.integers(1, 6000)),
    recurrency=st.sampled_from([Recurrency.DAILY, Recurrency.WEEKLY]),
)


@given(
    profiles=st.lists(_PROFILE, min_size=1, max_size=4),
    start_minutes=st.integers(-1000, 5000),
    hours=st.integers(1, 96),
    probes=st.lists(st.floats(0.001, 0.999), min_size=1, max_size=3),
)
def test_limit_is_constant_between_boundaries_k08_property(
    profiles: list[Profile], start_minutes: int, hours: int, probes: list[float]
) -> None:
    """GetCompositeSchedule (1.6 §5.7, 2.0.1 K08) reports the limit as periods; it is exact
    when no change of the limit falls between two reported moments. ProfileSet.boundaries
    lists every moment a profile's period may change, so between two consecutive ones (and
    the window's ends) the limit, probed anywhere, is the limit at the first."""
    ps = ProfileSet()
    for i, profile in enumerate(profiles):
        ps.install(dataclasses.replace(profile, id=i + 1))
    start = T0 + start_minutes * MIN
    end = start + datetime.timedelta(hours=hours)
    tx_start = T0 + 7 * MIN
    kw: dict[str, Any] = {"tx_start": tx_start, "transaction_id": None}
    moments = [start, *ps.boundaries(start, end, tx_start), end]
    assert moments == sorted(moments) and len(set(moments)) == len(moments)
    for left, right in itertools.pairwise(moments):
        expected = limit(ps, left, **kw)
        for probe in probes:
            assert limit(ps, left + (right - left) * probe, **kw) == expected


def test_boundaries_of_a_short_period_inside_a_long_window_k08() -> None:
    """A 10 s dip in a day: sampling on a 288-point grid (every 300 s) would miss it."""
    ps = ProfileSet(
        [profile16(1, "TxDefaultProfile", [(0, 11000.0), (3600, 1000.0), (3610, 11000.0)])]
    )
    assert ps.boundaries(T0, T0 + datetime.timedelta(days=1)) == [
        T0 + datetime.timedelta(seconds=3600),
        T0 + datetime.timedelta(seconds=3610),
    ]
