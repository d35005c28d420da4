"""Charging profiles: the power or current limit in force at a moment, without I/O.

Why: "a charging profile limits the simulated power" (issue 4). A CSMS's smart charging can
only be tested against a station that obeys the profiles it sends; this module turns the
profiles a station holds into one number (the limit at time ``t``) that the meter model
(:mod:`ocppkit.station.meter`) caps its power with.

Theory of operation
-------------------
Profiles from either version are converted once to the version-neutral :class:`Profile`
(:func:`from_v16`, :func:`from_v201`). :class:`ProfileSet` holds the profiles relevant to one
connector/EVSE (the runtime also puts there the station-wide ones it received for
connector/EVSE 0) and answers :meth:`ProfileSet.limit_w` / :meth:`ProfileSet.limit_a`.

Rules (OCPP 1.6 §3.13 Smart Charging and its ChargingProfile types; OCPP 2.0.1 K01, "Smart charging
signals"):

1. **Validity**: a profile counts only at ``valid_from <= t < valid_to`` (bounds optional).
2. **Schedule start** by ``chargingProfileKind``: *Absolute*: ``startSchedule`` (missing:
   the transaction start, else the profile is idle); *Relative*: the transaction start (no
   transaction: idle); *Recurring*: ``startSchedule`` repeated every day or week
   (``recurrencyKind``), in UTC (no daylight-saving shift).
3. **Period**: the last ``chargingSchedulePeriod`` whose ``startPeriod`` (seconds from the
   schedule start) is <= the elapsed time; before the first period or at/after ``duration``
   the schedule does not cover ``t`` and the profile does not count then.
4. **Stack level**: per purpose, the covering profile with the highest ``stackLevel`` wins
   (1.6 §3.13.2 "prevailing profile"; 2.0.1 K01 does not allow two of a purpose at one
   level, so ties are broken by the larger profile id, deterministically).
5. **Purpose precedence**: a *TxProfile* (only while a transaction runs, and only one for
   that transaction, or with no transaction id) overrides *TxDefaultProfile*; the result is
   capped by *ChargePointMaxProfile* / *ChargingStationMaxProfile* and 2.0.1
   *ChargingStationExternalConstraints* (the minimum of all that apply).
6. **Units**: a limit in A becomes W as ``A * V * phases``, with ``numberPhases`` of the
   period (default 3, 1.6 and 2.0.1 ChargingSchedulePeriod) capped by the phases the supply
   has; a limit in W becomes A as ``W / (V * phases)``. For DC supplies the caller passes
   phases=1 and the DC voltage.

Everything is a pure function of the profiles and the arguments; times are timezone-aware
:class:`datetime.datetime`.
"""

from __future__ import annotations

import datetime
import enum
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import TypeVar

import msgspec

from ocppkit.messages import v16, v201

__all__ = [
    "DEFAULT_NUMBER_PHASES",
    "PURPOSE_V16",
    "PURPOSE_V201",
    "ActiveLimit",
    "Kind",
    "Period",
    "Profile",
    "ProfileSet",
    "Purpose",
    "Recurrency",
    "Unit",
    "from_v16",
    "from_v201",
]

DEFAULT_NUMBER_PHASES = 3
"""``numberPhases`` when a period leaves it out (1.6 ChargingSchedulePeriod, 2.0.1
ChargingSchedulePeriodType)."""

_DAY = datetime.timedelta(days=1)
_WEEK = datetime.timedelta(days=7)


class Purpose(enum.Enum):
    """chargingProfilePurpose, both versions' names folded together."""

    STATION_MAX = "ChargePointMaxProfile / ChargingStationMaxProfile"
    EXTERNAL_CONSTRAINTS = "ChargingStationExternalConstraints"
    TX_DEFAULT = "TxDefaultProfile"
    TX = "TxProfile"


class Kind(enum.StrEnum):
    """chargingProfileKind (rule 2)."""

    ABSOLUTE = "Absolute"
    RECURRING = "Recurring"
    RELATIVE = "Relative"


class Recurrency(enum.StrEnum):
    """recurrencyKind of a Recurring profile."""

    DAILY = "Daily"
    WEEKLY = "Weekly"


class Unit(enum.StrEnum):
    """chargingRateUnit: amperes per phase, or watts."""

    A = "A"
    W = "W"


@dataclass(frozen=True, slots=True)
class Period:
    """A chargingSchedulePeriod."""

    start: int
    """Seconds from the schedule start."""
    limit: float
    number_phases: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Profile:
    """A charging profile of either version, as this module evaluates it."""

    id: int
    stack_level: int
    purpose: Purpose
    kind: Kind
    unit: Unit
    periods: tuple[Period, ...]
    recurrency: Recurrency | None = None
    valid_from: datetime.datetime | None = None
    valid_to: datetime.datetime | None = None
    start_schedule: datetime.datetime | None = None
    duration: int | None = None
    """Seconds; None: the last period lasts for ever (or until the next recurrence)."""
    transaction_id: str | None = None
    """For a TxProfile: the transaction it is for (1.6 ids as decimal strings)."""

    def __post_init__(self) -> None:
        if not self.periods:
            raise ValueError(f"profile {self.id} has no schedule period")
        starts = [p.start for p in self.periods]
        if starts != sorted(starts) or len(set(starts)) != len(starts):
            raise ValueError(f"profile {self.id}: startPeriod values must increase, got {starts}")
        if self.kind is Kind.RECURRING and (self.recurrency is None or self.start_schedule is None):
            raise ValueError(f"profile {self.id}: Recurring needs recurrencyKind and startSchedule")

    def schedule_start(
        self, t: datetime.datetime, tx_start: datetime.datetime | None
    ) -> datetime.datetime | None:
        """Rule 2: when the schedule that covers ``t`` started, or None if it has none."""
        if self.kind is Kind.RELATIVE:
            return tx_start
        if self.kind is Kind.ABSOLUTE:
            return self.start_schedule if self.start_schedule is not None else tx_start
        assert self.start_schedule is not None  # checked in __post_init__
        every = _DAY if self.recurrency is Recurrency.DAILY else _WEEK
        return t - (t - self.start_schedule) % every

    def boundaries(
        self,
        start: datetime.datetime,
        end: datetime.datetime,
        tx_start: datetime.datetime | None = None,
    ) -> set[datetime.datetime]:
        """The moments in ``(start, end)`` at which :meth:`period_at` may change: validFrom,
        validTo, and each schedule's period starts and end (every recurrence of a Recurring
        one). Between two of them the profile's period is constant, which is what makes a
        composite schedule exact rather than sampled."""
        moments = {m for m in (self.valid_from, self.valid_to) if m is not None}
        if self.kind is Kind.RECURRING:
            every = _DAY if self.recurrency is Recurrency.DAILY else _WEEK
            first = self.schedule_start(start, tx_start)
            assert first is not None  # Recurring always has a start
            starts = []
            while first < end:
                starts.append(first)
                first += every
        else:
            only = self.schedule_start(start, tx_start)
            starts = [] if only is None else [only]
        for schedule in starts:
            moments.update(schedule + datetime.timedelta(seconds=p.start) for p in self.periods)
            if self.duration is not None:
                moments.add(schedule + datetime.timedelta(seconds=self.duration))
        return {m for m in moments if start < m < end}

    def period_at(
        self, t: datetime.datetime, tx_start: datetime.datetime | None = None
    ) -> Period | None:
        """Rules 1-3: the period in force at ``t``, or None when the profile does not count."""
        if self.valid_from is not None and t < self.valid_from:
            return None
        if self.valid_to is not None and t >= self.valid_to:
            return None
        start = self.schedule_start(t, tx_start)
        if start is None:
            return None
        elapsed = (t - start).total_seconds()
        if elapsed < 0 or (self.duration is not None and elapsed >= self.duration):
            return None
        found: Period | None = None
        for period in self.periods:
            if period.start > elapsed:
                break
            found = period
        return found


@dataclass(frozen=True, slots=True)
class ActiveLimit:
    """The prevailing limit at a moment, in watts and amperes per phase."""

    watts: float
    amps: float
    profile_ids: tuple[int, ...]
    """The profiles that made it (the winning Tx/TxDefault one and/or the max ones)."""


def _to_watts(period: Period, unit: Unit, voltage: float, phases: int) -> float:
    if unit is Unit.W:
        return period.limit
    used = min(period.number_phases or DEFAULT_NUMBER_PHASES, phases)
    return period.limit * voltage * used


class ProfileSet:
    """The profiles that apply to one connector/EVSE; evaluates the limit at a moment."""

    def __init__(self, profiles: Iterable[Profile] = ()) -> None:
        self._profiles: dict[int, Profile] = {}
        for profile in profiles:
            self.install(profile)

    def __iter__(self) -> Iterator[Profile]:
        return iter(self._profiles.values())

    def __len__(self) -> int:
        return len(self._profiles)

    def install(self, profile: Profile) -> None:
        """SetChargingProfile: a profile with the same id, or the same purpose and stack level
        (and, for TxProfile, transaction), replaces the old one (1.6 §5.16, 2.0.1 K01)."""
        for old in list(self._profiles.values()):
            same_slot = old.purpose is profile.purpose and old.stack_level == profile.stack_level
            if same_slot and (
                profile.purpose is not Purpose.TX or old.transaction_id == profile.transaction_id
            ):
                del self._profiles[old.id]
        self._profiles[profile.id] = profile

    def clear(
        self,
        *,
        profile_id: int | None = None,
        purpose: Purpose | None = None,
        stack_level: int | None = None,
    ) -> list[int]:
        """ClearChargingProfile: remove what matches every given criterion; the ids removed."""
        removed = [
            p.id
            for p in self._profiles.values()
            if (profile_id is None or p.id == profile_id)
            and (purpose is None or p.purpose is purpose)
            and (stack_level is None or p.stack_level == stack_level)
        ]
        for pid in removed:
            del self._profiles[pid]
        return removed

    def end_transaction(self, transaction_id: str | None) -> None:
        """TxProfiles end with their transaction (1.6 §3.13.1; 2.0.1 K01: a TxProfile lives only
        as long as its transaction)."""
        for p in list(self._profiles.values()):
            if p.purpose is Purpose.TX and (p.transaction_id in (None, transaction_id)):
                del self._profiles[p.id]

    def _prevailing(
        self,
        purpose: Purpose,
        t: datetime.datetime,
        tx_start: datetime.datetime | None,
        transaction_id: str | None,
    ) -> tuple[Profile, Period] | None:
        best: tuple[Profile, Period] | None = None
        for profile in self._profiles.values():
            if profile.purpose is not purpose:
                continue
            if purpose is Purpose.TX and (
                tx_start is None
                or (profile.transaction_id is not None and profile.transaction_id != transaction_id)
            ):
                continue
            period = profile.period_at(t, tx_start)
            if period is None:
                continue
            if best is None or (profile.stack_level, profile.id) > (
                best[0].stack_level,
                best[0].id,
            ):
                best = (profile, period)
        return best

    def active_limit(
        self,
        t: datetime.datetime,
        *,
        voltage: float,
        phases: int,
        tx_start: datetime.datetime | None = None,
        transaction_id: str | None = None,
    ) -> ActiveLimit | None:
        """Rules 4-6: the limit in force at ``t`` for a supply of ``phases`` phases at
        ``voltage`` V (phase-to-neutral for AC), or None when no profile limits it.

        ``tx_start``/``transaction_id`` describe the running transaction (None: none runs).
        """
        if voltage <= 0 or phases < 1:
            raise ValueError(f"voltage must be > 0 and phases >= 1, got {voltage}, {phases}")
        winners: list[tuple[Profile, Period]] = []
        tx = self._prevailing(Purpose.TX, t, tx_start, transaction_id)
        if tx is None:
            tx = self._prevailing(Purpose.TX_DEFAULT, t, tx_start, transaction_id)
        if tx is not None:
            winners.append(tx)
        for purpose in (Purpose.STATION_MAX, Purpose.EXTERNAL_CONSTRAINTS):
            found = self._prevailing(purpose, t, tx_start, transaction_id)
            if found is not None:
                winners.append(found)
        if not winners:
            return None
        watts = min(max(0.0, _to_watts(pe, pr.unit, voltage, phases)) for pr, pe in winners)
        return ActiveLimit(
            watts=watts,
            amps=watts / (voltage * phases),
            profile_ids=tuple(pr.id for pr, _ in winners),
        )

    def boundaries(
        self,
        start: datetime.datetime,
        end: datetime.datetime,
        tx_start: datetime.datetime | None = None,
    ) -> list[datetime.datetime]:
        """The moments in ``(start, end)``, in order, at which the limit may change (the union
        of every profile's :meth:`Profile.boundaries`)."""
        moments: set[datetime.datetime] = set()
        for profile in self._profiles.values():
            moments |= profile.boundaries(start, end, tx_start)
        return sorted(moments)

    def limit_w(
        self,
        t: datetime.datetime,
        *,
        voltage: float,
        phases: int,
        tx_start: datetime.datetime | None = None,
        transaction_id: str | None = None,
    ) -> float | None:
        """The limit in watts at ``t`` (see :meth:`active_limit`), None when unlimited."""
        limit = self.active_limit(
            t, voltage=voltage, phases=phases, tx_start=tx_start, transaction_id=transaction_id
        )
        return None if limit is None else limit.watts

    def limit_a(
        self,
        t: datetime.datetime,
        *,
        voltage: float,
        phases: int,
        tx_start: datetime.datetime | None = None,
        transaction_id: str | None = None,
    ) -> float | None:
        """The limit in amperes per phase at ``t``, None when unlimited."""
        limit = self.active_limit(
            t, voltage=voltage, phases=phases, tx_start=tx_start, transaction_id=transaction_id
        )
        return None if limit is None else limit.amps


_T = TypeVar("_T")


def _opt(value: _T | msgspec.UnsetType) -> _T | None:
    return None if isinstance(value, msgspec.UnsetType) else value


PURPOSE_V16 = {
    v16.ChargingProfilePurposeType.CHARGE_POINT_MAX_PROFILE: Purpose.STATION_MAX,
    v16.ChargingProfilePurposeType.TX_DEFAULT_PROFILE: Purpose.TX_DEFAULT,
    v16.ChargingProfilePurposeType.TX_PROFILE: Purpose.TX,
}
"""A 1.6 ``chargingProfilePurpose`` as a :class:`Purpose`."""

PURPOSE_V201 = {
    v201.ChargingProfilePurposeEnum.CHARGING_STATION_MAX_PROFILE: Purpose.STATION_MAX,
    v201.ChargingProfilePurposeEnum.CHARGING_STATION_EXTERNAL_CONSTRAINTS: (
        Purpose.EXTERNAL_CONSTRAINTS
    ),
    v201.ChargingProfilePurposeEnum.TX_DEFAULT_PROFILE: Purpose.TX_DEFAULT,
    v201.ChargingProfilePurposeEnum.TX_PROFILE: Purpose.TX,
}
"""A 2.0.1 ``chargingProfilePurpose`` as a :class:`Purpose`."""


def from_v16(profile: v16.ChargingProfile) -> Profile:
    """A 1.6 ``csChargingProfiles`` as a :class:`Profile`; ValueError if it cannot be evaluated
    (no period, periods out of order, Recurring without recurrencyKind/startSchedule)."""
    transaction_id = _opt(profile.transaction_id)
    return _profile(
        profile,
        profile.charging_schedule,
        id=profile.charging_profile_id,
        purpose=PURPOSE_V16[profile.charging_profile_purpose],
        transaction_id=None if transaction_id is None else str(transaction_id),
    )


def from_v201(profile: v201.ChargingProfile) -> Profile:
    """A 2.0.1 ``ChargingProfileType`` as a :class:`Profile`. Only the first
    ``chargingSchedule`` is used (the others are ISO 15118 alternatives, K15)."""
    return _profile(
        profile,
        profile.charging_schedule[0],
        id=profile.id,
        purpose=PURPOSE_V201[profile.charging_profile_purpose],
        transaction_id=_opt(profile.transaction_id),
    )


def _profile(
    profile: v16.ChargingProfile | v201.ChargingProfile,
    schedule: v16.ChargingSchedule | v201.ChargingSchedule,
    *,
    id: int,
    purpose: Purpose,
    transaction_id: str | None,
) -> Profile:
    """The fields both versions spell alike; ``id``, ``purpose`` and the transaction id are
    the caller's, in its version's spelling."""
    recurrency = _opt(profile.recurrency_kind)
    return Profile(
        id=id,
        stack_level=profile.stack_level,
        purpose=purpose,
        kind=Kind(profile.charging_profile_kind.value),
        unit=Unit(schedule.charging_rate_unit.value),
        periods=tuple(
            Period(p.start_period, p.limit, _opt(p.number_phases))
            for p in schedule.charging_schedule_period
        ),
        recurrency=None if recurrency is None else Recurrency(recurrency.value),
        valid_from=_opt(profile.valid_from),
        valid_to=_opt(profile.valid_to),
        start_schedule=_opt(schedule.start_schedule),
        duration=_opt(schedule.duration),
        transaction_id=transaction_id,
    )
