"""Meter physics and meter values: OCPP 1.6 §4.7 MeterValues, §4.10 StopTransaction
(transactionData, reason), §9.1 MeterValuesSampledData / ClockAlignedDataInterval, the
SampledValue, Measurand, Phase, UnitOfMeasure and Reason types; OCPP 2.0.1 J01/J02 (sampled
and clock-aligned meter values), SampledDataCtrlr.TxUpdatedMeasurands, AlignedDataCtrlr.Interval,
E06 stoppedReason; issue 4 "coherent meter physics", "seeded randomness".
"""

from __future__ import annotations

import datetime
import itertools
import random

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from ocppkit.messages import v16, v201
from ocppkit.protocol import validate_payload
from ocppkit.station.charging_profile import Kind, Period, Profile, ProfileSet, Purpose, Unit
from ocppkit.station.meter import (
    SUPPORTED_MEASURANDS,
    AcSupply,
    DcSupply,
    EvBattery,
    Meter,
    SampleSchedule,
    StopCause,
    meter_value_v16,
    meter_value_v201,
    next_clock_aligned,
    stop_meter_value_v16,
)

T0 = datetime.datetime(2026, 11, 27, 9, 7, 30, tzinfo=datetime.UTC)
ALL = [
    "Energy.Active.Import.Register",
    "Power.Active.Import",
    "Current.Import",
    "Voltage",
    "SoC",
    "Current.Offered",
    "Power.Offered",
]


def ac_meter(seed: int = 1) -> Meter:
    return Meter(
        supply=AcSupply(phases=3, voltage=230, max_current=16),
        battery=EvBattery(capacity_wh=50_000, soc=20, max_power=22_000),
        rng=random.Random(seed),
    )


def test_ac_power_is_phases_times_voltage_times_current() -> None:
    """Issue 4 AC model: P = phases x V x I; a 16 A 3-phase supply limits a 22 kW EV to ~11 kW."""
    meter = ac_meter()
    meter.advance(60)
    assert meter.power_w == pytest.approx(3 * meter.voltage * 16)
    assert meter.current_a() == pytest.approx(16)
    assert 0.99 * 230 <= meter.voltage <= 1.01 * 230


def test_energy_register_integrates_power_and_soc_follows() -> None:
    """One hour at ~11 kW adds ~11 kWh to the register; the battery gets that x efficiency."""
    meter = ac_meter()
    soc0 = meter.battery.soc if meter.battery else 0
    added = meter.advance(3600)
    assert added == pytest.approx(11_040, rel=0.011)
    assert meter.register_wh == pytest.approx(added)
    assert meter.battery is not None
    stored = (meter.battery.soc - soc0) / 100 * 50_000
    assert stored == pytest.approx(added * 0.95)


def test_single_phase_ev_on_three_phase_supply() -> None:
    """An EV's on-board charger with 1 phase draws on L1 only: P = 1 x V x I; readings L1 only."""
    meter = Meter(
        supply=AcSupply(phases=3, voltage=230, max_current=32),
        battery=EvBattery(ac_phases=1, max_power=7_400),
        rng=random.Random(0),
        voltage_jitter=0,
    )
    meter.advance(1)
    assert meter.phases == 1
    assert meter.power_w == pytest.approx(7_360)  # 32 A x 230 V
    phases = [r.phase for r in meter.readings(["Current.Import"])]
    assert phases == ["L1"]


def test_dc_power_tapers_with_state_of_charge() -> None:
    """Issue 4 DC model: full power below 80 % SoC, tapering to 5 % at 100 %; the EV stops at
    its target SoC and the meter says why (StoppedByEV)."""
    meter = Meter(
        supply=DcSupply(max_power=150_000),
        battery=EvBattery(capacity_wh=60_000, soc=50, max_power=100_000, target_soc=95),
        rng=random.Random(3),
    )
    meter.advance(1)
    assert meter.power_w == pytest.approx(100_000)
    powers = []
    for _ in range(240):
        meter.advance(30)
        powers.append(meter.power_w)
    assert meter.battery is not None and meter.battery.soc == pytest.approx(95)
    assert powers[-1] == 0
    drawing = [p for p in powers if p > 0]
    assert all(a >= b for a, b in itertools.pairwise(drawing))  # tapering only
    assert meter.stop_cause() is StopCause.EV_FULL
    assert StopCause.EV_FULL.v201 is v201.ReasonEnum.STOPPED_BY_EV


def test_charging_profile_limits_the_power() -> None:
    """Issue 4: "a charging profile limits the simulated power" (1.6 §3.13, 2.0.1 K01): a
    10 A TxDefaultProfile on a 32 A supply gives 3 x 230 x 10 W, and Offered says so."""
    meter = Meter(
        supply=AcSupply(phases=3, voltage=230, max_current=32),
        battery=EvBattery(max_power=22_000),
        rng=random.Random(0),
        voltage_jitter=0,
    )
    profiles = ProfileSet(
        [
            Profile(
                id=1,
                stack_level=0,
                purpose=Purpose.TX_DEFAULT,
                kind=Kind.ABSOLUTE,
                unit=Unit.A,
                periods=(Period(0, 10), Period(600, 0)),
                start_schedule=T0,
            )
        ]
    )
    lim = profiles.limit_w(T0, voltage=meter.nominal_voltage, phases=meter.phases)
    meter.advance(60, limit_w=lim)
    assert meter.power_w == pytest.approx(6_900)
    assert meter.offered_w == pytest.approx(6_900)
    values = {r.measurand: r.value for r in meter.readings(["Current.Offered", "Power.Offered"])}
    assert values == {"Current.Offered": 10, "Power.Offered": 6900}
    zero = profiles.limit_w(
        T0 + datetime.timedelta(minutes=10), voltage=meter.nominal_voltage, phases=meter.phases
    )
    before = meter.register_wh
    meter.advance(60, limit_w=zero)
    assert meter.power_w == 0 and meter.register_wh == before


def test_not_drawing_adds_no_energy() -> None:
    """SuspendedEV/EVSE or no transaction: power 0, the register stands still."""
    meter = ac_meter()
    meter.advance(100, drawing=False)
    assert meter.power_w == 0 and meter.register_wh == 0
    assert meter.offered_w > 0


def test_same_seed_replays_the_same_readings() -> None:
    """Issue 4: seeded randomness, so a run can be replayed."""

    def run(seed: int) -> list[tuple[str, float]]:
        meter = ac_meter(seed)
        out: list[tuple[str, float]] = []
        for _ in range(20):
            meter.advance(15)
            out.extend((r.measurand, r.value) for r in meter.readings(ALL))
        return out

    assert run(7) == run(7)
    assert run(7) != run(8)


def test_meter_values_v16_validate_against_the_schema_7_31() -> None:
    """1.6 MeterValues.req from the readings: string values, measurand, unit, phase per phase
    (L1..L3 for current, L1-N.. for voltage), context; validates against the schema."""
    meter = ac_meter()
    meter.advance(600)
    readings = meter.readings(ALL)
    assert "SoC" not in {r.measurand for r in readings}  # AC EVs do not report SoC
    value = meter_value_v16(readings, timestamp=T0, context=v16.ReadingContext.SAMPLE_CLOCK)
    request = v16.MeterValuesRequest(connector_id=1, transaction_id=5, meter_value=[value])
    validate_payload("1.6", "MeterValues", msgspec.json.encode(request))
    energy = value.sampled_value[0]
    assert energy.measurand is v16.Measurand.ENERGY_ACTIVE_IMPORT_REGISTER
    assert energy.value == str(meter.meter_wh) and energy.unit is v16.UnitOfMeasure.WH
    voltage_phases = [s.phase for s in value.sampled_value if s.measurand is v16.Measurand.VOLTAGE]
    assert voltage_phases == [v16.Phase.L1_N, v16.Phase.L2_N, v16.Phase.L3_N]
    stop = v16.StopTransactionRequest(
        meter_stop=meter.meter_wh,
        timestamp=T0,
        transaction_id=5,
        reason=StopCause.EV_DISCONNECTED.v16,
        transaction_data=[stop_meter_value_v16(readings, timestamp=T0)],
    )
    validate_payload("1.6", "StopTransaction", msgspec.json.encode(stop))


def test_meter_values_v201_validate_and_dc_reports_soc() -> None:
    """2.0.1 MeterValuesRequest (J01): numeric values, unitOfMeasure; a DC EV reports SoC
    (location EV, Percent)."""
    meter = Meter(
        supply=DcSupply(max_power=50_000), battery=EvBattery(soc=42), rng=random.Random(1)
    )
    meter.advance(60)
    value = meter_value_v201(meter.readings(ALL), timestamp=T0)
    request = v201.MeterValuesRequest(evse_id=1, meter_value=[value])
    validate_payload("2.0.1", "MeterValues", msgspec.json.encode(request))
    soc = [s for s in value.sampled_value if s.measurand is v201.MeasurandEnum.SO_C]
    assert len(soc) == 1 and soc[0].location is v201.LocationEnum.EV
    assert soc[0].unit_of_measure == v201.UnitOfMeasure(unit="Percent")
    assert 42 < soc[0].value < 43


def test_unsupported_measurand_and_empty_values_are_rejected() -> None:
    """1.6 §9.1 MeterValuesSampledData: a measurand the station cannot measure is refused."""
    with pytest.raises(ValueError, match="RPM"):
        ac_meter().readings(["RPM"])
    with pytest.raises(ValueError):
        meter_value_v16([], timestamp=T0)
    assert "Energy.Active.Import.Register" in SUPPORTED_MEASURANDS


@pytest.mark.parametrize(
    ("now", "interval", "expected"),
    [
        ("09:07:30", 900, "09:15:00"),
        ("09:15:00", 900, "09:30:00"),  # strictly after now
        ("23:59:59", 3600, "+00:00:00"),
        ("13:00:00", 7 * 3600, "14:00:00"),
        ("21:30:00", 7 * 3600, "+00:00:00"),  # 7 h does not divide a day: next midnight
        ("00:00:00", 60, "00:01:00"),
    ],
)
def test_next_clock_aligned_counts_from_midnight(now: str, interval: int, expected: str) -> None:
    """1.6 ClockAlignedDataInterval / 2.0.1 AlignedDataCtrlr.Interval: "starting at 00:00:00"."""
    day = datetime.date(2026, 11, 27)
    t = datetime.datetime.combine(day, datetime.time.fromisoformat(now), tzinfo=datetime.UTC)
    if expected.startswith("+"):
        day += datetime.timedelta(days=1)
        expected = expected[1:]
    want = datetime.datetime.combine(
        day, datetime.time.fromisoformat(expected), tzinfo=datetime.UTC
    )
    assert next_clock_aligned(t, interval) == want


def test_next_clock_aligned_rejects_naive_time_and_bad_interval() -> None:
    with pytest.raises(ValueError):
        next_clock_aligned(datetime.datetime(2026, 1, 1), 60)
    with pytest.raises(ValueError):
        next_clock_aligned(T0, 0)


def test_stop_reasons_map_to_both_versions() -> None:
    """1.6 Reason and 2.0.1 ReasonEnum: every cause has a valid value in both."""
    assert StopCause.HARD_RESET.v16 is v16.Reason.HARD_RESET
    assert StopCause.HARD_RESET.v201 is v201.ReasonEnum.IMMEDIATE_RESET
    assert StopCause.REMOTE.v16 is v16.Reason.REMOTE
    for cause in StopCause:
        assert isinstance(cause.v16, v16.Reason) and isinstance(cause.v201, v201.ReasonEnum)


def test_bad_model_parameters_are_rejected() -> None:
    with pytest.raises(ValueError):
        AcSupply(phases=4)
    with pytest.raises(ValueError):
        EvBattery(soc=120)
    with pytest.raises(ValueError):
        EvBattery(taper=((10, 1.0), (100, 0.1)))
    for seconds in (-1, float("nan"), float("inf")):
        with pytest.raises(ValueError):
            ac_meter().advance(seconds)


@given(
    seed=st.integers(0, 2**32),
    soc=st.floats(0, 100),
    steps=st.lists(
        st.tuples(
            st.floats(0, 3600, allow_nan=False),
            st.none() | st.floats(0, 30_000, allow_nan=False),
            st.booleans(),
        ),
        max_size=30,
    ),
    dc=st.booleans(),
)
def test_energy_never_decreases_and_power_never_exceeds_a_limit_property(
    seed: int, soc: float, steps: list[tuple[float, float | None, bool]], dc: bool
) -> None:
    """Issue 4 invariants: the register only grows; power <= profile limit, <= supply maximum,
    <= what the EV accepts, >= 0; AC current per phase <= max_current; SoC within [0, 100]."""
    supply: AcSupply | DcSupply = (
        DcSupply(max_power=50_000, max_current=125) if dc else AcSupply(phases=3, max_current=16)
    )
    meter = Meter(
        supply=supply, battery=EvBattery(soc=soc, max_power=22_000), rng=random.Random(seed)
    )
    last = meter.register_wh
    for seconds, lim, drawing in steps:
        assert meter.battery is not None
        acceptance_before = meter.battery.acceptance()
        meter.advance(seconds, limit_w=lim, drawing=drawing)
        assert meter.register_wh >= last
        assert meter.meter_wh >= int(last)
        last = meter.register_wh
        assert 0 <= meter.power_w <= meter.supply_max_w() + 1e-9
        assert meter.power_w <= acceptance_before + 1e-9
        if lim is not None:
            assert meter.power_w <= lim + 1e-9
            assert meter.offered_w <= lim + 1e-9
        if not drawing:
            assert meter.power_w == 0
        if not dc:
            assert meter.current_a() <= 16 + 1e-9
        assert 0 <= meter.battery.soc <= 100


def test_sample_schedule_periodic_from_transaction_start_and_clock_aligned() -> None:
    """1.6 MeterValueSampleInterval (from the transaction start, Sample.Periodic) and
    ClockAlignedDataInterval (from midnight, Sample.Clock), each with its measurands; 2.0.1
    SampledDataCtrlr.TxUpdatedInterval / AlignedDataCtrlr.Interval likewise."""
    schedule = SampleSchedule(
        sample_interval=60,
        aligned_interval=900,
        sampled_measurands=("Energy.Active.Import.Register", "Power.Active.Import"),
        aligned_measurands=("Energy.Active.Import.Register",),
    )
    schedule.start(T0)  # 09:07:30
    assert schedule.next_due() == T0.replace(minute=15, second=0)
    start = T0 + datetime.timedelta(seconds=10)
    schedule.start_transaction(start)
    assert schedule.next_due() == start + datetime.timedelta(seconds=60)
    assert schedule.due(start) == []
    first = schedule.due(start + datetime.timedelta(seconds=60))
    assert first == [("Sample.Periodic", ("Energy.Active.Import.Register", "Power.Active.Import"))]
    # woke up 5 intervals late (09:14:45): one periodic sample, the next on the original grid
    late = start + datetime.timedelta(seconds=60 * 7 + 5)
    assert [c for c, _ in schedule.due(late)] == ["Sample.Periodic"]
    assert schedule.next_sample == start + datetime.timedelta(seconds=60 * 8)
    clock = T0.replace(minute=15, second=0)
    assert schedule.due(clock) == [("Sample.Clock", ("Energy.Active.Import.Register",))]
    assert schedule.next_aligned == T0.replace(minute=30, second=0)
    schedule.stop_transaction()
    assert schedule.next_due() == schedule.next_aligned


def test_sample_schedule_disabled_and_bad_config() -> None:
    """0 disables sampling (1.6 §9.1 MeterValueSampleInterval "0 = off"); an unsupported
    measurand is refused."""
    schedule = SampleSchedule()
    schedule.start(T0)
    schedule.start_transaction(T0)
    assert schedule.next_due() is None and schedule.due(T0 + datetime.timedelta(days=1)) == []
    with pytest.raises(ValueError, match="RPM"):
        SampleSchedule(sampled_measurands=("RPM",))
    with pytest.raises(ValueError):
        SampleSchedule(sample_interval=-1)
