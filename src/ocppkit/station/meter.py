"""The electrical model of one connector: supply, EV battery, energy register, meter values.

Why: a CSMS is tested with the numbers an emulator reports. Flat or random numbers hide real
bugs (energy that goes down, power above the offered limit, a current that does not match
the power); a small physical model gives coherent ones: the energy register only grows,
power is what the supply, the EV and the charging profile allow together, current and voltage
agree with it, and the EV's state of charge rises with the energy delivered.

Theory of operation
-------------------
:class:`Meter` holds the state; the runtime owns the clock and calls :meth:`Meter.advance`
with the elapsed seconds and the limit in force (from
:meth:`ocppkit.station.charging_profile.ProfileSet.limit_w`, called with
:attr:`Meter.voltage` and :attr:`Meter.phases`), then samples.

* **Supply**: :class:`AcSupply` (``phases`` x ``voltage`` (phase to neutral) x
  ``max_current`` per phase) or :class:`DcSupply` (``max_power``, optional ``max_current``;
  the DC voltage is the battery's).
* **EV**: :class:`EvBattery` (``capacity_wh``, ``soc`` %, ``max_power`` it accepts, a
  piecewise-linear ``taper`` of that power over SoC, ``target_soc`` where it stops drawing,
  ``ac_phases`` its on-board charger uses, charging ``efficiency``).
* **Power** while the EV draws = min(supply maximum, EV acceptance at its SoC, profile
  limit); 0 when it does not draw. Never above any of them; never below 0.
* **Integration**: :meth:`Meter.advance` steps at most ``max_step`` seconds at a time, so the
  taper is followed; energy (Wh) = power x time; the battery gets ``energy x efficiency``.
  The register (:attr:`Meter.register_wh`) only grows.
* **Randomness**: the supply voltage wanders within ``voltage_jitter`` (a fraction) around
  nominal, drawn from the :class:`random.Random` the caller passes (seeded per station, never
  the global one), so a run replays exactly from its seed.
* **Readings** (:meth:`Meter.readings`) for the measurands in :data:`SUPPORTED_MEASURANDS`
  (those of 1.6 ``MeterValuesSampledData`` / 2.0.1 ``SampledDataCtrlr.TxUpdatedMeasurands``
  an emulator can compute): Energy.Active.Import.Register (Wh), Power.Active.Import (W),
  Current.Import (A, per phase on AC), Voltage (V, per phase L1-N.. on AC), SoC (%, DC only:
  AC EVs do not tell the station), Current.Offered (A), Power.Offered (W). They become
  generated message types with :func:`meter_value_v16`, :func:`stop_meter_value_v16` and
  :func:`meter_value_v201`.
* **When to sample**: :class:`SampleSchedule` (periodic from the transaction start, and
  clock-aligned by :func:`next_clock_aligned`: 1.6 ``ClockAlignedDataInterval``, 2.0.1
  ``AlignedDataCtrlr.Interval``, intervals counted from midnight), each with its measurands.
* **Stop reasons**: :class:`StopCause` maps why a transaction ended to 1.6 ``Reason`` and
  2.0.1 ``ReasonEnum``; :meth:`Meter.stop_cause` tells when the battery model itself ends it.
"""

from __future__ import annotations

import datetime
import enum
import itertools
import math
import random
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import msgspec

from ocppkit.messages import v16, v201

__all__ = [
    "SUPPORTED_MEASURANDS",
    "AcSupply",
    "DcSupply",
    "EvBattery",
    "Meter",
    "Reading",
    "SampleSchedule",
    "StopCause",
    "meter_value_v16",
    "meter_value_v201",
    "next_clock_aligned",
    "stop_meter_value_v16",
]

ENERGY = "Energy.Active.Import.Register"
POWER = "Power.Active.Import"
CURRENT = "Current.Import"
VOLTAGE = "Voltage"
SOC = "SoC"
CURRENT_OFFERED = "Current.Offered"
POWER_OFFERED = "Power.Offered"

SUPPORTED_MEASURANDS: frozenset[str] = frozenset(
    {ENERGY, POWER, CURRENT, VOLTAGE, SOC, CURRENT_OFFERED, POWER_OFFERED}
)
"""Measurands :meth:`Meter.readings` computes; a configuration naming others is rejected by
the runtime (1.6 ChangeConfiguration ``Rejected``, 2.0.1 SetVariables ``Rejected``)."""

_PHASES = ("L1", "L2", "L3")
_PHASES_N = ("L1-N", "L2-N", "L3-N")


@dataclass(frozen=True, slots=True, kw_only=True)
class AcSupply:
    """An AC connector: ``phases`` (1 or 3) x ``voltage`` V phase-to-neutral x ``max_current``
    A per phase."""

    phases: int = 3
    voltage: float = 230.0
    max_current: float = 32.0

    def __post_init__(self) -> None:
        if self.phases not in (1, 2, 3) or self.voltage <= 0 or self.max_current < 0:
            raise ValueError(f"bad AC supply {self}")

    @property
    def max_power(self) -> float:
        return self.phases * self.voltage * self.max_current


@dataclass(frozen=True, slots=True, kw_only=True)
class DcSupply:
    """A DC connector: at most ``max_power`` W and (if given) ``max_current`` A."""

    max_power: float = 50_000.0
    max_current: float | None = None

    def __post_init__(self) -> None:
        if self.max_power < 0 or (self.max_current is not None and self.max_current < 0):
            raise ValueError(f"bad DC supply {self}")


DEFAULT_TAPER: tuple[tuple[float, float], ...] = ((0.0, 1.0), (80.0, 1.0), (100.0, 0.05))
"""Full power up to 80 % SoC, then down to 5 % of it at 100 % (a typical CC-CV curve)."""


@dataclass(slots=True, kw_only=True)
class EvBattery:
    """The EV: a battery that accepts ``max_power`` W scaled by ``taper`` at its SoC."""

    capacity_wh: float = 60_000.0
    soc: float = 20.0
    """State of charge, percent."""
    max_power: float = 11_000.0
    taper: tuple[tuple[float, float], ...] = DEFAULT_TAPER
    """(SoC %, fraction of max_power) breakpoints, increasing SoC from 0 to 100; linear between."""
    target_soc: float = 100.0
    """The EV stops drawing at this SoC (its own charge limit)."""
    ac_phases: int = 3
    """Phases the on-board charger uses on AC (a 1-phase EV on a 3-phase supply uses 1)."""
    efficiency: float = 0.95
    """Share of the metered energy that ends up in the battery."""
    nominal_voltage: float = 400.0
    """DC battery voltage at 50 % SoC; it moves +-8 % from empty to full."""

    def __post_init__(self) -> None:
        socs = [s for s, _ in self.taper]
        if (
            self.capacity_wh <= 0
            or not 0 <= self.soc <= 100
            or not 0 <= self.target_soc <= 100
            or self.max_power < 0
            or not 0 < self.efficiency <= 1
            or self.ac_phases not in (1, 2, 3)
            or not self.taper
            or socs != sorted(socs)
            or socs[0] > 0
            or socs[-1] < 100
            or any(not 0 <= f <= 1 for _, f in self.taper)
        ):
            raise ValueError(f"bad EV battery {self}")

    def acceptance(self) -> float:
        """Watts the EV accepts now (0 at or above ``target_soc``)."""
        if self.soc >= self.target_soc:
            return 0.0
        return self.max_power * _interpolate(self.taper, self.soc)

    def voltage(self) -> float:
        """The DC battery voltage now."""
        return self.nominal_voltage * (0.92 + 0.16 * self.soc / 100.0)


def _interpolate(points: Sequence[tuple[float, float]], x: float) -> float:
    for (x0, y0), (x1, y1) in itertools.pairwise(points):
        if x0 <= x <= x1:
            return y0 if x1 == x0 else y0 + (y1 - y0) * (x - x0) / (x1 - x0)
    return points[-1][1] if x > points[-1][0] else points[0][1]


class StopCause(enum.Enum):
    """Why a transaction ended; :attr:`v16` / :attr:`v201` give the spec's reason."""

    LOCAL = ("Local", "Local")
    """The user ended it (id token again, stop button)."""
    REMOTE = ("Remote", "Remote")
    EV_DISCONNECTED = ("EVDisconnected", "EVDisconnected")
    DE_AUTHORIZED = ("DeAuthorized", "DeAuthorized")
    EMERGENCY_STOP = ("EmergencyStop", "EmergencyStop")
    HARD_RESET = ("HardReset", "ImmediateReset")
    SOFT_RESET = ("SoftReset", "Reboot")
    """2.0.1 has no SoftReset; an OnIdle reset waits for the transaction, an immediate one
    reports ImmediateReset; a soft reset that ends a transaction is a reboot."""
    REBOOT = ("Reboot", "Reboot")
    POWER_LOSS = ("PowerLoss", "PowerLoss")
    UNLOCK_COMMAND = ("UnlockCommand", "Other")
    """2.0.1 reports the cause in triggerReason UnlockCommand; stoppedReason has no such value."""
    EV_FULL = ("Local", "StoppedByEV")
    """The EV stopped at its target SoC and the user left (1.6 has no EV-side reason)."""
    SOC_LIMIT_REACHED = ("Other", "SOCLimitReached")
    ENERGY_LIMIT_REACHED = ("Other", "EnergyLimitReached")
    TIME_LIMIT_REACHED = ("Other", "TimeLimitReached")
    TIMEOUT = ("Other", "Timeout")
    """2.0.1 E03.FR.05: authorized, but no cable came within EVConnectionTimeOut."""
    OTHER = ("Other", "Other")

    @property
    def v16(self) -> v16.Reason:
        return v16.Reason(self.value[0])

    @property
    def v201(self) -> v201.ReasonEnum:
        return v201.ReasonEnum(self.value[1])


@dataclass(frozen=True, slots=True)
class Reading:
    """One sampled value, version-neutral; rounded for the wire."""

    measurand: str
    value: float
    unit: str
    phase: str | None = None
    location: str = "Outlet"


@dataclass(slots=True)
class _State:
    power_w: float = 0.0
    offered_w: float = 0.0
    voltage: float = 0.0


@dataclass(slots=True, kw_only=True)
class Meter:
    """One connector's meter and the EV plugged into it (see the theory of operation)."""

    supply: AcSupply | DcSupply
    rng: random.Random
    battery: EvBattery | None = None
    register_wh: float = 0.0
    """Energy.Active.Import.Register, Wh; only grows."""
    voltage_jitter: float = 0.01
    """Fraction the AC voltage wanders around nominal (0: none)."""
    max_step: float = 10.0
    """Longest integration step, seconds."""
    _state: _State = field(default_factory=_State, init=False, repr=False)

    def __post_init__(self) -> None:
        if self.register_wh < 0 or self.voltage_jitter < 0 or self.max_step <= 0:
            raise ValueError("register_wh and voltage_jitter must be >= 0, max_step > 0")
        self._state.voltage = self.nominal_voltage

    # --- what the runtime needs to evaluate charging profiles -----------------------------
    @property
    def is_dc(self) -> bool:
        return isinstance(self.supply, DcSupply)

    @property
    def phases(self) -> int:
        """Phases in use (AC: the fewer of supply and EV; DC: 1), for A <-> W conversion."""
        if isinstance(self.supply, DcSupply):
            return 1
        ev = self.battery.ac_phases if self.battery is not None else self.supply.phases
        return min(self.supply.phases, ev)

    @property
    def nominal_voltage(self) -> float:
        """AC: phase-to-neutral nominal; DC: the battery's voltage (400 V with no EV)."""
        if isinstance(self.supply, AcSupply):
            return self.supply.voltage
        return self.battery.voltage() if self.battery is not None else 400.0

    @property
    def voltage(self) -> float:
        """The voltage now (AC: with its jitter)."""
        return self._state.voltage

    @property
    def power_w(self) -> float:
        """Power.Active.Import now, W."""
        return self._state.power_w

    @property
    def offered_w(self) -> float:
        """Power.Offered now: what the EVSE would deliver (supply and profile), W."""
        return self._state.offered_w

    def current_a(self) -> float:
        """Current.Import per phase now, A."""
        return self._state.power_w / (self._state.voltage * self.phases)

    @property
    def meter_wh(self) -> int:
        """The register as the integer Wh of meterStart/meterStop (rounded down, so it too
        never decreases)."""
        return math.floor(self.register_wh)

    def supply_max_w(self, voltage: float | None = None) -> float:
        """What the supply can deliver at ``voltage`` (default: now)."""
        v = self._state.voltage if voltage is None else voltage
        if isinstance(self.supply, AcSupply):
            return self.phases * v * self.supply.max_current
        if self.supply.max_current is None:
            return self.supply.max_power
        return min(self.supply.max_power, self.supply.max_current * v)

    def power_for(self, limit_w: float | None, *, drawing: bool) -> tuple[float, float]:
        """(power drawn, power offered) at the current state and ``limit_w``."""
        offered = self.supply_max_w()
        if limit_w is not None:
            offered = max(0.0, min(offered, limit_w))
        if not drawing or self.battery is None:
            return 0.0, offered
        return min(offered, self.battery.acceptance()), offered

    def stop_cause(self) -> StopCause | None:
        """EV_FULL once the EV reached its target SoC (it stopped drawing), else None."""
        if self.battery is not None and self.battery.soc >= self.battery.target_soc:
            return StopCause.EV_FULL
        return None

    def advance(
        self, seconds: float, *, limit_w: float | None = None, drawing: bool = True
    ) -> float:
        """Integrate ``seconds`` of charging under ``limit_w`` (None: unlimited); the Wh added.

        ``drawing`` False (no EV, EV suspended, no transaction) adds nothing; power is 0.
        """
        if not (math.isfinite(seconds) and seconds >= 0):
            raise ValueError(f"seconds must be finite and >= 0, got {seconds}")
        self._draw_voltage()
        added = 0.0
        left = seconds
        while True:
            power, offered = self.power_for(limit_w, drawing=drawing)
            self._state.power_w, self._state.offered_w = power, offered
            if left <= 0:
                break
            step = min(left, self.max_step)
            left -= step
            energy = power * step / 3600.0
            if energy > 0 and self.battery is not None:
                room_wh = (
                    (self.battery.target_soc - self.battery.soc) / 100.0 * self.battery.capacity_wh
                )
                stored = min(energy * self.battery.efficiency, max(0.0, room_wh))
                energy = stored / self.battery.efficiency
                self.battery.soc = min(
                    self.battery.target_soc,
                    self.battery.soc + stored / self.battery.capacity_wh * 100.0,
                )
            added += energy
            if isinstance(self.supply, DcSupply):
                self._state.voltage = self.nominal_voltage
        self.register_wh += added
        return added

    def _draw_voltage(self) -> None:
        if isinstance(self.supply, AcSupply):
            jitter = self.rng.uniform(-self.voltage_jitter, self.voltage_jitter)
            self._state.voltage = self.supply.voltage * (1.0 + jitter)
        else:
            self._state.voltage = self.nominal_voltage

    def readings(self, measurands: Iterable[str]) -> list[Reading]:
        """The sampled values for ``measurands`` (in the order given; unknown: ValueError)."""
        out: list[Reading] = []
        ac = not self.is_dc
        for measurand in measurands:
            if measurand not in SUPPORTED_MEASURANDS:
                raise ValueError(
                    f"measurand {measurand!r} is not supported: {sorted(SUPPORTED_MEASURANDS)}"
                )
            if measurand == ENERGY:
                out.append(Reading(ENERGY, float(self.meter_wh), "Wh"))
            elif measurand == POWER:
                out.append(Reading(POWER, round(self.power_w, 1), "W"))
            elif measurand == POWER_OFFERED:
                out.append(Reading(POWER_OFFERED, round(self.offered_w, 1), "W"))
            elif measurand == CURRENT_OFFERED:
                amps = self.offered_w / (self.voltage * self.phases)
                out.append(Reading(CURRENT_OFFERED, round(amps, 2), "A"))
            elif measurand == CURRENT:
                amps = round(self.current_a(), 2)
                if ac:
                    out.extend(Reading(CURRENT, amps, "A", p) for p in _PHASES[: self.phases])
                else:
                    out.append(Reading(CURRENT, amps, "A"))
            elif measurand == VOLTAGE:
                volts = round(self.voltage, 1)
                if ac:
                    out.extend(Reading(VOLTAGE, volts, "V", p) for p in _PHASES_N[: self.phases])
                else:
                    out.append(Reading(VOLTAGE, volts, "V"))
            elif self.battery is not None and not ac:  # SoC: only DC EVs report it
                out.append(Reading(SOC, round(self.battery.soc, 1), "Percent", location="EV"))
        return out


_V = TypeVar("_V")


def _fmt(value: float) -> str:
    return str(int(value)) if value == int(value) else f"{value:g}"


def meter_value_v16(
    readings: Sequence[Reading],
    *,
    timestamp: datetime.datetime,
    context: v16.ReadingContext = v16.ReadingContext.SAMPLE_PERIODIC,
) -> v16.MeterValue:
    """A 1.6 ``MeterValue`` for MeterValues.req (values as strings). Needs >= 1 reading."""
    if not readings:
        raise ValueError("a MeterValue needs at least one sampled value")
    return _v16_value(
        v16.MeterValue, v16.SampledValue, v16.UnitOfMeasure, readings, timestamp, context
    )


def stop_meter_value_v16(
    readings: Sequence[Reading],
    *,
    timestamp: datetime.datetime,
    context: v16.ReadingContext = v16.ReadingContext.TRANSACTION_END,
) -> v16.StopTransactionMeterValue:
    """A 1.6 ``transactionData`` entry for StopTransaction.req (its own generated type)."""
    return _v16_value(
        v16.StopTransactionMeterValue,
        v16.StopTransactionSampledValue,
        v16.StopTransactionUnitOfMeasure,
        readings,
        timestamp,
        context,
    )


def _v16_value(
    value_type: Callable[..., _V],
    sampled_type: Callable[..., Any],
    unit_type: Callable[[str], Any],
    readings: Sequence[Reading],
    timestamp: datetime.datetime,
    context: v16.ReadingContext,
) -> _V:
    """A 1.6 meter value in the generated types of one message: MeterValues.req and
    StopTransaction.req spell it alike in types of their own."""
    return value_type(
        timestamp=timestamp,
        sampled_value=[
            sampled_type(
                value=_fmt(r.value),
                context=context,
                measurand=v16.Measurand(r.measurand),
                phase=msgspec.UNSET if r.phase is None else v16.Phase(r.phase),
                location=v16.Location(r.location),
                unit=unit_type(r.unit),
            )
            for r in readings
        ],
    )


def meter_value_v201(
    readings: Sequence[Reading],
    *,
    timestamp: datetime.datetime,
    context: v201.ReadingContextEnum = v201.ReadingContextEnum.SAMPLE_PERIODIC,
) -> v201.MeterValue:
    """A 2.0.1 ``MeterValueType`` (MeterValuesRequest, TransactionEventRequest). Needs >= 1."""
    if not readings:
        raise ValueError("a MeterValue needs at least one sampled value")
    return v201.MeterValue(
        timestamp=timestamp,
        sampled_value=[
            v201.SampledValue(
                value=r.value,
                context=context,
                measurand=v201.MeasurandEnum(r.measurand),
                phase=msgspec.UNSET if r.phase is None else v201.PhaseEnum(r.phase),
                location=v201.LocationEnum(r.location),
                unit_of_measure=v201.UnitOfMeasure(unit=r.unit),
            )
            for r in readings
        ],
    )


def next_clock_aligned(now: datetime.datetime, interval: float) -> datetime.datetime:
    """The first clock-aligned sampling time strictly after ``now``.

    1.6 ``ClockAlignedDataInterval`` / 2.0.1 ``AlignedDataCtrlr.Interval``: "the interval
    ... in seconds, starting at 00:00:00 (midnight)": times ``midnight + k * interval`` of
    ``now``'s own day and time zone (UTC for an aware UTC ``now``). An interval that does not
    divide a day restarts at the next midnight. ``now`` must be timezone-aware; ``interval``
    > 0 (0 means "no clock-aligned data": the caller does not ask).
    """
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    if not interval > 0:
        raise ValueError(f"interval must be > 0, got {interval}")
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    elapsed = (now - midnight).total_seconds()
    k = math.floor(elapsed / interval) + 1
    candidate = midnight + datetime.timedelta(seconds=k * interval)
    next_midnight = midnight + datetime.timedelta(days=1)
    return min(candidate, next_midnight)


SAMPLE_PERIODIC = "Sample.Periodic"
SAMPLE_CLOCK = "Sample.Clock"


@dataclass(slots=True, kw_only=True)
class SampleSchedule:
    """When meter values are due, and with which measurands (configuration in, times out).

    * Periodic: every ``sample_interval`` s from the start of the transaction (1.6
      ``MeterValueSampleInterval`` + ``MeterValuesSampledData``; 2.0.1
      ``SampledDataCtrlr.TxUpdatedInterval`` + ``TxUpdatedMeasurands``), context
      ``Sample.Periodic``; only while a transaction runs (:meth:`start_transaction`,
      :meth:`stop_transaction`).
    * Clock-aligned: at :func:`next_clock_aligned` times (1.6 ``ClockAlignedDataInterval`` +
      ``MeterValuesAlignedData``; 2.0.1 ``AlignedDataCtrlr.Interval`` + ``Measurands``),
      context ``Sample.Clock``, with or without a transaction.

    0 disables either. A runtime that wakes late gets each kind once (not once per missed
    interval), and the next time is the first one after ``now``.
    """

    sample_interval: float = 0.0
    aligned_interval: float = 0.0
    sampled_measurands: tuple[str, ...] = (ENERGY,)
    aligned_measurands: tuple[str, ...] = (ENERGY,)
    next_sample: datetime.datetime | None = field(default=None, init=False)
    next_aligned: datetime.datetime | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        if self.sample_interval < 0 or self.aligned_interval < 0:
            raise ValueError("intervals must be >= 0 (0 disables)")
        unknown = set(self.sampled_measurands + self.aligned_measurands) - SUPPORTED_MEASURANDS
        if unknown:
            raise ValueError(f"unsupported measurands {sorted(unknown)}")

    def start(self, now: datetime.datetime) -> None:
        """Boot (or a changed configuration): schedule the clock-aligned values."""
        self.next_aligned = (
            next_clock_aligned(now, self.aligned_interval) if self.aligned_interval > 0 else None
        )

    def start_transaction(self, now: datetime.datetime) -> None:
        """A transaction started at ``now``: periodic samples from now on."""
        if self.sample_interval > 0:
            self.next_sample = now + datetime.timedelta(seconds=self.sample_interval)

    def stop_transaction(self) -> None:
        self.next_sample = None

    def next_due(self) -> datetime.datetime | None:
        """The earliest time something is due (the runtime sleeps until then), or None."""
        times = [t for t in (self.next_sample, self.next_aligned) if t is not None]
        return min(times) if times else None

    def due(self, now: datetime.datetime) -> list[tuple[str, tuple[str, ...]]]:
        """(context, measurands) of what is due at ``now``, and reschedule it."""
        out: list[tuple[str, tuple[str, ...]]] = []
        if self.next_sample is not None and self.next_sample <= now:
            out.append((SAMPLE_PERIODIC, self.sampled_measurands))
            step = datetime.timedelta(seconds=self.sample_interval)
            missed = (now - self.next_sample) // step
            self.next_sample += step * (missed + 1)
        if self.next_aligned is not None and self.next_aligned <= now:
            out.append((SAMPLE_CLOCK, self.aligned_measurands))
            self.next_aligned = next_clock_aligned(now, self.aligned_interval)
        return out
